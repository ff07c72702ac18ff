package metrics_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"go.uber.org/goleak"

	"github.com/aios-go/aios/internal/boot"
	"github.com/aios-go/aios/internal/config"
	"github.com/aios-go/aios/internal/kernel"
	"github.com/aios-go/aios/internal/metrics"
	"github.com/aios-go/aios/internal/server"
	"github.com/aios-go/aios/internal/testleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m, testleak.Ignore()...) }

// system is a kernel as aios serve builds it, with its metrics, behind its server.
type system struct {
	t     *testing.T
	url   string
	ended chan string // the module of each syscall the metrics observed ending
}

func startSystem(t *testing.T) *system {
	t.Helper()
	cfg := config.Defaults()
	cfg.DataDir = t.TempDir()
	cfg.LLMs.Models = []config.Model{{Name: "sim-test", Backend: "sim", Cores: 1, Speed: 200}}
	mx := metrics.New()
	s := &system{t: t, ended: make(chan string, 1024)}
	// The hook is the metrics' own, plus a signal: a syscall's waiters are released
	// before the hook runs, so the test waits for it rather than for the response.
	sys, err := boot.Build(cfg, nil, boot.OnEnd(func(sc *kernel.Syscall) {
		mx.OnEnd(sc)
		s.ended <- sc.Module.String()
	}))
	if err != nil {
		t.Fatal(err)
	}
	mx.Watch(metrics.Sources{Kernel: sys.Kernel, Tools: sys.Tools, Memory: sys.Memory})
	srv := server.New(sys.Kernel, server.Options{Tools: sys.Tools, Shared: sys.Storage, MemoryStats: sys.Memory, Metrics: mx.Handler()})
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = sys.Kernel.Shutdown(ctx)
		ts.Close()
	})
	s.url = ts.URL
	return s
}

func (s *system) post(path, body string, headers ...string) {
	s.t.Helper()
	req, _ := http.NewRequest("POST", s.url+path, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		s.t.Fatalf("POST %s: %d %s", path, resp.StatusCode, b)
	}
}

// waitEnded waits until the metrics have observed at least want syscalls per module.
func (s *system) waitEnded(want map[string]int) {
	s.t.Helper()
	got := map[string]int{}
	timeout := time.After(10 * time.Second)
	for {
		done := true
		for m, n := range want {
			done = done && got[m] >= n
		}
		if done {
			return
		}
		select {
		case m := <-s.ended:
			got[m]++
		case <-timeout:
			s.t.Fatalf("syscalls observed %v, want %v", got, want)
		}
	}
}

func (s *system) scrape() map[string]*dto.MetricFamily {
	s.t.Helper()
	resp, err := http.Get(s.url + "/metrics")
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		s.t.Fatalf("GET /metrics: %d", resp.StatusCode)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		s.t.Fatal(err)
	}
	return mfs
}

// value is the sample of family name whose labels include want; ok false when none.
func value(mfs map[string]*dto.MetricFamily, name string, want map[string]string) (float64, bool) {
	mf, found := mfs[name]
	if !found {
		return 0, false
	}
next:
	for _, m := range mf.GetMetric() {
		labels := map[string]string{}
		for _, l := range m.GetLabel() {
			labels[l.GetName()] = l.GetValue()
		}
		for k, v := range want {
			if labels[k] != v {
				continue next
			}
		}
		switch mf.GetType() {
		case dto.MetricType_COUNTER:
			return m.GetCounter().GetValue(), true
		case dto.MetricType_GAUGE:
			return m.GetGauge().GetValue(), true
		case dto.MetricType_HISTOGRAM:
			return float64(m.GetHistogram().GetSampleCount()), true
		}
	}
	return 0, false
}

func l(kv ...string) map[string]string {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return m
}

// A scrape of a running kernel shows each module's calls, the cores, the token books and
// the tools, and the counts move with the calls made.
func TestScrape(t *testing.T) {
	s := startSystem(t)
	before := s.scrape()
	for _, name := range []string{"aios_queue_length", "aios_core_inflight", "aios_module_enabled", "aios_memory_hot_budget_bytes", "go_goroutines"} {
		if _, ok := before[name]; !ok {
			t.Errorf("no %s before any call", name)
		}
	}
	if v, ok := value(before, "aios_module_enabled", l("module", "tool")); !ok || v != 1 {
		t.Errorf("tool module enabled = %v %v", v, ok)
	}
	if _, ok := value(before, "aios_core_up", l("core", "sim/sim-test#0", "model", "sim-test")); !ok {
		t.Errorf("no aios_core_up for the sim core: %v", before["aios_core_up"])
	}

	s.post("/query", `{"agent_name":"alice","query_type":"llm","query_data":{"messages":[{"role":"user","content":"hi"}],"max_new_tokens":3}}`)
	s.post("/v1/chat/completions", `{"model":"sim-test","messages":[{"role":"user","content":"hi"}],"max_tokens":2}`, "X-AIOS-Agent", "bob")
	s.post("/query", `{"agent_name":"alice","query_type":"tool","query_data":{"tool_calls":[{"name":"calculator","parameters":{"expression":"6*7"}}]}}`)
	s.post("/query", `{"agent_name":"alice","query_type":"storage","query_data":{"operation_type":"write","params":{"file_path":"a.txt","content":"x"}}}`)
	s.waitEnded(map[string]int{"llm": 2, "tool": 1, "storage": 1})
	after := s.scrape()

	for _, tc := range []struct {
		name   string
		labels map[string]string
		min    float64
	}{
		{"aios_syscalls_total", l("module", "llm", "state", "done", "kind", "none"), 2},
		{"aios_syscalls_total", l("module", "tool", "state", "done", "kind", "none"), 1},
		{"aios_syscalls_total", l("module", "storage", "state", "done", "kind", "none"), 1},
		{"aios_syscall_wait_seconds", l("module", "llm"), 2},
		{"aios_syscall_turnaround_seconds", l("module", "tool"), 1},
		{"aios_agent_tokens_total", l("agent", "alice", "type", "completion"), 3},
		{"aios_agent_tokens_total", l("agent", "bob", "type", "completion"), 2},
		{"aios_agent_llm_calls_total", l("agent", "alice"), 1},
		{"aios_model_tokens_total", l("model", "sim-test", "type", "prompt"), 1},
		{"aios_core_completed_total", l("model", "sim-test"), 2},
		{"aios_tool_calls_total", l("tool", "calculator"), 1},
	} {
		v, ok := value(after, tc.name, tc.labels)
		if !ok || v < tc.min {
			t.Errorf("%s%v = %v (present %v), want at least %v", tc.name, tc.labels, v, ok, tc.min)
		}
		if was, _ := value(before, tc.name, tc.labels); was >= v && ok {
			t.Errorf("%s%v did not move: %v then %v", tc.name, tc.labels, was, v)
		}
	}
	if v, _ := value(after, "aios_agent_tokens_total", l("agent", "alice", "type", "completion")); v != 3 {
		t.Errorf("alice was charged %v completion tokens, want 3", v)
	}
	if v, ok := value(after, "aios_queue_length", l("module", "llm")); !ok || v != 0 {
		t.Errorf("llm queue %v %v after every call ended", v, ok)
	}
	// The kernel's metrics, as scraped, pass promlint.
	var ours []*dto.MetricFamily
	for n, mf := range after {
		if strings.HasPrefix(n, "aios_") {
			ours = append(ours, mf)
		}
	}
	problems, err := promlint.NewWithMetricFamilies(ours).Lint()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("lint: %s: %s", p.Metric, p.Text)
	}
}
