package metrics

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/aios-go/aios/api"
	"github.com/aios-go/aios/internal/kernel"
	"github.com/aios-go/aios/internal/memory"
	"github.com/aios-go/aios/internal/sched"
	"github.com/aios-go/aios/internal/tool"
)

type fakeKernel struct{}

func (fakeKernel) Status() api.CoreStatus {
	return api.CoreStatus{
		Modules: map[string]string{"llm": "enabled", "storage": "not enabled"},
		Queued:  map[string]int{"llm": 3, "storage": 0},
		Running: map[string]int{"llm": 2},
		LLMCores: []api.LLMCoreStatus{{ID: "vllm/m#0", Name: "m", Healthy: true, Inflight: 2, TokensInflight: 900,
			MaxInflight: 8, MaxTokensInflight: 4096, Completed: 10, Failed: 1, Retried: 2, State: "cooling", Held: true}},
	}
}

func (fakeKernel) Usage(kernel.UsageFilter) api.UsageReport {
	c := api.UsageCounters{Calls: 4, Failed: 1, PromptTokens: 100, CachedTokens: 40, CompletionTokens: 20, TotalTokens: 120}
	return api.UsageReport{Agents: map[string]api.UsageCounters{"alice": c}, Models: map[string]api.UsageCounters{"m": c}}
}

func (fakeKernel) WorkingSetStats() kernel.WorkingSetStats {
	return kernel.WorkingSetStats{Enabled: true, Active: 2, Tokens: 3000, Admissions: 5, Suspensions: 1}
}

// Snapshot: two LLM calls queued at priorities 0 and 5, two calls of a busy tool waiting
// for it, and a running one, which no queue metric counts.
func (fakeKernel) Snapshot() kernel.Snapshot {
	return kernel.Snapshot{InFlight: []kernel.SyscallView{
		{Module: sched.LLM, State: "queued", Resource: "m"},
		{Module: sched.LLM, State: "queued", Resource: "m", Priority: 5},
		{Module: sched.Tool, State: "queued", Resource: "everything__echo"},
		{Module: sched.Tool, State: "queued", Resource: "everything__echo"},
		{Module: sched.Tool, State: "running", Resource: "calculator"},
	}}
}

type fakeTools []tool.Stats

func (f fakeTools) Stats() []tool.Stats { return f }

type fakeMemory struct{ err error }

func (f fakeMemory) Stats(context.Context) (memory.Stats, error) {
	return memory.Stats{HotNotes: 3, HotBytes: 300, Budget: 1 << 20, Evictions: 2, Faults: 7, Notes: 9}, f.err
}

func fakeSources() Sources {
	return Sources{
		Kernel: fakeKernel{},
		Tools:  fakeTools{{Name: "calculator", Calls: 5, Errors: 1, Inflight: 1, BreakerState: "open", Limits: tool.Limits{Concurrency: 8}}},
		Memory: fakeMemory{},
	}
}

// The state collector's metrics pass promlint and read what the sources say.
func TestStateCollectorLintsClean(t *testing.T) {
	c := newState(fakeSources())
	problems, err := testutil.CollectAndLint(c)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("%s: %s", p.Metric, p.Text)
	}
	want := `
# HELP aios_core_state An LLM core's breaker state: 1 for the state it is in (ok, open, cooling), 0 for the others.
# TYPE aios_core_state gauge
aios_core_state{core="vllm/m#0",model="m",state="cooling"} 1
aios_core_state{core="vllm/m#0",model="m",state="ok"} 0
aios_core_state{core="vllm/m#0",model="m",state="open"} 0
# HELP aios_agent_tokens_total LLM tokens charged to an agent, by type (prompt includes cached).
# TYPE aios_agent_tokens_total counter
aios_agent_tokens_total{agent="alice",type="cached"} 40
aios_agent_tokens_total{agent="alice",type="completion"} 20
aios_agent_tokens_total{agent="alice",type="prompt"} 100
# HELP aios_tool_breaker_open Whether a tool's breaker is open (1) or closed or half open (0).
# TYPE aios_tool_breaker_open gauge
aios_tool_breaker_open{tool="calculator"} 1
# HELP aios_queue_length Syscalls waiting in a module's queue.
# TYPE aios_queue_length gauge
aios_queue_length{module="llm"} 3
aios_queue_length{module="storage"} 0
# HELP aios_workingset_admissions_total Programs admitted to the working set.
# TYPE aios_workingset_admissions_total counter
aios_workingset_admissions_total 5
# HELP aios_memory_faults_total Accesses that had to load a note from the database.
# TYPE aios_memory_faults_total counter
aios_memory_faults_total 7
# HELP aios_core_held Whether new calls are held back from an LLM core because its engine reports it saturated: 1 or 0.
# TYPE aios_core_held gauge
aios_core_held{core="vllm/m#0",model="m"} 1
# HELP aios_queued_syscalls Syscalls waiting in a module's queue, by the caller's priority.
# TYPE aios_queued_syscalls gauge
aios_queued_syscalls{module="llm",priority="0"} 1
aios_queued_syscalls{module="llm",priority="5"} 1
aios_queued_syscalls{module="tool",priority="0"} 2
# HELP aios_tool_queued Tool calls waiting for a free slot of their tool.
# TYPE aios_tool_queued gauge
aios_tool_queued{tool="everything__echo"} 2
`
	if err := testutil.CollectAndCompare(c, strings.NewReader(want), "aios_core_state", "aios_agent_tokens_total",
		"aios_tool_breaker_open", "aios_queue_length", "aios_workingset_admissions_total", "aios_memory_faults_total",
		"aios_core_held", "aios_queued_syscalls", "aios_tool_queued"); err != nil {
		t.Fatal(err)
	}
}

// A module left out has no metrics; a memory module that cannot answer spoils only its
// own metrics.
func TestStateCollectorSources(t *testing.T) {
	src := fakeSources()
	src.Tools, src.Memory = nil, fakeMemory{err: errors.New("closed")}
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(newState(src))
	mfs, err := reg.Gather()
	if err == nil || !strings.Contains(err.Error(), "closed") {
		t.Fatalf("the memory module's error was not reported: %v", err)
	}
	for _, mf := range mfs {
		if n := mf.GetName(); strings.HasPrefix(n, "aios_tool_") || strings.HasPrefix(n, "aios_memory_") {
			t.Errorf("%s reported without its module", n)
		}
	}
	if len(mfs) == 0 {
		t.Fatal("nothing gathered besides the failing module")
	}
}
