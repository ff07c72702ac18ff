package mcp

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/aios-go/aios/api"
)

type addIn struct {
	A int `json:"a"`
	B int `json:"b"`
}

type addOut struct {
	Sum int `json:"sum"`
}

// goServer is an MCP server made with the same SDK, served over streamable HTTP on
// loopback, with tools that exercise what the client converts.
type goServer struct {
	srv       *sdk.Server
	handler   http.Handler
	auth      atomic.Value // the last Authorization header seen
	cancelled chan struct{}
}

func newGoServer() *goServer {
	g := &goServer{srv: sdk.NewServer(&sdk.Implementation{Name: "go-test", Version: "1"}, nil), cancelled: make(chan struct{}, 1)}
	sdk.AddTool(g.srv, &sdk.Tool{Name: "add", Description: "Adds two integers", Annotations: &sdk.ToolAnnotations{ReadOnlyHint: true, Title: "Add"}},
		func(_ context.Context, _ *sdk.CallToolRequest, in addIn) (*sdk.CallToolResult, addOut, error) {
			return nil, addOut{Sum: in.A + in.B}, nil
		})
	g.srv.AddTool(&sdk.Tool{Name: "mixed", InputSchema: json.RawMessage(`{"type":"object"}`)},
		func(context.Context, *sdk.CallToolRequest) (*sdk.CallToolResult, error) {
			return &sdk.CallToolResult{Content: []sdk.Content{
				&sdk.TextContent{Text: "intro"},
				&sdk.AudioContent{MIMEType: "audio/wav", Data: make([]byte, 10)},
				&sdk.ResourceLink{URI: "file:///tmp/report.pdf", Name: "report"},
				&sdk.EmbeddedResource{Resource: &sdk.ResourceContents{URI: "mem://note", Text: "embedded text"}},
				&sdk.EmbeddedResource{Resource: &sdk.ResourceContents{URI: "mem://blob", MIMEType: "application/zip", Blob: make([]byte, 7)}},
			}, IsError: true}, nil
		})
	g.srv.AddTool(&sdk.Tool{Name: "wait", InputSchema: json.RawMessage(`{"type":"object"}`)},
		func(ctx context.Context, _ *sdk.CallToolRequest) (*sdk.CallToolResult, error) {
			<-ctx.Done()
			g.cancelled <- struct{}{}
			return nil, ctx.Err()
		})
	mcpHandler := sdk.NewStreamableHTTPHandler(func(*http.Request) *sdk.Server { return g.srv }, nil)
	g.handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		g.auth.Store(r.Header.Get("Authorization"))
		mcpHandler.ServeHTTP(w, r)
	})
	return g
}

// serve starts an httptest server for g on addr ("" for any loopback port).
func (g *goServer) serve(t *testing.T, addr string) *httptest.Server {
	t.Helper()
	ts := httptest.NewUnstartedServer(g.handler)
	if addr != "" {
		l, err := net.Listen("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		ts.Listener.Close()
		ts.Listener = l
	}
	ts.Start()
	return ts
}

// stop ends the server as a crash would: streams still open are cut, not drained.
func stop(ts *httptest.Server) {
	ts.CloseClientConnections()
	ts.Close()
}

// closeSessions ends the server side of sessions whose client vanished without a
// DELETE (the connection was cut under them), which the handler otherwise keeps forever.
func (g *goServer) closeSessions() {
	for ss := range g.srv.Sessions() {
		_ = ss.Close()
	}
}

func TestStreamableHTTP(t *testing.T) {
	g := newGoServer()
	ts := g.serve(t, "")
	defer stop(ts)
	defer g.closeSessions()

	reg := newRegistrar()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := Start(ctx, ServerConfig{
		Name:           "gohttp",
		URL:            ts.URL,
		Headers:        map[string]string{"Authorization": "Bearer test-token"},
		RestartBackoff: 20 * time.Millisecond,
		MaxBackoff:     100 * time.Millisecond,
	}, reg, testLog(t))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()

	st := s.Status()
	if !st.Connected || st.Transport != "http" || st.PID != 0 || st.Tools != 3 || st.Protocol == "" {
		t.Fatalf("status: %+v", st)
	}
	t.Logf("negotiated protocol %s", st.Protocol)
	if got, _ := g.auth.Load().(string); got != "Bearer test-token" {
		t.Fatalf("Authorization header %q", got)
	}

	add := reg.tool(t, "gohttp__add")
	// The Go SDK sends both bool hints whenever it sends annotations; the pointer hints
	// it leaves out stay unknown.
	a := add.Spec().Annotations
	if a.Title != "Add" || a.ReadOnlyHint == nil || !*a.ReadOnlyHint || a.IdempotentHint == nil || *a.IdempotentHint || a.DestructiveHint != nil || a.OpenWorldHint != nil {
		t.Fatalf("add annotations: %s", mustJSON(a))
	}
	res := call(t, add, `{"a":20,"b":22}`)
	if string(res.Structured) != `{"sum":42}` || !strings.Contains(res.Content, "42") {
		t.Fatalf("add: %+v", res)
	}

	res = call(t, reg.tool(t, "gohttp__mixed"), `{}`)
	want := "intro\n[audio audio/wav, 10 bytes]\nfile:///tmp/report.pdf\nembedded text\n[resource mem://blob application/zip, 7 bytes]"
	if res.Content != want || !res.IsError {
		t.Fatalf("mixed content:\n got %q\nwant %q (is_error %v)", res.Content, want, res.IsError)
	}

	// Cancelling the caller's context reaches the server as notifications/cancelled.
	cctx, ccancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		_, err := reg.tool(t, "gohttp__wait").Call(cctx, toolInput(`{}`))
		errc <- err
	}()
	time.AfterFunc(100*time.Millisecond, ccancel)
	if err := <-errc; api.KindOf(err) != api.CallerCancelled || !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled call: %v", err)
	}
	select {
	case <-g.cancelled:
	case <-time.After(10 * time.Second):
		t.Fatal("the server never saw the call cancelled")
	}

	// A tool added on the server is registered after tools/list_changed.
	sdk.AddTool(g.srv, &sdk.Tool{Name: "sub"}, func(_ context.Context, _ *sdk.CallToolRequest, in addIn) (*sdk.CallToolResult, addOut, error) {
		return nil, addOut{Sum: in.A - in.B}, nil
	})
	waitFor(t, "the new tool to be registered", func() bool { return s.Status().Tools == 4 })
	if res := call(t, reg.tool(t, "gohttp__sub"), `{"a":5,"b":3}`); string(res.Structured) != `{"sum":2}` {
		t.Fatalf("sub: %+v", res)
	}

	// The server goes away: the first failed call says so and takes the source down.
	addr := ts.Listener.Addr().String()
	stop(ts)
	_, err = add.Call(context.Background(), toolInput(`{"a":1,"b":1}`))
	if k := api.KindOf(err); k != api.BackendUnavailable {
		t.Fatalf("call to a stopped server: %v (kind %s)", err, k)
	}
	waitFor(t, "the source to be marked down", func() bool { _, down, _ := reg.state(); return down != nil })
	if st := s.Status(); st.Connected || st.LastError == "" {
		t.Fatalf("status after the server stopped: %+v", st)
	}
	if _, err := add.Call(context.Background(), toolInput(`{"a":1,"b":1}`)); api.KindOf(err) != api.BackendUnavailable || !strings.Contains(err.Error(), "is restarting") {
		t.Fatalf("call during the outage: %v", err)
	}

	// Back on the same address: the supervisor reconnects and the old tool works.
	ts2 := g.serve(t, addr)
	defer stop(ts2)
	waitFor(t, "the reconnect", func() bool { _, down, _ := reg.state(); return s.Status().Connected && down == nil })
	if st := s.Status(); st.Restarts != 1 || st.Tools != 4 {
		t.Fatalf("status after reconnect: %+v", st)
	}
	if _, down, _ := reg.state(); down != nil {
		t.Fatalf("source still down: %v", down)
	}
	if res := call(t, add, `{"a":1,"b":2}`); string(res.Structured) != `{"sum":3}` {
		t.Fatalf("add after reconnect: %+v", res)
	}

	// Gone again, and nobody calls: the session's own stream notices.
	stop(ts2)
	waitFor(t, "the source to be marked down without a call", func() bool { _, down, _ := reg.state(); return down != nil })
	// Close while the supervisor is retrying a dead address.
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if st := s.Status(); st.Connected || st.Restarts != 1 {
		t.Fatalf("status after Close: %+v", st)
	}
}

func TestStreamableHTTPStartFails(t *testing.T) {
	// A port nothing listens on.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	url := "http://" + l.Addr().String() + "/mcp"
	l.Close()
	reg := newRegistrar()
	_, err = Start(context.Background(), ServerConfig{Name: "down", URL: url, StartTimeout: 5 * time.Second}, reg, testLog(t))
	if err == nil || !strings.Contains(err.Error(), "MCP server down") || !strings.Contains(err.Error(), url) {
		t.Fatalf("Start against a closed port: %v", err)
	}

	// Something that is not an MCP server.
	ts := httptest.NewServer(http.NotFoundHandler())
	defer ts.Close()
	_, err = Start(context.Background(), ServerConfig{Name: "notmcp", URL: ts.URL, StartTimeout: 5 * time.Second}, reg, testLog(t))
	if err == nil {
		t.Fatal("Start succeeded against a 404 server")
	}
	t.Logf("404 server: %v", err)
	if sets, _, _ := reg.state(); sets != 0 {
		t.Fatal("tools registered from a server that failed to start")
	}
}
