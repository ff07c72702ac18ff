package metrics

import (
	"context"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/aios-go/aios/api"
	"github.com/aios-go/aios/internal/kernel"
	"github.com/aios-go/aios/internal/memory"
	"github.com/aios-go/aios/internal/sched"
	"github.com/aios-go/aios/internal/tool"
)

// Kernel is what the collectors read of the kernel; *kernel.Kernel is one.
type Kernel interface {
	Status() api.CoreStatus
	Usage(kernel.UsageFilter) api.UsageReport
	WorkingSetStats() kernel.WorkingSetStats
}

// Tools reads the tool module's counters; *tool.Manager is one.
type Tools interface {
	Stats() []tool.Stats
}

// Memory reads the memory module's RAM manager; *memory.Manager is one.
type Memory interface {
	Stats(ctx context.Context) (memory.Stats, error)
}

// Sources are what the collectors read at each scrape. Kernel is required; a module
// left nil (disabled) has no metrics.
type Sources struct {
	Kernel Kernel
	Tools  Tools
	Memory Memory
}

// memoryTimeout bounds the memory module's counts (a few SQL aggregates) in one scrape.
const memoryTimeout = 2 * time.Second

// coreStates are the states a core's breaker reports (api.LLMCoreStatus.State).
var coreStates = []string{"ok", "open", "cooling"}

// tokenTypes label token counters; prompt includes cached, as OpenAI counts them.
var tokenTypes = []string{"prompt", "completion", "cached"}

// state is the collector of everything read from the sources' state.
type state struct {
	src Sources

	moduleEnabled, queueLength, running                              *prometheus.Desc
	coreInflight, coreTokens, coreMaxInflight, coreMaxTokens, coreUp *prometheus.Desc
	coreState, coreCompleted, coreFailed, coreRetries                *prometheus.Desc
	wsActive, wsTokens, wsAdmissions, wsSuspensions                  *prometheus.Desc
	agentTokens, agentCalls, agentFailed, modelTokens                *prometheus.Desc
	toolCalls, toolErrors, toolRejected, toolTimeouts                *prometheus.Desc
	toolInflight, toolMaxInflight, toolBreakerOpen                   *prometheus.Desc
	memHotNotes, memHotBytes, memBudget, memEvictions, memFaults     *prometheus.Desc
	memNotes                                                         *prometheus.Desc
	coreHeld, queuedByPriority, toolQueued                           *prometheus.Desc
}

// snapshotter is a Kernel that can list its syscalls in flight, for the queue's make-up
// by priority and tool; *kernel.Kernel is one.
type snapshotter interface {
	Snapshot() kernel.Snapshot
}

func newState(src Sources) *state {
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc(name, help, labels, nil)
	}
	core := []string{"core", "model"}
	return &state{
		src:           src,
		moduleEnabled: d("aios_module_enabled", "Whether a module (llm, storage, memory, tool) is enabled: 1 or 0.", "module"),
		queueLength:   d("aios_queue_length", "Syscalls waiting in a module's queue.", "module"),
		running:       d("aios_syscalls_running", "Syscalls of a module running now.", "module"),

		coreInflight:    d("aios_core_inflight", "Sequences an LLM core is running now.", core...),
		coreTokens:      d("aios_core_inflight_tokens", "Tokens (prompt and output budget) of the sequences an LLM core is running now.", core...),
		coreMaxInflight: d("aios_core_max_inflight", "Sequences an LLM core may run at once (0: no limit).", core...),
		coreMaxTokens:   d("aios_core_max_inflight_tokens", "Tokens an LLM core may hold at once: its KV capacity (0: unknown).", core...),
		coreUp:          d("aios_core_up", "Whether an LLM core takes calls: 1, or 0 while its breaker holds it out.", core...),
		coreState:       d("aios_core_state", "An LLM core's breaker state: 1 for the state it is in (ok, open, cooling), 0 for the others.", "core", "model", "state"),
		coreCompleted:   d("aios_core_completed_total", "LLM calls a core completed.", core...),
		coreFailed:      d("aios_core_failed_total", "LLM calls that failed on a core.", core...),
		coreRetries:     d("aios_core_retries_total", "Failed attempts on a core that were tried again.", core...),

		wsActive:      d("aios_workingset_active_programs", "Programs working-set admission holds active now."),
		wsTokens:      d("aios_workingset_tokens", "Context tokens the active programs hold between them."),
		wsAdmissions:  d("aios_workingset_admissions_total", "Programs admitted to the working set."),
		wsSuspensions: d("aios_workingset_suspensions_total", "Active programs suspended to make room."),

		agentTokens: d("aios_agent_tokens_total", "LLM tokens charged to an agent, by type (prompt includes cached).", "agent", "type"),
		agentCalls:  d("aios_agent_llm_calls_total", "LLM calls an agent made that ended.", "agent"),
		agentFailed: d("aios_agent_llm_calls_failed_total", "LLM calls of an agent that failed, were cancelled or timed out.", "agent"),
		modelTokens: d("aios_model_tokens_total", "LLM tokens charged for a model, by type (prompt includes cached).", "model", "type"),

		toolCalls:       d("aios_tool_calls_total", "Calls of a tool, refused ones included.", "tool"),
		toolErrors:      d("aios_tool_errors_total", "Calls of a tool that failed: its errors, timeouts, and fast failures of an open breaker.", "tool"),
		toolRejected:    d("aios_tool_rejected_total", "Calls of a tool whose arguments were refused.", "tool"),
		toolTimeouts:    d("aios_tool_timeouts_total", "Calls of a tool that ran past its timeout.", "tool"),
		toolInflight:    d("aios_tool_inflight", "Calls of a tool running now (slots taken).", "tool"),
		toolMaxInflight: d("aios_tool_max_inflight", "Calls of a tool that may run at once.", "tool"),
		toolBreakerOpen: d("aios_tool_breaker_open", "Whether a tool's breaker is open (1) or closed or half open (0).", "tool"),

		memHotNotes:  d("aios_memory_hot_notes", "Memory notes held in RAM (the hot set)."),
		memHotBytes:  d("aios_memory_hot_bytes", "Bytes of the notes in the hot set."),
		memBudget:    d("aios_memory_hot_budget_bytes", "The hot set's budget in bytes."),
		memEvictions: d("aios_memory_evictions_total", "Notes evicted from the hot set."),
		memFaults:    d("aios_memory_faults_total", "Accesses that had to load a note from the database."),
		memNotes:     d("aios_memory_notes", "Notes in the memory database."),

		coreHeld:         d("aios_core_held", "Whether new calls are held back from an LLM core because its engine reports it saturated: 1 or 0.", "core", "model"),
		queuedByPriority: d("aios_queued_syscalls", "Syscalls waiting in a module's queue, by the caller's priority.", "module", "priority"),
		toolQueued:       d("aios_tool_queued", "Tool calls waiting for a free slot of their tool.", "tool"),
	}
}

func (s *state) descs() []*prometheus.Desc {
	return []*prometheus.Desc{
		s.moduleEnabled, s.queueLength, s.running,
		s.coreInflight, s.coreTokens, s.coreMaxInflight, s.coreMaxTokens, s.coreUp,
		s.coreState, s.coreCompleted, s.coreFailed, s.coreRetries,
		s.wsActive, s.wsTokens, s.wsAdmissions, s.wsSuspensions,
		s.agentTokens, s.agentCalls, s.agentFailed, s.modelTokens,
		s.toolCalls, s.toolErrors, s.toolRejected, s.toolTimeouts,
		s.toolInflight, s.toolMaxInflight, s.toolBreakerOpen,
		s.memHotNotes, s.memHotBytes, s.memBudget, s.memEvictions, s.memFaults, s.memNotes,
		s.coreHeld, s.queuedByPriority, s.toolQueued,
	}
}

func (s *state) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range s.descs() {
		ch <- d
	}
}

func (s *state) Collect(ch chan<- prometheus.Metric) {
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	counter := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v, labels...)
	}
	s.collectKernel(gauge, counter)
	if s.src.Tools != nil {
		for _, t := range s.src.Tools.Stats() {
			counter(s.toolCalls, float64(t.Calls), t.Name)
			counter(s.toolErrors, float64(t.Errors), t.Name)
			counter(s.toolRejected, float64(t.Rejected), t.Name)
			counter(s.toolTimeouts, float64(t.Timeouts), t.Name)
			gauge(s.toolInflight, float64(t.Inflight), t.Name)
			gauge(s.toolMaxInflight, float64(t.Limits.Concurrency), t.Name)
			gauge(s.toolBreakerOpen, bool01(t.BreakerState == "open"), t.Name)
		}
	}
	if s.src.Memory != nil {
		ctx, cancel := context.WithTimeout(context.Background(), memoryTimeout)
		st, err := s.src.Memory.Stats(ctx)
		cancel()
		if err != nil {
			ch <- prometheus.NewInvalidMetric(s.memNotes, err)
			return
		}
		gauge(s.memHotNotes, float64(st.HotNotes))
		gauge(s.memHotBytes, float64(st.HotBytes))
		gauge(s.memBudget, float64(st.Budget))
		counter(s.memEvictions, float64(st.Evictions))
		counter(s.memFaults, float64(st.Faults))
		gauge(s.memNotes, float64(st.Notes))
	}
}

func (s *state) collectKernel(gauge, counter func(*prometheus.Desc, float64, ...string)) {
	k := s.src.Kernel
	st := k.Status()
	for m, v := range st.Modules {
		gauge(s.moduleEnabled, bool01(v == "enabled"), m)
	}
	for m, n := range st.Queued {
		gauge(s.queueLength, float64(n), m)
	}
	for m := range st.Modules {
		gauge(s.running, float64(st.Running[m]), m)
	}
	for _, c := range st.LLMCores {
		gauge(s.coreInflight, float64(c.Inflight), c.ID, c.Name)
		gauge(s.coreTokens, float64(c.TokensInflight), c.ID, c.Name)
		gauge(s.coreMaxInflight, float64(c.MaxInflight), c.ID, c.Name)
		gauge(s.coreMaxTokens, float64(c.MaxTokensInflight), c.ID, c.Name)
		gauge(s.coreUp, bool01(c.Healthy), c.ID, c.Name)
		gauge(s.coreHeld, bool01(c.Held), c.ID, c.Name)
		for _, state := range coreStates {
			gauge(s.coreState, bool01(c.State == state), c.ID, c.Name, state)
		}
		counter(s.coreCompleted, float64(c.Completed), c.ID, c.Name)
		counter(s.coreFailed, float64(c.Failed), c.ID, c.Name)
		counter(s.coreRetries, float64(c.Retried), c.ID, c.Name)
	}
	if sn, ok := k.(snapshotter); ok {
		s.collectQueued(sn.Snapshot(), gauge)
	}
	if ws := k.WorkingSetStats(); ws.Enabled {
		gauge(s.wsActive, float64(ws.Active))
		gauge(s.wsTokens, float64(ws.Tokens))
		counter(s.wsAdmissions, float64(ws.Admissions))
		counter(s.wsSuspensions, float64(ws.Suspensions))
	}
	u := k.Usage(kernel.UsageFilter{})
	for a, c := range u.Agents {
		for i, n := range tokens(c) {
			counter(s.agentTokens, float64(n), a, tokenTypes[i])
		}
		counter(s.agentCalls, float64(c.Calls), a)
		counter(s.agentFailed, float64(c.Failed), a)
	}
	for m, c := range u.Models {
		for i, n := range tokens(c) {
			counter(s.modelTokens, float64(n), m, tokenTypes[i])
		}
	}
}

// tokens are c's counts in tokenTypes' order.
func tokens(c api.UsageCounters) [3]int64 {
	return [3]int64{c.PromptTokens, c.CompletionTokens, c.CachedTokens}
}

func bool01(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// collectQueued breaks the queues down by priority, and the tool queue by tool: which
// callers wait, and which tool is the bottleneck.
func (s *state) collectQueued(sn kernel.Snapshot, gauge func(*prometheus.Desc, float64, ...string)) {
	type key struct {
		module   string
		priority int
	}
	byPriority := map[key]int{}
	byTool := map[string]int{}
	for _, v := range sn.InFlight {
		if v.State != "queued" {
			continue
		}
		byPriority[key{v.Module.String(), v.Priority}]++
		if v.Module == sched.Tool && s.src.Tools != nil {
			byTool[v.Resource]++
		}
	}
	for k, n := range byPriority {
		gauge(s.queuedByPriority, float64(n), k.module, strconv.Itoa(k.priority))
	}
	for t, n := range byTool {
		gauge(s.toolQueued, float64(n), t)
	}
}
