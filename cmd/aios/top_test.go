package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aios-go/aios/api"
)

// topState is a kernel caught mid-work: one call queued and two running for gamma, one
// tool call for alpha, a core with its KV capacity and one without.
func topState() api.DashboardState {
	now := float64(time.Date(2026, 5, 4, 12, 30, 15, 0, time.UTC).UnixMicro()) / 1e3
	return api.DashboardState{
		TimeMs: now, StartedMs: now - 62_400, Status: "running", Scheduler: "rr",
		Modules: []api.DashboardModule{
			{Name: "llm", Enabled: true, Queued: 1, Running: 2}, {Name: "memory"},
			{Name: "storage", Enabled: true}, {Name: "tool", Enabled: true, Running: 1},
		},
		Cores: []api.LLMCoreStatus{
			{ID: "sim/sim-llama3-8b#0", State: "ok", Inflight: 2, MaxInflight: 2, TokensInflight: 224_152, MaxTokensInflight: 448_304},
			{ID: "openai/gpt-4o#1", State: "open", MaxInflight: 0},
		},
		Agents: []api.DashboardAgent{
			{Name: "alpha", Programs: []api.DashboardProgram{{Name: "alpha"}, {Name: "alpha-task-0"}}, Running: 1,
				Usage: api.UsageCounters{Calls: 3, TotalTokens: 141}},
			{Name: "beta", Programs: []api.DashboardProgram{{Name: "beta"}}, Usage: api.UsageCounters{Calls: 2, TotalTokens: 1_144}},
			{Name: "gamma", Programs: []api.DashboardProgram{{Name: "gamma-writer-0"}, {Name: "gamma-writer-1"}, {Name: "gamma-writer-2"}},
				Queued: 1, Running: 2, Usage: api.UsageCounters{Calls: 16, TotalTokens: 3_398}},
		},
		InFlight: []api.DashboardSyscall{
			{ID: 30, Agent: "gamma", Module: "llm", State: "running"}, {ID: 31, Agent: "gamma", Module: "llm", State: "running"},
			{ID: 32, Agent: "gamma", Module: "llm", State: "queued"}, {ID: 33, Agent: "alpha", Module: "tool", State: "running"},
		},
		Usage:      api.UsageCounters{Calls: 21, TotalTokens: 4_683},
		WorkingSet: &api.DashboardWorkingSet{Active: 5, Tokens: 1_192, Admissions: 7, Suspensions: 1},
	}
}

func topHeader(st api.DashboardState) string {
	return "aios top — http://k  running  scheduler rr  up 1m2s  tokens 4,683  " +
		time.UnixMicro(int64(st.TimeMs*1e3)).Format("15:04:05") + "\n"
}

// Agents with calls in flight come first, then by tokens; modules that are off say so;
// a core without a known KV capacity shows its tokens alone.
func TestTopRendersAFrame(t *testing.T) {
	st := topState()
	want := topHeader(st) + `working set: 5 programs active, 1,192 tokens; 7 admitted, 1 suspended

MODULE        QUEUED  RUNNING
llm                1        2
memory (off)       0        0
storage            0        0
tool               0        1

CORE                 STATE  IN FLIGHT          KV TOKENS  KV
sim/sim-llama3-8b#0  ok         2 / 2  224,152 / 448,304  [#####.....]  50%
openai/gpt-4o#1      open       0 / ∞                  0  -

AGENT  PROGRAMS  QUEUED  RUNNING  LLM CALLS  TOKENS  IN FLIGHT
gamma         3       1        2         16   3,398  llm 3
alpha         2       0        1          3     141  tool 1
beta          1       0        0          2   1,144
`
	if got := renderTop(st, "http://k", 0, 0); got != want {
		t.Fatalf("frame:\n%s\nwant:\n%s", got, want)
	}
}

// On a small terminal the frame keeps to its width, and lists the agents that fit.
func TestTopFitsTheTerminal(t *testing.T) {
	got := renderTop(topState(), "http://k", 30, 17)
	lines := strings.Split(strings.TrimSuffix(got, "\n"), "\n")
	if len(lines) > 17 {
		t.Errorf("%d lines on a 17-line terminal:\n%s", len(lines), got)
	}
	for _, l := range lines {
		if n := len([]rune(l)); n > 30 {
			t.Errorf("a line of %d runes on a 30-column terminal: %q", n, l)
		}
	}
	if !strings.Contains(got, "gamma") || strings.Contains(got, "beta ") || lines[len(lines)-1] != "… and 1 more agents" {
		t.Errorf("agents on a 17-line terminal:\n%s", got)
	}
	if got := renderTop(api.DashboardState{}, "http://k", 0, 0); !strings.Contains(got, "no agent has called the kernel yet") {
		t.Errorf("an idle kernel:\n%s", got)
	}
}

func stateServer(t *testing.T, st api.DashboardState, hits *atomic.Int64) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/ui/api/state" {
			http.NotFound(w, r)
			return
		}
		if hits != nil {
			hits.Add(1)
		}
		_ = json.NewEncoder(w).Encode(st)
	}))
	t.Cleanup(srv.Close)
	return srv
}

// `aios top --once` prints one plain frame of the kernel's state and exits.
func TestTopOnce(t *testing.T) {
	st := topState()
	srv := stateServer(t, st, nil)
	var out bytes.Buffer
	root := topCmd()
	root.SetOut(&out)
	root.SetArgs([]string{"--once", "--url", srv.URL + "/"})
	if err := root.ExecuteContext(t.Context()); err != nil {
		t.Fatal(err)
	}
	if want := renderTop(st, srv.URL, 0, 0); out.String() != want {
		t.Fatalf("output:\n%q\nwant:\n%q", out.String(), want)
	}
	if strings.Contains(out.String(), "\x1b[") {
		t.Error("escape codes in output that is not a terminal")
	}
}

func TestTopOnceFails(t *testing.T) {
	srv := stateServer(t, topState(), nil)
	for _, c := range []struct{ url, want string }{
		{srv.URL + "/nothing", "HTTP 404"},
		{"http://127.0.0.1:1", "cannot reach the kernel at http://127.0.0.1:1"},
	} {
		var out bytes.Buffer
		err := runTop(t.Context(), topOptions{url: c.url, interval: time.Second, once: true, out: &out})
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %q", c.url, err, c.want)
		}
	}
}

// Without --once it draws a frame per interval until stopped: plain frames one after
// another when piped, each redrawn from a cleared screen on a terminal.
func TestTopRedraws(t *testing.T) {
	st := topState()
	for _, tty := range []bool{false, true} {
		var hits atomic.Int64
		srv := stateServer(t, st, &hits)
		ctx, cancel := context.WithCancel(t.Context())
		w := &frameWriter{after: 3, stop: cancel}
		o := topOptions{url: srv.URL, interval: 5 * time.Millisecond, out: w}
		if tty {
			o.size = func() (int, int) { return 200, 50 }
		}
		if err := runTop(ctx, o); err != nil {
			t.Fatal(err)
		}
		frame := renderTop(st, srv.URL, 0, 0)
		want := strings.Repeat(frame+"\n", 3)
		if tty {
			want = strings.Repeat(clearScreen+frame, 3)
		}
		if got := w.buf.String(); got != want || hits.Load() != 3 {
			t.Errorf("tty %v: %d requests, output:\n%q\nwant:\n%q", tty, hits.Load(), got, want)
		}
	}
}

// frameWriter stops top after its after-th frame.
type frameWriter struct {
	buf   bytes.Buffer
	n     int
	after int
	stop  func()
}

func (f *frameWriter) Write(p []byte) (int, error) {
	f.n++
	if f.n == f.after {
		f.stop()
	}
	return f.buf.Write(p)
}
