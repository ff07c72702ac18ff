package mcpserver

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// checkTools lists cs's tools and compares them with the fake kernel's specs.
func checkTools(t *testing.T, cs *mcp.ClientSession) {
	t.Helper()
	res, err := cs.ListTools(t.Context(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.CacheScope != "private" {
		t.Errorf("tools/list cache scope %q: a list made for one agent must not be shared", res.CacheScope)
	}
	byName := map[string]*mcp.Tool{}
	for _, tl := range res.Tools {
		byName[tl.Name] = tl
	}
	if len(byName) != 5 {
		t.Fatalf("listed %d tools, want the fake kernel's 5: %v", len(byName), byName)
	}
	echo := byName["echo"]
	if echo.Description != "Says the text back." {
		t.Errorf("echo description %q", echo.Description)
	}
	schema, _ := json.Marshal(echo.InputSchema)
	if !strings.Contains(string(schema), `"required":["text"]`) {
		t.Errorf("echo schema %s, want the registry's", schema)
	}
	if a := echo.Annotations; a == nil || a.Title != "Echo" || !a.ReadOnlyHint || a.OpenWorldHint == nil || *a.OpenWorldHint || a.DestructiveHint != nil {
		t.Errorf("echo annotations %+v, want title Echo, read-only, closed world, destructive unknown", a)
	}
	if a := byName["files__read"].Annotations; a == nil || !a.IdempotentHint || a.DestructiveHint == nil || *a.DestructiveHint {
		t.Errorf("files__read annotations %+v", a)
	}
	if a := byName["quota"].Annotations; a != nil {
		t.Errorf("quota has no annotations in the registry, got %+v", a)
	}
	if s, _ := json.Marshal(byName["stats"].InputSchema); string(s) != `{"type":"object"}` {
		t.Errorf("a tool with no schema should take any object, got %s", s)
	}
}

// checkCalls calls each kind of tool through cs and checks what the model would read.
func checkCalls(t *testing.T, cs *mcp.ClientSession) {
	t.Helper()
	ctx := t.Context()
	callTool := func(name string, args any) *mcp.CallToolResult {
		t.Helper()
		res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: name, Arguments: args})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		return res
	}

	if res := callTool("echo", map[string]any{"text": "hi"}); res.IsError || text(t, res) != "hi" {
		t.Errorf("echo: %+v %q", res, text(t, res))
	}
	// A kernel error is for the model to read, with its kind.
	if res := callTool("echo", map[string]any{"txt": "hi"}); !res.IsError || text(t, res) != "error caller_bad_request: arguments of echo: text is required" {
		t.Errorf("echo with bad arguments: isError %v %q", res.IsError, text(t, res))
	}
	res := callTool("quota", nil)
	if got := text(t, res); !res.IsError || !strings.HasPrefix(got, "error policy_quota_exceeded: agent ") || !strings.HasSuffix(got, "this minute (retry after 2s)") {
		t.Errorf("quota: isError %v %q", res.IsError, got)
	}
	if res := callTool("files__read", map[string]any{"path": "/x"}); !res.IsError || text(t, res) != "ENOENT: no such file" {
		t.Errorf("files__read: isError %v %q", res.IsError, text(t, res))
	}
	res = callTool("stats", map[string]any{})
	if s, _ := json.Marshal(res.StructuredContent); res.IsError || string(s) != `{"calls":3}` {
		t.Errorf("stats: isError %v structured %s", res.IsError, s)
	}

	// An unknown tool is a protocol error, as MCP specifies.
	_, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "nope", Arguments: map[string]any{}})
	var rpc *jsonrpc.Error
	if !errors.As(err, &rpc) || rpc.Code != jsonrpc.CodeInvalidParams || !strings.Contains(rpc.Message, `unknown tool "nope"`) {
		t.Errorf("unknown tool: %v, want JSON-RPC invalid params", err)
	}
}

func TestHTTP(t *testing.T) {
	for _, version := range []string{"", "2025-11-25", "2025-06-18", "2025-03-26"} {
		t.Run("protocol "+version, func(t *testing.T) {
			f := newFake()
			srv := serveHTTP(t, f)
			cs, err := connectHTTP(t, srv.URL, "alice", &mcp.ClientSessionOptions{ProtocolVersion: version})
			if err != nil {
				t.Fatal(err)
			}
			if version == "" {
				t.Logf("negotiated %s", cs.InitializeResult().ProtocolVersion)
			} else if got := cs.InitializeResult().ProtocolVersion; got != version {
				t.Errorf("negotiated %s, want %s", got, version)
			}
			checkTools(t, cs)
			checkCalls(t, cs)
			for _, c := range f.recorded() {
				if c.Agent != "alice" || c.Session != "alice" {
					t.Errorf("%s called as agent %q session %q, want alice for both (stateless: the session is the agent)", c.Name, c.Agent, c.Session)
				}
			}
			if c := f.recorded()[0]; c.Name != "echo" || string(c.Args) != `{"text":"hi"}` {
				t.Errorf("first call %+v", c)
			}
		})
	}
}

func TestHTTPAgentScoping(t *testing.T) {
	f := newFake()
	srv := serveHTTP(t, f)
	for _, agent := range []string{"alice", "bob"} {
		cs, err := connectHTTP(t, srv.URL, agent, nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := cs.CallTool(t.Context(), &mcp.CallToolParams{Name: "echo", Arguments: map[string]any{"text": agent}}); err != nil {
			t.Fatal(err)
		}
	}
	calls := f.recorded()
	if len(calls) != 2 || calls[0].Agent != "alice" || calls[1].Agent != "bob" || calls[1].Session != "bob" {
		t.Fatalf("calls %+v, want one as alice then one as bob", calls)
	}
}

func TestHTTPMissingAgent(t *testing.T) {
	f := newFake()
	srv := serveHTTP(t, f)
	if _, err := connectHTTP(t, srv.URL, "", nil); err == nil || !strings.Contains(err.Error(), "X-AIOS-Agent") {
		t.Errorf("connecting with no agent: %v, want a refusal naming X-AIOS-Agent", err)
	}

	body := `{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{}}`
	req, _ := http.NewRequestWithContext(t.Context(), "POST", srv.URL, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var msg struct {
		JSONRPC string
		Error   *jsonrpc.Error
	}
	if err := json.Unmarshal(b, &msg); err != nil || resp.StatusCode != 400 || msg.JSONRPC != "2.0" || msg.Error == nil || msg.Error.Code != jsonrpc.CodeInvalidRequest {
		t.Errorf("no agent: HTTP %d %s, want 400 with a JSON-RPC invalid-request error", resp.StatusCode, b)
	}
	if n := len(f.recorded()); n != 0 {
		t.Errorf("the kernel saw %d calls from a request with no agent", n)
	}
}

// The tool list is read per request: a tool registered after the client connected
// (an MCP server restarted) is listed and callable, and one that left is gone.
func TestHTTPToolsChange(t *testing.T) {
	f := newFake()
	srv := serveHTTP(t, f)
	cs, err := connectHTTP(t, srv.URL, "alice", nil)
	if err != nil {
		t.Fatal(err)
	}
	f.add(newFake().specs[0])
	f.mu.Lock()
	f.specs[len(f.specs)-1].Name = "late"
	f.mu.Unlock()
	f.remove("quota")
	res, err := cs.ListTools(t.Context(), nil)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, tl := range res.Tools {
		names = append(names, tl.Name)
	}
	if got := strings.Join(names, ","); !strings.Contains(got, "late") || strings.Contains(got, "quota") {
		t.Errorf("tools %s, want late listed and quota gone", got)
	}
	if r, err := cs.CallTool(t.Context(), &mcp.CallToolParams{Name: "late", Arguments: map[string]any{"text": "x"}}); err != nil || r.IsError {
		t.Errorf("late: %v %+v", err, r)
	}
}

// A client that gives up on a call cancels the kernel's syscall.
func TestHTTPCancel(t *testing.T) {
	for _, version := range []string{"", "2025-11-25"} {
		t.Run("protocol "+version, func(t *testing.T) { testCancel(t, version) })
	}
}

func testCancel(t *testing.T, version string) {
	f := newFake()
	srv := serveHTTP(t, f)
	t.Cleanup(func() { close(f.release) }) // before srv.Close, which waits for the call
	cs, err := connectHTTP(t, srv.URL, "alice", &mcp.ClientSessionOptions{ProtocolVersion: version})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() {
		_, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "block", Arguments: map[string]any{}})
		done <- err
	}()
	<-f.started
	cancel()
	select {
	case <-f.cancelled:
	case <-time.After(10 * time.Second):
		t.Fatal("the kernel's call was not cancelled when the client gave up")
	}
	if err := <-done; err == nil {
		t.Error("the cancelled call returned no error")
	}
}

// A schema the SDK refuses (not an object) costs that tool, not the server.
func TestHTTPBadSchema(t *testing.T) {
	f := newFake()
	f.add(tool_("bad", `{"type":"string"}`))
	srv := serveHTTP(t, f)
	cs, err := connectHTTP(t, srv.URL, "alice", nil)
	if err != nil {
		t.Fatal(err)
	}
	res, err := cs.ListTools(t.Context(), nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, tl := range res.Tools {
		if tl.Name == "bad" {
			t.Error("a tool whose schema is not an object was offered")
		}
	}
	if len(res.Tools) != 5 {
		t.Errorf("%d tools, want the 5 good ones", len(res.Tools))
	}
}
