// Package kernel turns requests into system calls, queues them with the scheduler and
// runs them on the cores the scheduler picks. It owns the only goroutine that talks to
// the (single-threaded) scheduler: the dispatcher.
package kernel

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aios-go/aios/api"
	"github.com/aios-go/aios/internal/llm"
	"github.com/aios-go/aios/internal/llm/enginemetrics"
	"github.com/aios-go/aios/internal/sched"
)

// errPreempted is the cause with which a slice is stopped for a context switch.
var errPreempted = errors.New("preempted: time slice used up")

// CoreConfig registers one LLM core with the kernel.
type CoreConfig struct {
	Model    string // the model name agents ask for
	Backend  string
	Hostname string
	Core     llm.Core
	// Capacity overrides the core's own when non-zero.
	Capacity llm.Capacity
	// Resilience: retries, backoff and circuit breaker (retry.go, breaker.go); the zero
	// value retries nothing.
	Resilience Resilience
	// MetricsURL, when set, is the engine's Prometheus /metrics: the core takes no new
	// calls while they show the engine saturated (admission.go).
	MetricsURL      string
	MetricsInterval time.Duration
	MetricsPolicy   enginemetrics.Policy
}

// Options configure a Kernel.
type Options struct {
	Policy     string        // fifo, rr, priority
	TimeSlice  time.Duration // rr's quantum
	Timeout    time.Duration // default syscall deadline; 0 = none
	DefaultLLM string        // model used when a call names none; "" = first core's
	Logger     *slog.Logger

	// MaxBypass: calls that may pass one waiting for room (backfilling; 0 strict order).
	MaxBypass int
	// WorkingSet, when set, admits whole programs while their contexts fit the KV cache.
	WorkingSet *sched.WorkingSet
	// Routing places calls among the cores serving a model (empty: sched.DefaultRouting).
	Routing sched.RoutingConfig
	// PolicyConfig carries the policy's parameters; its Name and Slice come from Policy
	// and TimeSlice.
	PolicyConfig sched.Config
	// Retention asks engines that take the hint to keep a session's KV cache across its
	// tool calls (retention.go).
	Retention bool

	// Services are the modules besides the LLM, each run through the kernel's syscall
	// path; a module absent here answers policy_not_enabled.
	Services map[sched.Module]Service
	// Modules are per-module scheduler settings.
	Modules map[sched.Module]ModuleOptions
	// MaxQueued bounds each module's queue (backpressure.go): past it new syscalls are
	// refused with policy_quota_exceeded and a Retry-After. 0 means DefaultMaxQueued;
	// negative, no bound.
	MaxQueued int

	// OnEnd, when set, is called once for each syscall that reaches its terminal state,
	// after those waiting on it are released and outside the kernel's lock; Shutdown
	// waits for it. It runs on the path that ends calls, so it must be quick (counting
	// for metrics, not I/O).
	OnEnd func(*Syscall)

	// Gate, when set, is asked about every call before it is queued (the access manager,
	// docs/security.md): an error refuses the call. It runs outside the kernel's lock
	// and may block (a call waiting for a person's approval). The release it returns is
	// called exactly once, as the syscall ends, with the tokens the call used.
	Gate func(ctx context.Context, c *Call) (release func(tokens int64), err error)

	// Clock, when set, is the scheduler's time: how long the kernel has run. Tests set
	// it to drive time slices and quanta by hand (aios bench's driver test); nil is the
	// wall clock. Time spent waiting for a deadline still passes on the wall clock, so a
	// clock that stands still only delays what the dispatcher would decide anyway.
	Clock func() time.Duration

	// SLO are agents' and tenants' service-level objectives: their LLM calls carry the
	// deadlines these set, which the slo policy orders by (slo.go).
	SLO sched.Objectives
}

type coreEntry struct {
	id        sched.CoreID
	cfg       CoreConfig
	caps      llm.Capabilities
	capacity  llm.Capacity
	completed atomic.Uint64
	failed    atomic.Uint64
	retried   atomic.Uint64
	health    coreHealth // guarded by Kernel.mu
}

// Kernel is the running system.
type Kernel struct {
	opts  Options
	log   *slog.Logger
	epoch time.Time

	mu       sync.Mutex
	sched    *sched.Scheduler
	modules  [sched.NumModules]module // nil: not enabled
	cores    []*coreEntry             // LLM cores; a core's sched.CoreID is its index
	byModel  map[string][]*coreEntry
	inflight map[uint64]*Syscall
	closing  bool
	nextID   uint64

	wake    chan struct{}
	stopped chan struct{}
	runs    sync.WaitGroup // slices executing on cores
	calls   sync.WaitGroup // syscalls not yet terminal

	usage *usageBook // accounting.go
	bg    background // breaker probes and cool-downs (breaker.go)
	// retain learns tool durations for KV retention; nil when off. Guarded by mu.
	retain *toolRetention
	// drain estimates each module's completion rate, for backpressure. Guarded by mu.
	drain [sched.NumModules]drainRate
	// recent are the last ended syscalls (snapshot.go); guarded by mu. observers hear of
	// each as it ends, besides opts.OnEnd (observe.go).
	recent    recentRing
	observers endObservers
	slo       *sloState // nil without objectives
}

// New builds a kernel over the given cores and starts its dispatcher.
func New(opts Options, cores []CoreConfig) (*Kernel, error) {
	if len(cores) == 0 {
		return nil, errors.New("kernel: no LLM core configured")
	}
	policy := opts.Policy
	if mo, ok := opts.Modules[sched.LLM]; ok && mo.Policy != "" {
		policy = mo.Policy
	}
	if policy == "" {
		policy = sched.DefaultPolicy
	}
	if policy == "rr" && opts.TimeSlice <= 0 {
		opts.TimeSlice = 500 * time.Millisecond
	}
	opts.Policy = policy
	var perr error
	s := sched.New(func(m sched.Module) sched.Policy {
		p, err := newPolicy(opts, m)
		if err != nil {
			perr = errors.Join(perr, err)
			p, _ = sched.NewPolicy(sched.Config{})
		}
		return p
	})
	if perr != nil {
		return nil, perr
	}
	s.MaxBypass = opts.MaxBypass
	if err := s.SetRouting(opts.Routing); err != nil {
		return nil, err
	}
	if opts.WorkingSet != nil {
		s.EnableWorkingSet(*opts.WorkingSet)
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	slo, err := newSLOState(opts)
	if err != nil {
		return nil, err
	}
	k := &Kernel{
		slo:      slo,
		opts:     opts,
		log:      opts.Logger,
		epoch:    time.Now(),
		sched:    s,
		byModel:  make(map[string][]*coreEntry),
		inflight: make(map[uint64]*Syscall),
		wake:     make(chan struct{}, 1),
		stopped:  make(chan struct{}),
		usage:    newUsageBook(time.Now()),
	}
	k.bg.init()
	k.modules[sched.LLM] = llmModule{k}
	if opts.Retention {
		k.retain = newToolRetention()
	}
	for i, c := range cores {
		if c.Core == nil || c.Model == "" {
			return nil, fmt.Errorf("kernel: core %d has no model name or backend", i)
		}
		e := &coreEntry{id: sched.CoreID(i), cfg: c, caps: c.Core.Capabilities(), capacity: c.Core.Capacity()}
		if c.Capacity.MaxInflight > 0 {
			e.capacity.MaxInflight = c.Capacity.MaxInflight
		}
		if c.Capacity.MaxTokens > 0 {
			e.capacity.MaxTokens = c.Capacity.MaxTokens
		}
		if e.capacity.MaxInflight <= 0 {
			e.capacity.MaxInflight = 1
		}
		if err := s.AddCore(sched.CoreSpec{
			ID: e.id, Module: sched.LLM, Models: []string{c.Model},
			MaxInflight: e.capacity.MaxInflight, MaxTokens: e.capacity.MaxTokens,
		}); err != nil {
			return nil, err
		}
		k.cores = append(k.cores, e)
		k.byModel[c.Model] = append(k.byModel[c.Model], e)
	}
	if err := checkWorkingSet(opts.WorkingSet, k.cores); err != nil {
		return nil, err
	}
	// Each service is one scheduler core after the LLM cores, as wide as the module's
	// concurrency.
	for m, svc := range opts.Services {
		if m == sched.LLM || m >= sched.NumModules || svc == nil {
			return nil, fmt.Errorf("kernel: no service can be registered as module %v", m)
		}
		n := opts.Modules[m].Concurrency
		if n <= 0 {
			n = DefaultConcurrency
			if m == sched.Tool {
				n = DefaultToolConcurrency
			}
		}
		sm := &serviceModule{k: k, m: m, svc: svc, slot: sched.CoreID(len(cores) + int(m))}
		if err := s.AddCore(sched.CoreSpec{ID: sm.slot, Module: m, MaxInflight: n}); err != nil {
			return nil, err
		}
		if g, ok := svc.(Gated); ok {
			s.SetGate(m, func(c *sched.Call) bool { return g.Acquire(c.Model) })
		}
		k.modules[m] = sm
	}
	if k.opts.DefaultLLM == "" {
		k.opts.DefaultLLM = cores[0].Model
	} else if _, ok := k.byModel[k.opts.DefaultLLM]; !ok {
		return nil, fmt.Errorf("kernel: default LLM %q is not among the configured models %v", k.opts.DefaultLLM, k.Models())
	}
	for _, e := range k.cores {
		if e.cfg.MetricsURL != "" {
			k.watchEngine(e, e.cfg.MetricsURL, e.cfg.MetricsInterval, e.cfg.MetricsPolicy)
		}
	}
	go k.dispatcher()
	return k, nil
}

// checkWorkingSet refuses working-set admission over a core whose KV capacity is
// unknown: the admitted contexts would be summed against a capacity of 0, and programs
// would be served one at a time. A configuration that cannot work fails at start-up.
func checkWorkingSet(ws *sched.WorkingSet, cores []*coreEntry) error {
	if ws != nil && ws.Swap {
		// Swaps asked of a core that cannot carry them out would let admission count
		// contexts as gone from the GPU that never left it.
		for _, e := range cores {
			if _, ok := e.cfg.Core.(llm.SessionSwapper); !ok {
				return fmt.Errorf("kernel: working_set swap needs cores that can move a session's KV cache through a CPU tier, and core %d (model %q, %s) cannot: only the simulated engine with kv_offload_gib can, in process or served by aios sim serve --kv-offload-gib to a model with kv_retention and kv_offload", e.id, e.cfg.Model, e.cfg.Backend)
			}
		}
	}
	if ws == nil || ws.Capacity > 0 {
		return nil
	}
	for _, e := range cores {
		if e.capacity.MaxTokens <= 0 {
			where := e.cfg.Backend
			if e.cfg.Hostname != "" {
				where += " at " + e.cfg.Hostname
			}
			return fmt.Errorf("kernel: working-set admission needs the KV capacity of every LLM core, and core %d (model %q, %s) has none: "+
				"set max_tokens_inflight on the model (the engine's KV cache in tokens), serve it from an engine that exports vLLM's vllm:cache_config_info on /metrics, "+
				"or turn scheduler.working_set off", e.id, e.cfg.Model, where)
		}
	}
	return nil
}

// WorkingSet reports whether working-set admission is on, and its settings.
func (k *Kernel) WorkingSet() (sched.WorkingSet, bool) {
	if k.opts.WorkingSet == nil {
		return sched.WorkingSet{}, false
	}
	return *k.opts.WorkingSet, true
}

// Policy is the scheduling policy in force.
func (k *Kernel) Policy() string { return k.opts.Policy }

// Models lists the model names the kernel serves, sorted.
func (k *Kernel) Models() []string {
	out := make([]string, 0, len(k.byModel))
	for m := range k.byModel {
		out = append(out, m)
	}
	sort.Strings(out)
	return out
}

// DefaultModel is the model used when a call names none.
func (k *Kernel) DefaultModel() string { return k.opts.DefaultLLM }

func (k *Kernel) now() time.Duration {
	if k.opts.Clock != nil {
		return k.opts.Clock()
	}
	return time.Since(k.epoch)
}

func (k *Kernel) poke() {
	select {
	case k.wake <- struct{}{}:
	default:
	}
}

// dispatcher is the loop that applies the scheduler's decisions: it stops slices whose
// quantum expired, starts calls that now fit, and sleeps until the next event.
func (k *Kernel) dispatcher() {
	defer close(k.stopped)
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		k.mu.Lock()
		// The same round aios bench's virtual driver runs (sched.Round).
		r := k.sched.Round(k.now())
		for _, c := range r.Stop {
			if sc := k.inflight[c.ID]; sc != nil && sc.llmState != nil && sc.stopRun != nil {
				sc.stopRun(errPreempted)
			}
		}
		for _, a := range r.Start {
			sc := k.inflight[a.Call.ID]
			if sc.timings.Start.IsZero() {
				sc.timings.Start = k.epoch.Add(a.Call.FirstStart)
			}
			k.modules[a.Call.Module].start(sc, a)
		}
		k.applySwaps(r.Swaps)
		next, hasNext := r.Next, r.HasNext
		closing := k.closing && len(k.inflight) == 0
		k.mu.Unlock()
		if closing {
			return
		}
		wait := time.Hour
		if hasNext {
			wait = max(next-k.now(), time.Millisecond)
		}
		timer.Reset(wait)
		select {
		case <-k.wake:
		case <-timer.C:
		}
	}
}

// run executes one slice of sc on core e.
func (k *Kernel) run(sc *Syscall, e *coreEntry, ctx context.Context, req *llm.Request) {
	defer k.runs.Done()
	var res *llm.Result
	var err error
	if req.Resume != "" && req.MaxTokens <= 0 {
		// Preempted right after its last token: nothing is left to generate.
		res = &llm.Result{FinishReason: "length"}
	} else if req.Resume != "" && !e.caps.Resume {
		err = cannotResume(e, req.Resume)
	} else {
		res, err = e.cfg.Core.Generate(ctx, req, k.emitter(sc))
	}
	k.finishSlice(sc, e, ctx, req, res, err)
}

// emitter records each delta in sc's snapshot before passing it to the caller.
func (k *Kernel) emitter(sc *Syscall) func(llm.Delta) {
	return func(d llm.Delta) {
		k.mu.Lock()
		if d.Text != "" {
			sc.produced++
		}
		sc.snapshot.WriteString(d.Text)
		if len(d.ToolCalls) > 0 && !sc.sawToolArg {
			sc.sawToolArg = true
			sc.call.NoPreempt = true
		}
		k.mu.Unlock()
		if sc.emit != nil {
			sc.emit(d)
		}
	}
}

// finishSlice applies the outcome of one slice: requeue on preemption, else terminal.
func (k *Kernel) finishSlice(sc *Syscall, e *coreEntry, ctx context.Context, req *llm.Request, res *llm.Result, err error) {
	k.mu.Lock()
	now := k.now()
	if err != nil && errors.Is(context.Cause(ctx), errPreempted) && sc.ctx.Err() == nil {
		// Context switch: what was emitted is the snapshot; requeue to continue later.
		sc.preempted++
		sc.stopRun = nil
		k.sched.SliceEnded(sc.call, true, 0, now)
		k.mu.Unlock()
		k.poke()
		return
	}
	// A failed attempt may be retried, resumed or failed over (retry.go); the core's
	// breaker hears of every outcome.
	retried, err := k.afterAttempt(sc, e, ctx, err, now)
	if retried {
		k.mu.Unlock()
		k.poke()
		return
	}
	output := sc.produced
	if res != nil && res.Usage.CompletionTokens > 0 {
		output = callUsage(res.Usage, sc.sliceStart).CompletionTokens
	}
	k.sched.SliceEnded(sc.call, false, output, now)
	sc.stopRun = nil
	if err == nil {
		if k.retain != nil {
			k.retain.ended(sc.Program, res.ToolCalls, time.Now())
		}
		e.completed.Add(1)
		res = &llm.Result{
			Text:         req.Resume + res.Text,
			ToolCalls:    res.ToolCalls,
			FinishReason: res.FinishReason,
			Usage:        callUsage(res.Usage, sc.sliceStart),
		}
	} else {
		e.failed.Add(1)
		err = k.classify(sc, err)
	}
	k.mu.Unlock()
	if err != nil {
		k.end(sc, nil, err)
		return
	}
	k.end(sc, res, nil)
}

// callUsage turns the last slice's usage into the whole call's. A resumed slice reads
// the tokens produced before it as prompt; they are the call's output, not its input.
func callUsage(last api.Usage, before int) api.Usage {
	if before > 0 {
		last.CompletionTokens += before
		last.PromptTokens = max(last.PromptTokens-before, 0)
		last.TotalTokens = last.PromptTokens + last.CompletionTokens
	}
	return last
}

// classify gives an error from a core the cause that really ended the call: the caller
// leaving, the deadline, or shutdown win over the cancellation error the core reports.
func (k *Kernel) classify(sc *Syscall, err error) error {
	if sc.ctx.Err() != nil {
		return k.ctxError(sc)
	}
	var ae *api.Error
	if errors.As(err, &ae) {
		return err
	}
	return api.Wrap(api.KernelInternal, err, "core returned an unclassified error")
}

// ctxError turns the reason sc.ctx ended into a typed error.
func (k *Kernel) ctxError(sc *Syscall) error {
	cause := context.Cause(sc.ctx)
	var ae *api.Error
	if errors.As(cause, &ae) {
		return cause
	}
	if errors.Is(cause, context.DeadlineExceeded) {
		return api.Errorf(api.PolicyTimeout, "the call did not finish before its deadline")
	}
	return api.Wrap(api.CallerCancelled, cause, "the call was cancelled")
}

// end makes sc terminal and forgets it.
func (k *Kernel) end(sc *Syscall, res any, err error) {
	now := time.Now()
	var charge func()
	var used int64
	if sc.llmState != nil {
		r, _ := res.(*llm.Result)
		if err != nil {
			r = k.cutShort(sc) // accounting.go
		}
		charge = func() { k.usage.record(sc, r, err, now) }
		used = usedTokens(r)
	}
	if sc.finish(res, err, now, charge) {
		if sc.gateRelease != nil {
			sc.gateRelease(used)
		}
		k.mu.Lock()
		sc.stopQueueTimer()
		k.drain[sc.Module].done(k.now())
		delete(k.inflight, sc.ID)
		k.recordEnd(sc) // snapshot.go
		k.mu.Unlock()
		k.observeEnd(sc) // observe.go
		k.calls.Done()
		k.poke()
	}
}

// Shutdown stops accepting syscalls and waits for those in flight to finish. When ctx
// ends first, the rest are cancelled with kernel_shutting_down; Shutdown returns once
// every syscall is terminal and the dispatcher has stopped.
func (k *Kernel) Shutdown(ctx context.Context) error {
	k.mu.Lock()
	k.closing = true
	k.mu.Unlock()
	k.poke()
	done := make(chan struct{})
	go func() { k.calls.Wait(); close(done) }()
	var err error
	select {
	case <-done:
	case <-ctx.Done():
		err = ctx.Err()
		k.mu.Lock()
		for _, sc := range k.inflight {
			sc.cancel(api.Errorf(api.KernelShuttingDown, "the kernel is shutting down"))
		}
		k.mu.Unlock()
		<-done
	}
	k.poke()
	<-k.stopped
	k.runs.Wait()
	k.stopBackground()
	for _, e := range k.cores {
		_ = e.cfg.Core.Close()
	}
	for _, m := range k.modules {
		if sm, ok := m.(*serviceModule); ok {
			if c, ok := sm.svc.(io.Closer); ok {
				_ = c.Close()
			}
		}
	}
	return err
}

// Started is when the kernel started.
func (k *Kernel) Started() time.Time { return k.epoch }

// EndProgram says a program (session) is finished: under working-set admission its
// context leaves the active set at once instead of after the idle timeout.
func (k *Kernel) EndProgram(program string) {
	k.mu.Lock()
	k.sched.EndProgram(program)
	k.slo.end(program)
	k.mu.Unlock()
	k.poke()
	if k.retain != nil {
		// The end-of-program hint: in aios bench most of what execution-graph eviction
		// hints save comes from evicting ended programs' contexts first (docs/bench.md).
		for _, e := range k.cores {
			if s, ok := e.cfg.Core.(llm.SessionEnder); ok {
				s.EndSession(program)
			}
		}
	}
}
