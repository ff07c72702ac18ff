package mcpserver

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/aios-go/aios/api"
	"github.com/aios-go/aios/internal/tool"
)

// remoteOf connects a Remote to Handler(f) served over HTTP, the way `aios mcp` reaches
// a running kernel.
func remoteOf(t *testing.T, f *fakeKernel, agent string) Kernel {
	t.Helper()
	mux := http.NewServeMux()
	mux.Handle("/mcp", Handler(f, headerAgent, nil))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	k, closer, err := Remote(t.Context(), srv.URL+"/", agent, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = closer.Close() })
	return k
}

func TestRemoteTools(t *testing.T) {
	f := newFake()
	k := remoteOf(t, f, "desk")
	got := map[string]tool.Spec{}
	for _, s := range k.Tools() {
		got[s.Name] = s
	}
	for _, want := range f.Tools() {
		s, ok := got[want.Name]
		if !ok {
			t.Errorf("%s not listed", want.Name)
			continue
		}
		if s.Description != want.Description || !sameAnnotations(s.Annotations, want.Annotations) {
			t.Errorf("%s: %+v, want %+v", want.Name, s, want)
		}
		if len(want.InputSchema) > 0 && !sameJSON(s.InputSchema, want.InputSchema) {
			t.Errorf("%s schema %s, want %s", want.Name, s.InputSchema, want.InputSchema)
		}
	}
}

func sameJSON(a, b json.RawMessage) bool {
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return false
	}
	ja, _ := json.Marshal(x)
	jb, _ := json.Marshal(y)
	return string(ja) == string(jb)
}

// A call through Remote gives its caller what the far kernel's CallTool gave: results,
// and typed errors with their kind and retry delay.
func TestRemoteCall(t *testing.T) {
	f := newFake()
	k := remoteOf(t, f, "desk")
	ctx := t.Context()

	res, err := k.CallTool(ctx, "desk", "desk", "echo", json.RawMessage(`{"text":"hi"}`))
	if err != nil || res.Content != "hi" || res.IsError {
		t.Errorf("echo: %+v %v", res, err)
	}
	if c := f.recorded()[0]; c.Agent != "desk" || string(c.Args) != `{"text":"hi"}` {
		t.Errorf("the far kernel saw %+v", c)
	}
	res, err = k.CallTool(ctx, "desk", "desk", "files__read", json.RawMessage(`{}`))
	if err != nil || !res.IsError || res.Content != "ENOENT: no such file" {
		t.Errorf("files__read: %+v %v", res, err)
	}
	res, err = k.CallTool(ctx, "desk", "desk", "stats", json.RawMessage(`{}`))
	if err != nil || !sameJSON(res.Structured, json.RawMessage(`{"calls":3}`)) {
		t.Errorf("stats: %+v %v", res, err)
	}

	_, err = k.CallTool(ctx, "desk", "desk", "quota", json.RawMessage(`{}`))
	var e *api.Error
	if !errors.As(err, &e) || e.Kind != api.PolicyQuota || e.RetryAfter != 2*time.Second || e.Message != "agent desk used its 10 tool calls this minute" {
		t.Errorf("quota: %#v, want the far kernel's policy_quota_exceeded", err)
	}
	if _, err := k.CallTool(ctx, "desk", "desk", "nope", json.RawMessage(`{}`)); api.KindOf(err) != api.CallerNotFound {
		t.Errorf("unknown tool: %v, want caller_not_found", err)
	}
	if _, err := k.CallTool(ctx, "mallory", "desk", "echo", json.RawMessage(`{"text":"x"}`)); api.KindOf(err) != api.PolicyDenied {
		t.Errorf("a call as another agent: %v, want policy_denied", err)
	}
	for _, c := range f.recorded() {
		if c.Agent != "desk" {
			t.Errorf("the far kernel saw a call as %q", c.Agent)
		}
	}
}

func TestRemoteUnreachable(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	srv.Close()
	if _, _, err := Remote(t.Context(), srv.URL, "desk", nil); err == nil {
		t.Error("Remote connected to a closed server")
	}
	if _, _, err := Remote(t.Context(), "http://127.0.0.1:1", "", nil); err == nil {
		t.Error("Remote with no agent connected")
	}
}

// What `aios mcp` runs: a stdio server whose kernel is a Remote. The client must not be
// able to tell it from a stdio server on the kernel itself.
func TestStdioOverRemote(t *testing.T) {
	f := newFake()
	cs, _ := stdio(t, t.Context(), remoteOf(t, f, "desk"), "desk", nil, "")
	checkTools(t, cs)
	checkCalls(t, cs)
	for _, c := range f.recorded() {
		if c.Agent != "desk" || c.Session != "desk" {
			t.Errorf("%s called as agent %q session %q, want desk", c.Name, c.Agent, c.Session)
		}
	}
}
