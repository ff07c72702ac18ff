package server

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"io/fs"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/aios-go/aios/api"
	"github.com/aios-go/aios/internal/kernel"
	"github.com/aios-go/aios/internal/llm"
)

// The dashboard's files come from the binary, with a policy that forbids loading
// anything from elsewhere; no file names a remote URL (no CDN, no web fonts).
func TestUIDashboardServesEmbeddedFiles(t *testing.T) {
	h := start(t, Options{})
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := noRedirect.Get(h.url + "/ui")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMovedPermanently || resp.Header.Get("Location") != "/ui/" {
		t.Fatalf("GET /ui: %d to %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	for path, want := range map[string]string{"/ui/": "text/html", "/ui/app.js": "javascript", "/ui/style.css": "text/css"} {
		resp, err := http.Get(h.url + path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(resp.Header.Get("Content-Type"), want) || len(b) == 0 {
			t.Errorf("GET %s: %d %q, %d bytes", path, resp.StatusCode, resp.Header.Get("Content-Type"), len(b))
		}
		if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'self'") {
			t.Errorf("GET %s: Content-Security-Policy %q", path, csp)
		}
	}
	remote := regexp.MustCompile(`(?i)(https?:)?//[a-z0-9.-]+\.[a-z]{2,}/|@import|@font-face`)
	err = fs.WalkDir(uiFiles, "ui", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := uiFiles.ReadFile(path)
		if m := remote.Find(b); m != nil {
			t.Errorf("%s loads something from elsewhere: %q", path, m)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

// The state shows each agent that called the kernel with its programs and the tokens
// the usage book charged it, its calls among the recent ones by module, every module's
// queue, the core and the tools.
func TestUIDashboardStateShowsTheKernel(t *testing.T) {
	h := startSystem(t, nil)
	for range 2 {
		h.llmQuery(`{"messages":[{"role":"user","content":"hello"}],"max_new_tokens":8}`)
	}
	h.ok(`{"agent_name":"bob","query_type":"storage","query_data":{"query_class":"storage","operation_type":"write","params":{"file_path":"a.txt","content":"x"}}}`)
	if r := h.toolQuery(`{"agent_name":"carol","query_type":"tool","query_data":{"tool_calls":[{"name":"calculator","parameters":{"expression":"1+1"}}]}}`); r.Response.StatusCode != 200 {
		t.Fatalf("tool query: %+v", r.Response)
	}
	var usage api.UsageReport
	h.get("/admin/usage", &usage)

	var st api.DashboardState
	// A call is in the recent list once its end is recorded, just after its answer.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		st = api.DashboardState{}
		h.get("/ui/api/state", &st)
		if len(st.Recent) >= 4 || time.Now().After(deadline) {
			break
		}
	}
	if st.Status != "running" || st.Scheduler == "" || st.TimeMs <= st.StartedMs || st.StartedMs == 0 {
		t.Errorf("header: %+v", st)
	}
	agents := map[string]api.DashboardAgent{}
	for _, a := range st.Agents {
		agents[a.Name] = a
	}
	tester := agents["tester"]
	if tester.Usage != usage.Agents["tester"] || tester.Usage.Calls != 2 || tester.Usage.TotalTokens == 0 ||
		len(tester.Programs) != 1 || tester.Programs[0].Name != "tester" || tester.LastActiveMs == 0 {
		t.Errorf("agent tester: %+v, usage book %+v", tester, usage.Agents["tester"])
	}
	if _, ok := agents["bob"]; !ok {
		t.Errorf("bob's storage call left no agent: %+v", st.Agents)
	}
	if _, ok := agents["carol"]; !ok {
		t.Errorf("carol's tool call left no agent: %+v", st.Agents)
	}
	if st.Usage != usage.Total {
		t.Errorf("total %+v, usage book %+v", st.Usage, usage.Total)
	}
	mods := map[string]string{}
	for _, c := range st.Recent {
		mods[c.Agent+"/"+c.Module] = c.State
		if c.Seq == 0 || c.ArrivalMs == 0 || c.StartMs < c.ArrivalMs || c.EndMs < c.StartMs || c.Slices != 1 {
			t.Errorf("recent call: %+v", c)
		}
	}
	if mods["tester/llm"] != "done" || mods["bob/storage"] != "done" || mods["carol/tool"] != "done" {
		t.Errorf("recent calls by agent/module: %v", mods)
	}
	if len(st.Modules) != 4 || st.Modules[0].Name != "llm" || !st.Modules[0].Enabled {
		t.Errorf("modules: %+v", st.Modules)
	}
	if len(st.Cores) != 1 || st.Cores[0].Name != "sim-test" || st.Cores[0].MaxTokensInflight == 0 {
		t.Errorf("cores: %+v", st.Cores)
	}
	tools, _ := json.Marshal(st.Tools)
	if !strings.Contains(string(tools), `"name":"calculator"`) {
		t.Errorf("tools: %s", tools)
	}
	if st.Memory == nil {
		t.Errorf("memory is on by default, and the state has no memory counters")
	}
}

// blockedCore is a core whose calls run until release is closed.
func blockedCore(release chan struct{}) kernel.CoreConfig {
	return kernel.CoreConfig{Model: "m", Backend: "test", Core: &funcCore{
		gen: func(ctx context.Context, req *llm.Request, emit func(llm.Delta)) (*llm.Result, error) {
			emit(llm.Delta{Text: "x"})
			select {
			case <-release:
				return &llm.Result{Text: "x"}, nil
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		},
	}}
}

// A call in flight shows as running on its core, under its agent and program.
func TestUIDashboardStateInFlight(t *testing.T) {
	release := make(chan struct{})
	h := start(t, Options{}, blockedCore(release))
	done := make(chan struct{})
	go func() {
		defer close(done)
		h.post("/v1/chat/completions", `{"model":"m","user":"dora","messages":[{"role":"user","content":"hi"}]}`, api.HeaderSession, "dora-1")
	}()
	var st api.DashboardState
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		st = api.DashboardState{}
		h.get("/ui/api/state", &st)
		if len(st.InFlight) == 1 && st.InFlight[0].State == "running" {
			break
		}
		if time.Now().After(deadline) {
			close(release)
			t.Fatalf("no call running: %+v", st)
		}
	}
	c := st.InFlight[0]
	if c.Agent != "dora" || c.Program != "dora-1" || c.Module != "llm" || c.Core != "test/m#0" || c.Resource != "m" || c.EndMs != 0 || c.Seq != 0 {
		t.Errorf("in flight: %+v", c)
	}
	if len(st.Agents) != 1 || st.Agents[0].Running != 1 || len(st.Agents[0].Programs) != 1 || st.Agents[0].Programs[0].Inflight != 1 {
		t.Errorf("agents: %+v", st.Agents)
	}
	if st.Modules[0].Running != 1 || st.Cores[0].Inflight != 1 {
		t.Errorf("modules %+v cores %+v", st.Modules, st.Cores)
	}
	close(release)
	<-done
}

type uiEvent struct{ name, data string }

// uiEvents reads r's events into a channel until r ends.
func uiEvents(r io.Reader) <-chan uiEvent {
	ch := make(chan uiEvent, 64)
	go func() {
		defer close(ch)
		sc := bufio.NewScanner(r)
		sc.Buffer(make([]byte, 0, 1<<16), 1<<24)
		var ev uiEvent
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == "":
				if ev.name != "" || ev.data != "" {
					ch <- ev
				}
				ev = uiEvent{}
			case strings.HasPrefix(line, "event: "):
				ev.name = line[len("event: "):]
			case strings.HasPrefix(line, "data: "):
				ev.data = line[len("data: "):]
			}
		}
	}()
	return ch
}

func nextEvent(t *testing.T, ch <-chan uiEvent, name string) uiEvent {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case ev, ok := <-ch:
			if !ok {
				t.Fatalf("the stream ended before a %q event", name)
			}
			if ev.name == name {
				return ev
			}
		case <-timeout:
			t.Fatalf("no %q event in 10s", name)
		}
	}
}

func openEvents(t *testing.T, ctx context.Context, url string) (*http.Response, <-chan uiEvent) {
	t.Helper()
	req, _ := http.NewRequestWithContext(ctx, "GET", url, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
		resp.Body.Close()
		t.Fatalf("GET %s: %d %q", url, resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	return resp, uiEvents(resp.Body)
}

// The stream opens with the state and the recent calls, sends each call as it ends and
// the state again every interval; when the client leaves the handler returns (goleak
// checks the package for what it left running).
func TestUIDashboardEventsStream(t *testing.T) {
	h := start(t, Options{})
	h.llmQuery(`{"messages":[{"role":"user","content":"before"}],"max_new_tokens":4}`)
	ctx, cancel := context.WithCancel(t.Context())
	resp, events := openEvents(t, ctx, h.url+"/ui/api/events?interval_ms=50")
	defer resp.Body.Close()

	var first api.DashboardState
	if err := json.Unmarshal([]byte(nextEvent(t, events, "state").data), &first); err != nil {
		t.Fatal(err)
	}
	// The first call's end may be recorded just after its answer: it is then in the
	// first state's recent list, or it comes as the stream's first "end" event.
	seen := len(first.Recent)
	h.llmQuery(`{"messages":[{"role":"user","content":"during"}],"max_new_tokens":4}`)
	var last api.DashboardSyscall
	for seen < 2 {
		if err := json.Unmarshal([]byte(nextEvent(t, events, "end").data), &last); err != nil {
			t.Fatal(err)
		}
		seen++
	}
	if last.Agent != "tester" || last.Module != "llm" || last.State != "done" || last.Seq != 2 || last.EndMs == 0 {
		t.Errorf("end event: %+v", last)
	}
	var later api.DashboardState
	if err := json.Unmarshal([]byte(nextEvent(t, events, "state").data), &later); err != nil {
		t.Fatal(err)
	}
	if later.Recent != nil || later.LastEnded != 2 || later.Usage.Calls != 2 {
		t.Errorf("a later state: recent %d, last ended %d, usage %+v", len(later.Recent), later.LastEnded, later.Usage)
	}
	cancel()
	for range events { // drained when the body closes
	}
}

// The stream ends, with a "shutdown" event, when the kernel shuts down; nothing waits
// for the client to leave.
func TestUIDashboardEventsEndOnShutdown(t *testing.T) {
	h := start(t, Options{})
	resp, events := openEvents(t, t.Context(), h.url+"/ui/api/events")
	defer resp.Body.Close()
	nextEvent(t, events, "state")
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	if err := h.srv.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	nextEvent(t, events, "shutdown")
	select {
	case _, ok := <-events:
		if ok {
			t.Fatal("an event after shutdown")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the stream stayed open after the kernel shut down")
	}
}

func TestUIDashboardEventsBadInterval(t *testing.T) {
	h := start(t, Options{})
	code, b := h.rest("GET", "/ui/api/events?interval_ms=soon", "", "")
	if code != http.StatusBadRequest || !strings.Contains(string(b), "interval_ms") {
		t.Fatalf("%d %s", code, b)
	}
}
