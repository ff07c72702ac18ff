package mcpserver

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	"go.uber.org/goleak"

	"github.com/aios-go/aios/api"
	"github.com/aios-go/aios/internal/testleak"
	"github.com/aios-go/aios/internal/tool"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m, testleak.Ignore()...) }

// call is one CallTool the fake kernel received.
type call struct {
	Agent, Session, Name string
	Args                 json.RawMessage
}

// fakeKernel stands in for the kernel's tool path: it validates the one argument echo
// needs, as the kernel validates against the schema, and records who called what.
type fakeKernel struct {
	mu        sync.Mutex
	specs     []tool.Spec
	calls     []call
	cancelled chan struct{} // closed when a call to "block" sees its context end
	started   chan struct{} // closed when a call to "block" starts
	release   chan struct{} // ends a call to "block" that was never cancelled
}

func yes() *bool { b := true; return &b }
func no() *bool  { b := false; return &b }

func newFake() *fakeKernel {
	return &fakeKernel{
		cancelled: make(chan struct{}),
		started:   make(chan struct{}),
		release:   make(chan struct{}),
		specs: []tool.Spec{
			{Name: "echo", Description: "Says the text back.", Source: "builtin",
				InputSchema: json.RawMessage(`{"type":"object","properties":{"text":{"type":"string"}},"required":["text"]}`),
				Annotations: tool.Annotations{Title: "Echo", ReadOnlyHint: yes(), OpenWorldHint: no()}},
			{Name: "quota", Description: "Always over quota.", Source: "builtin", InputSchema: json.RawMessage(`{"type":"object"}`)},
			{Name: "files__read", Description: "Reads a file.", Source: "mcp:files",
				InputSchema: json.RawMessage(`{"type":"object","properties":{"path":{"type":"string"}}}`),
				Annotations: tool.Annotations{DestructiveHint: no(), IdempotentHint: yes()}},
			{Name: "stats", Description: "Structured output.", Source: "builtin"},
			{Name: "block", Description: "Runs until cancelled.", Source: "builtin", InputSchema: json.RawMessage(`{"type":"object"}`)},
		},
	}
}

func (f *fakeKernel) Tools() []tool.Spec {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]tool.Spec(nil), f.specs...)
}

func (f *fakeKernel) add(s tool.Spec) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.specs = append(f.specs, s)
}

func (f *fakeKernel) remove(name string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i, s := range f.specs {
		if s.Name == name {
			f.specs = append(f.specs[:i], f.specs[i+1:]...)
			return
		}
	}
}

func (f *fakeKernel) recorded() []call {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]call(nil), f.calls...)
}

func (f *fakeKernel) CallTool(ctx context.Context, agent, session, name string, args json.RawMessage) (tool.Result, error) {
	f.mu.Lock()
	f.calls = append(f.calls, call{agent, session, name, append(json.RawMessage(nil), args...)})
	known := false
	for _, s := range f.specs {
		known = known || s.Name == name
	}
	f.mu.Unlock()
	if !known {
		return tool.Result{}, api.Errorf(api.CallerNotFound, "no tool %q", name)
	}
	switch name {
	case "echo":
		var a struct {
			Text *string `json:"text"`
		}
		if err := json.Unmarshal(args, &a); err != nil || a.Text == nil {
			return tool.Result{}, api.Errorf(api.CallerBadRequest, "arguments of echo: text is required")
		}
		return tool.Result{Content: *a.Text}, nil
	case "quota":
		return tool.Result{}, &api.Error{Kind: api.PolicyQuota, Message: "agent " + agent + " used its 10 tool calls this minute", RetryAfter: 2 * time.Second}
	case "files__read":
		return tool.Result{Content: "ENOENT: no such file", IsError: true}, nil
	case "stats":
		return tool.Result{Content: `{"calls":3}`, Structured: json.RawMessage(`{"calls":3}`)}, nil
	case "block":
		close(f.started)
		select {
		case <-ctx.Done():
			close(f.cancelled)
		case <-f.release:
		}
		return tool.Result{}, api.Wrap(api.CallerCancelled, ctx.Err(), "call cancelled")
	}
	return tool.Result{Content: "ok"}, nil
}

func headerAgent(r *http.Request) string { return r.Header.Get("X-AIOS-Agent") }

// serveHTTP serves Handler(k) on a loopback httptest server.
func serveHTTP(t *testing.T, k Kernel) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(Handler(k, headerAgent, nil))
	t.Cleanup(srv.Close)
	return srv
}

// connectHTTP is the Go SDK's client on srv as agent ("" sends no X-AIOS-Agent).
func connectHTTP(t *testing.T, url, agent string, opts *mcp.ClientSessionOptions) (*mcp.ClientSession, error) {
	t.Helper()
	hc := &http.Client{}
	if agent != "" {
		hc.Transport = agentHeader{agent: agent}
	}
	c := mcp.NewClient(&mcp.Implementation{Name: "test", Version: "1"}, nil)
	cs, err := c.Connect(t.Context(), &mcp.StreamableClientTransport{Endpoint: url, HTTPClient: hc, DisableStandaloneSSE: true, MaxRetries: -1}, opts)
	if err == nil {
		t.Cleanup(func() { _ = cs.Close() })
	}
	return cs, err
}

func text(t *testing.T, res *mcp.CallToolResult) string {
	t.Helper()
	if len(res.Content) != 1 {
		t.Fatalf("content: %d items, want 1", len(res.Content))
	}
	tc, ok := res.Content[0].(*mcp.TextContent)
	if !ok {
		t.Fatalf("content is %T, not text", res.Content[0])
	}
	return tc.Text
}

func tool_(name, schema string) tool.Spec {
	return tool.Spec{Name: name, Source: "builtin", InputSchema: json.RawMessage(schema)}
}
