package server

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aios-go/aios/api"
	"github.com/aios-go/aios/internal/agents"
	"github.com/aios-go/aios/internal/kernel"
	"github.com/aios-go/aios/internal/llm"
)

// agentsHarness is a kernel with the agent runtime wired as `aios serve` wires it: the
// runtime's agents reach the test server, and its hooks cancel and end programs.
type agentsHarness struct {
	t    *testing.T
	url  string
	root string
	rt   *agents.Runtime
}

func startAgents(t *testing.T, core llm.Core) *agentsHarness {
	t.Helper()
	if core == nil {
		core = fastSim(t, 16)
	}
	k, err := kernel.New(kernel.Options{}, []kernel.CoreConfig{{Model: "sim-test", Backend: "test", Core: core}})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewUnstartedServer(nil)
	root := t.TempDir()
	rt, err := agents.New(agents.Options{
		KernelURL: agents.KernelURL(ts.Listener.Addr()), Dirs: []string{root}, KillGrace: 200 * time.Millisecond,
		Cancel: func(program string, cause error) { k.CancelProgram(program, cause) },
		Ended:  k.EndProgram,
	})
	if err != nil {
		t.Fatal(err)
	}
	ts.Config.Handler = New(k, Options{Agents: rt}).Handler()
	ts.Start()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := rt.Close(ctx); err != nil {
			t.Errorf("runtime close: %v", err)
		}
		ts.Close()
		_ = k.Shutdown(ctx)
	})
	return &agentsHarness{t: t, url: ts.URL, root: root, rt: rt}
}

// manifest writes an executable agent under the harness's root.
func (h *agentsHarness) manifest(folder string, m map[string]any) {
	h.t.Helper()
	dir := filepath.Join(h.root, folder)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		h.t.Fatal(err)
	}
	b, _ := json.Marshal(m)
	if err := os.WriteFile(filepath.Join(dir, agents.ManifestFile), b, 0o644); err != nil {
		h.t.Fatal(err)
	}
}

func (h *agentsHarness) do(method, path, body string, out any) int {
	h.t.Helper()
	req, _ := http.NewRequest(method, h.url+path, strings.NewReader(body))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			h.t.Fatalf("%s %s: %v: %s", method, path, err, b)
		}
	}
	return resp.StatusCode
}

func (h *agentsHarness) wait(id int64) {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := h.rt.Wait(ctx, id); err != nil {
		h.t.Fatal(err)
	}
}

// TestAgentsRoutesInAIOSShapes: submit, status, ps and logs answer as AIOS's kernel
// does, with the runtime's record beside.
func TestAgentsRoutesInAIOSShapes(t *testing.T) {
	h := startAgents(t, nil)
	h.manifest("echo", map[string]any{"name": "echo-agent", "command": []string{"sh", "-c",
		`echo "working on $AIOS_TASK"; echo "::aios-result::{\"echo\": \"$AIOS_TASK\"}"`}})

	var sub api.AgentSubmitResponse
	if code := h.do("POST", "/agents/submit", `{"agent_id": "echo", "agent_config": {"task": "ping"}}`, &sub); code != 200 {
		t.Fatalf("submit: %d %+v", code, sub)
	}
	if sub.Status != "success" || sub.ExecutionID != 1 || sub.AgentName != "echo-agent" || sub.Message != "Agent echo submitted for execution" || !strings.HasPrefix(sub.Program, "run-1-") {
		t.Errorf("submit answer: %+v", sub)
	}
	h.wait(sub.ExecutionID)

	var st api.AgentStatus
	if code := h.do("GET", "/agents/1/status", "", &st); code != 200 {
		t.Fatalf("status: %d", code)
	}
	if st.Status != "completed" || st.State != api.AgentExited || string(st.Result) != `{"echo":"ping"}` || st.ExecutionID != 1 || st.Task != "ping" {
		t.Errorf("status: %+v", st)
	}
	var ps api.AgentList
	h.do("GET", "/agents/ps", "", &ps)
	if ps.Status != "success" || len(ps.Processes) != 1 || ps.Processes[0].Status != "completed" || ps.Processes[0].AgentID != "echo" {
		t.Errorf("ps: %+v", ps)
	}
	var logs api.AgentLogs
	h.do("GET", "/agents/1/logs?tail=5", "", &logs)
	if len(logs.Lines) != 1 || logs.Lines[0].Text != "working on ping" || logs.Lines[0].Stream != "stdout" || logs.State != api.AgentExited {
		t.Errorf("logs: %+v", logs)
	}
}

// TestAgentsRoutesRefuse: nothing outside the agents dirs runs, and every malformed
// request is the caller's error, in the kernel's {"detail", "kind"} shape.
func TestAgentsRoutesRefuse(t *testing.T) {
	h := startAgents(t, nil)
	h.manifest("ok", map[string]any{"name": "ok", "command": []string{"true"}})
	outside := t.TempDir()
	if err := os.WriteFile(filepath.Join(outside, agents.ManifestFile), []byte(`{"name": "evil", "command": ["true"]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(h.root, "link")); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		method, path, body string
		code               int
	}{
		{"POST", "/agents/submit", `{"agent_id": "../` + filepath.Base(outside) + `", "agent_config": {"task": "x"}}`, 400},
		{"POST", "/agents/submit", `{"agent_id": "` + outside + `", "agent_config": {"task": "x"}}`, 404},
		{"POST", "/agents/submit", `{"agent_id": "link", "agent_config": {"task": "x"}}`, 404},
		{"POST", "/agents/submit", `{"agent_id": "evil", "agent_config": {"task": "x"}}`, 404},
		{"POST", "/agents/submit", `{"agent_id": "ok", "agent_config": {}}`, 400},
		{"POST", "/agents/submit", `{"agent_id": "ok", "agent_config": {"task": "x", "restart": {"policy": "always"}}}`, 400},
		{"POST", "/agents/submit", `{"agent_id": "ok"`, 400},
		{"GET", "/agents/abc/status", "", 400},
		{"GET", "/agents/99/status", "", 404},
		{"GET", "/agents/99/logs", "", 404},
		{"GET", "/agents/1/logs?tail=-1", "", 400},
		{"POST", "/agents/99/cancel", "", 404},
		{"DELETE", "/agents/x", "", 400},
	} {
		var body api.ErrorBody
		if code := h.do(c.method, c.path, c.body, &body); code != c.code || body.Detail == "" || body.Kind == "" {
			t.Errorf("%s %s %s: %d %+v, want %d", c.method, c.path, c.body, code, body, c.code)
		}
	}
	if runs := h.rt.List(); len(runs) != 0 {
		t.Errorf("refused submissions started %+v", runs)
	}

	// Without a runtime every route answers 501.
	off := start(t, Options{})
	for _, p := range []string{"/agents/ps", "/agents/1/status", "/agents/1/logs"} {
		resp, err := http.Get(off.url + p)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotImplemented {
			t.Errorf("GET %s with the runtime off: %d", p, resp.StatusCode)
		}
	}
	if code, b, _ := off.post("/agents/submit", `{"agent_id": "ok", "agent_config": {"task": "x"}}`); code != http.StatusNotImplemented {
		t.Errorf("submit with the runtime off: %d %s", code, b)
	}
}

// blockingCore holds every call until its context ends, and reports the cause.
type blockingCore struct {
	started chan struct{}
	causes  chan error
}

func (c *blockingCore) Generate(ctx context.Context, req *llm.Request, emit func(llm.Delta)) (*llm.Result, error) {
	c.started <- struct{}{}
	<-ctx.Done()
	c.causes <- context.Cause(ctx)
	return nil, context.Cause(ctx)
}
func (c *blockingCore) Capabilities() llm.Capabilities { return llm.Capabilities{} }
func (c *blockingCore) Capacity() llm.Capacity         { return llm.Capacity{MaxInflight: 4} }
func (c *blockingCore) Health(context.Context) error   { return nil }
func (c *blockingCore) Close() error                   { return nil }

// TestAgentsCancelEndsTheProgramsSyscalls: an agent waits on an LLM call made as its
// program; cancelling the run (POST .../cancel, then DELETE for a second run) ends that
// call as cancelled by the run, before the process goes, and the run as cancelled.
func TestAgentsCancelEndsTheProgramsSyscalls(t *testing.T) {
	core := &blockingCore{started: make(chan struct{}, 4), causes: make(chan error, 4)}
	h := startAgents(t, core)
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	h.manifest("caller", map[string]any{"name": "caller", "command": []string{self, "-test.run=^TestAgentHelperProcess$"},
		"env": map[string]string{"AIOS_AGENTS_TEST_HELPER": "1"}})
	for i, cancel := range []struct{ method, path string }{{"POST", "/agents/%d/cancel"}, {"DELETE", "/agents/%d"}} {
		var sub api.AgentSubmitResponse
		if code := h.do("POST", "/agents/submit", `{"agent_id": "caller", "agent_config": {"task": "wait"}}`, &sub); code != 200 {
			t.Fatalf("submit: %d", code)
		}
		<-core.started // the agent's call holds the core
		var st api.AgentStatus
		if code := h.do(cancel.method, fmt.Sprintf(cancel.path, sub.ExecutionID), "", &st); code != 200 {
			t.Fatalf("cancel: %d", code)
		}
		if st.Status != "cancelled" || st.State != api.AgentCancelled || !strings.Contains(st.Error, "was cancelled") {
			t.Errorf("run %d after cancel: %+v", i, st)
		}
		cause := <-core.causes
		if api.KindOf(cause) != api.CallerCancelled || !strings.Contains(cause.Error(), fmt.Sprintf("agent run %d was cancelled", sub.ExecutionID)) {
			t.Errorf("the agent's syscall ended with %v; want the run's cancellation", cause)
		}
	}
}

// TestAgentHelperProcess is the agent of TestAgentsCancelEndsTheProgramsSyscalls when
// run by the runtime; otherwise it does nothing. It makes one LLM call as its program,
// as the examples do, and prints the answer as its result.
func TestAgentHelperProcess(t *testing.T) {
	if os.Getenv("AIOS_AGENTS_TEST_HELPER") != "1" {
		return
	}
	body, _ := json.Marshal(map[string]any{
		"agent_name": os.Getenv("AIOS_AGENT"), "query_type": "llm",
		"query_data": map[string]any{"messages": []map[string]string{{"role": "user", "content": "hold on"}}, "session": os.Getenv("AIOS_PROGRAM")},
	})
	resp, err := http.Post(os.Getenv("AIOS_KERNEL_URL")+"/query", "application/json", bytes.NewReader(body))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	b, _ := io.ReadAll(resp.Body)
	fmt.Printf("%s%s\n", agents.ResultMarker, b)
	os.Exit(0)
}
