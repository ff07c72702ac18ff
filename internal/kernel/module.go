package kernel

import (
	"context"
	"fmt"
	"time"

	"github.com/aios-go/aios/api"
	"github.com/aios-go/aios/internal/sched"
)

// Service is a kernel module other than the LLM: storage, memory, tool. The kernel gives
// each of its syscalls the same life as an LLM call (queue, policy, concurrency limit,
// deadline, cancellation, exactly one terminal state, AIOS timings) and calls Run to
// execute it. Run returns the module's own result, or an *api.Error saying who is at
// fault; ctx ends when the caller leaves, the deadline passes or the kernel shuts down.
type Service interface {
	Run(ctx context.Context, r Request) (any, error)
}

// ServiceFunc adapts a function to Service.
type ServiceFunc func(ctx context.Context, r Request) (any, error)

// Run calls f.
func (f ServiceFunc) Run(ctx context.Context, r Request) (any, error) { return f(ctx, r) }

// Request is one syscall as a Service sees it.
type Request struct {
	ID       uint64
	Agent    string
	Program  string
	Op       string // the module's operation, e.g. "write"
	Resource string // what the call needs besides a module slot (Call.Resource)
	Args     any    // the module's own arguments, passed through from Call.Args
}

// Admitter is implemented by services that can refuse a call before it is queued: a
// tool call whose arguments do not match the tool's schema is answered at once instead
// of waiting for the tool to be free.
type Admitter interface {
	Admit(r Request) error
}

// Gated is implemented by services whose calls each need a resource of their own
// besides a module slot, named by Call.Resource: a tool with its own limit on parallel
// calls. The scheduler passes over calls whose resource is busy and starts calls for
// free ones, so a busy tool never holds up the others (the AIOS paper's tool manager).
type Gated interface {
	// Acquire takes one unit of resource if it is free. It is called under the kernel's
	// lock, so it must not block or call the kernel.
	Acquire(resource string) bool
	// Release returns the unit once the call's Run has returned.
	Release(resource string)
	// QueueLimits bound the calls that may wait for resource (0: no bound), and how
	// long each may wait before it fails as busy (0: until its deadline).
	QueueLimits(resource string) (n int, wait time.Duration)
}

// ModuleOptions are one module's scheduler settings.
type ModuleOptions struct {
	// Policy orders the module's queue. Service modules take the policies that never
	// preempt (fifo, priority, fair): a service call cannot be snapshotted half-done.
	// "" is Options.Policy for the LLM module and fifo for the others.
	Policy string
	// Concurrency bounds the module's syscalls running at once (services only; LLM
	// cores have their own capacity). 0 means DefaultConcurrency.
	Concurrency int
}

// DefaultConcurrency is how many syscalls of a service module run at once by default:
// enough to overlap I/O waits, few enough that one module cannot exhaust the database's
// connections or the machine's file descriptors.
const DefaultConcurrency = 16

// DefaultToolConcurrency is the tool module's default: tools mostly wait on other
// machines, and each tool has its own, tighter limit (tool.Limits.Concurrency).
const DefaultToolConcurrency = 64

// module is how the kernel drives one module's syscalls. Both methods run under k.mu.
type module interface {
	// admit validates a new syscall and fills its scheduler record (sc.call).
	admit(sc *Syscall, c *Call) error
	// start runs sc on the slot the scheduler chose; it must not block.
	start(sc *Syscall, a sched.Assignment)
}

// serviceModule drives a Service: one scheduler core whose capacity is the module's
// concurrency, so the policy decides which queued call runs when a slot frees.
type serviceModule struct {
	k    *Kernel
	m    sched.Module
	svc  Service
	slot sched.CoreID
}

func (s *serviceModule) admit(sc *Syscall, c *Call) error {
	if c.Op == "" {
		return api.Errorf(api.CallerBadRequest, "the %s syscall names no operation", s.m)
	}
	sc.args = c.Args
	if a, ok := s.svc.(Admitter); ok {
		if err := a.Admit(s.request(sc, c.Resource)); err != nil {
			return err
		}
	}
	if g, ok := s.svc.(Gated); ok {
		n, wait := g.QueueLimits(c.Resource)
		if q := s.k.sched.Waiting(s.m, c.Resource); n > 0 && q >= n {
			e := api.Errorf(api.BackendOverloaded, "%s %q is busy: %d calls already wait for it (at most %d may); retry later", s.m, c.Resource, q, n)
			e.RetryAfter = time.Second
			return e
		}
		sc.queueWait = wait
	}
	// The resource takes the place of the model: the scheduler counts waiting calls,
	// and gates, per resource.
	sc.call = &sched.Call{ID: sc.ID, Agent: c.Agent, Program: c.Program, Module: s.m, Model: c.Resource, Priority: c.Priority}
	return nil
}

func (s *serviceModule) request(sc *Syscall, resource string) Request {
	return Request{ID: sc.ID, Agent: sc.Agent, Program: sc.Program, Op: sc.Op, Resource: resource, Args: sc.args}
}

func (s *serviceModule) start(sc *Syscall, a sched.Assignment) {
	k := s.k
	k.runs.Add(1)
	resource := sc.call.Model
	sc.stopQueueTimer()
	k.toolStarted(sc, resource)
	go func() {
		defer k.runs.Done()
		res, err := s.svc.Run(sc.ctx, s.request(sc, resource))
		if g, ok := s.svc.(Gated); ok {
			g.Release(resource)
		}
		k.mu.Lock()
		k.toolEnded(sc, resource)
		k.sched.Complete(sc.call, k.now())
		k.mu.Unlock()
		if err != nil {
			err = k.classify(sc, err)
			res = nil
		}
		k.end(sc, res, err)
	}()
}

// servicePolicies are the policies a service module may use: none preempts.
var servicePolicies = map[string]bool{"fifo": true, "priority": true, "fair": true}

// newPolicy builds the policy ordering module m's queue.
func newPolicy(opts Options, m sched.Module) (sched.Policy, error) {
	pc := opts.PolicyConfig
	pc.Name, pc.Slice = opts.Policy, opts.TimeSlice
	if m != sched.LLM {
		pc.Name, pc.Slice = "fifo", 0
	}
	if mo, ok := opts.Modules[m]; ok && mo.Policy != "" {
		pc.Name = mo.Policy
	}
	if m != sched.LLM && !servicePolicies[pc.Name] {
		return nil, fmt.Errorf("scheduler.modules.%s.policy: %q is not available for the %s module; use fifo, priority or fair (only LLM calls can be preempted and resumed)", m, pc.Name, m)
	}
	p, err := sched.NewPolicy(pc)
	if err != nil {
		if m != sched.LLM {
			return nil, fmt.Errorf("scheduler.modules.%s: %w", m, err)
		}
		return nil, err
	}
	return p, nil
}

// errNotEnabled is the one answer of a module that is not configured.
func errNotEnabled(m sched.Module) error {
	return api.Errorf(api.PolicyNotEnabled, "the %s module is not enabled in this kernel", m)
}
