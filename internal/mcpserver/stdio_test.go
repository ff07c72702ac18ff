package mcpserver

import (
	"context"
	"io"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// stdio runs ServeStdio for agent on pipes and returns the Go SDK's client on their
// other ends, and a channel with what ServeStdio returned.
func stdio(t *testing.T, ctx context.Context, k Kernel, agent string, opts *mcp.ClientOptions, version string) (*mcp.ClientSession, <-chan error) {
	t.Helper()
	toServer, fromClient := io.Pipe()
	toClient, fromServer := io.Pipe()
	done, finished := make(chan error, 1), make(chan struct{})
	go func() {
		defer close(finished)
		done <- ServeStdio(ctx, k, agent, toServer, fromServer)
	}()
	c := mcp.NewClient(&mcp.Implementation{Name: "test", Version: "1"}, opts)
	cs, err := c.Connect(t.Context(), &mcp.IOTransport{Reader: toClient, Writer: fromClient}, &mcp.ClientSessionOptions{ProtocolVersion: version})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cs.Close()
		select {
		case <-finished:
		case <-time.After(10 * time.Second):
			t.Error("ServeStdio did not return after its client left")
		}
	})
	return cs, done
}

func TestStdio(t *testing.T) {
	for _, version := range []string{"", "2025-11-25"} {
		t.Run("protocol "+version, func(t *testing.T) { testStdio(t, version) })
	}
}

func testStdio(t *testing.T, version string) {
	f := newFake()
	cs, _ := stdio(t, t.Context(), f, "desk", nil, version)
	t.Logf("negotiated %s", cs.InitializeResult().ProtocolVersion)
	checkTools(t, cs)
	checkCalls(t, cs)
	for _, c := range f.recorded() {
		if c.Agent != "desk" || c.Session != "desk" {
			t.Errorf("%s called as agent %q session %q, want desk for both", c.Name, c.Agent, c.Session)
		}
	}
}

// One stdio session outlives changes to the registry: a new tool is listed, callable
// before it was listed, and announced to a client that asked to hear of changes.
func TestStdioToolsChange(t *testing.T) {
	for _, version := range []string{"", "2025-11-25"} {
		t.Run("protocol "+version, func(t *testing.T) { testStdioToolsChange(t, version) })
	}
}

func testStdioToolsChange(t *testing.T, version string) {
	f := newFake()
	changed := make(chan struct{}, 10)
	cs, _ := stdio(t, t.Context(), f, "desk", &mcp.ClientOptions{
		ToolListChangedHandler: func(context.Context, *mcp.ToolListChangedRequest) { changed <- struct{}{} },
	}, version)
	if _, err := cs.ListTools(t.Context(), nil); err != nil {
		t.Fatal(err)
	}
	f.add(tool_("late", `{"type":"object"}`))
	if r, err := cs.CallTool(t.Context(), &mcp.CallToolParams{Name: "late", Arguments: map[string]any{}}); err != nil || r.IsError {
		t.Fatalf("calling a tool that appeared after the last list: %v %+v", err, r)
	}
	select {
	case <-changed:
	case <-time.After(10 * time.Second):
		t.Error("no tools/list_changed after a tool appeared")
	}
	f.remove("late")
	res, err := cs.ListTools(t.Context(), nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, tl := range res.Tools {
		if tl.Name == "late" {
			t.Error("a tool that left the registry is still listed")
		}
	}
	if _, err := cs.CallTool(t.Context(), &mcp.CallToolParams{Name: "late", Arguments: map[string]any{}}); err == nil {
		t.Error("calling a tool that left the registry succeeded")
	}
}

func TestStdioEnds(t *testing.T) {
	t.Run("client leaves", func(t *testing.T) {
		cs, done := stdio(t, t.Context(), newFake(), "desk", nil, "")
		_ = cs.Close()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("ServeStdio: %v, want nil when the client leaves", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("ServeStdio did not return after its client left")
		}
	})
	t.Run("context ends", func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		cs, done := stdio(t, ctx, newFake(), "desk", nil, "")
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("ServeStdio: %v, want nil when its context ends", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("ServeStdio did not return after its context ended")
		}
		if _, err := cs.ListTools(t.Context(), nil); err == nil {
			t.Error("the client could still list tools after the server stopped")
		}
	})
	t.Run("no agent", func(t *testing.T) {
		if err := ServeStdio(t.Context(), newFake(), "", eofReader{}, io.Discard); err == nil {
			t.Error("ServeStdio with no agent served")
		}
	})
}

type eofReader struct{}

func (eofReader) Read([]byte) (int, error) { return 0, io.EOF }
