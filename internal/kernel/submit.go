package kernel

import (
	"context"
	"errors"
	"time"

	"github.com/aios-go/aios/api"
	"github.com/aios-go/aios/internal/llm"
	"github.com/aios-go/aios/internal/sched"
)

// Call is what a caller asks of the kernel: one syscall of any module.
type Call struct {
	Agent    string
	Program  string // session; defaults to the agent
	Thread   string
	Module   sched.Module
	Op       string // AIOS action or operation type, e.g. "chat" or "write"
	Priority int
	Timeout  time.Duration // overrides the kernel's default deadline when > 0

	// LLM calls: the request, and, when set, a receiver of the response as it streams.
	// Emit runs on the core's goroutine and must not block for long.
	LLM  *llm.Request
	Emit func(llm.Delta)

	// Service modules: the module's own arguments, passed to its Service unchanged, and
	// the resource the call needs besides a module slot (the tool it calls), for
	// services that are Gated.
	Args     any
	Resource string
}

// Submit turns c into a syscall and queues it in its module. The returned syscall ends
// on its own; ctx bounds its life (its end cancels the syscall).
func (k *Kernel) Submit(ctx context.Context, c Call) (*Syscall, error) {
	return k.submit(ctx, c, nil)
}

// Do submits c and waits for its outcome. The syscall is nil when c never became one
// (the request itself was at fault, or its module is not enabled).
func (k *Kernel) Do(ctx context.Context, c Call) (any, *Syscall, error) {
	sc, err := k.Submit(ctx, c)
	if err != nil {
		return nil, nil, err
	}
	res, err := sc.Wait(ctx)
	return res, sc, err
}

// Enabled reports whether module m is configured.
func (k *Kernel) Enabled(m sched.Module) bool { return m < sched.NumModules && k.modules[m] != nil }

// submit is Submit with a hook that sees the syscall before it can be dispatched, under
// the kernel's lock: what the hook writes, Emit may read.
func (k *Kernel) submit(ctx context.Context, c Call, before func(*Syscall)) (*Syscall, error) {
	if !k.Enabled(c.Module) {
		return nil, errNotEnabled(c.Module)
	}
	mod := k.modules[c.Module]
	if c.Program == "" {
		c.Program = c.Agent
	}
	timeout := c.Timeout
	if timeout <= 0 {
		timeout = k.opts.Timeout
	}
	sctx, cancel := context.WithCancelCause(context.WithoutCancel(ctx))
	var stopDeadline context.CancelFunc = func() {}
	if timeout > 0 {
		sctx, stopDeadline = context.WithTimeoutCause(sctx, timeout,
			api.Errorf(api.PolicyTimeout, "the call did not finish within %v", timeout))
	}
	sc := &Syscall{
		Agent: c.Agent, Program: c.Program, Thread: c.Thread, Module: c.Module, Op: c.Op,
		Priority: c.Priority, ctx: sctx, done: make(chan struct{}),
		cancel: func(cause error) { cancel(cause); stopDeadline() },
	}
	if dl, ok := sctx.Deadline(); ok {
		sc.Deadline = dl
	}

	if k.opts.Gate != nil {
		rel, err := k.opts.Gate(ctx, &c)
		if err != nil {
			sc.cancel(nil)
			return nil, err
		}
		if rel == nil {
			rel = func(int64) {}
		}
		sc.gateRelease = rel
	}
	// refused gives back the gate's hold of a call that never became a syscall.
	refused := func() {
		if sc.gateRelease != nil {
			sc.gateRelease(0)
		}
	}
	objective, hasSLO := k.slo.objective(&c)
	k.mu.Lock()
	if k.closing {
		k.mu.Unlock()
		sc.cancel(nil)
		refused()
		return nil, api.Errorf(api.KernelShuttingDown, "the kernel is shutting down and takes no new calls")
	}
	k.nextID++
	sc.ID = k.nextID
	sc.timings.Arrival = time.Now()
	if err := mod.admit(sc, &c); err != nil {
		k.mu.Unlock()
		sc.cancel(nil)
		refused()
		return nil, err
	}
	if err := k.refuse(sc.call, sc.Deadline, k.now(), sc.timings.Arrival); err != nil {
		k.mu.Unlock()
		sc.cancel(nil)
		refused()
		return nil, err
	}
	if before != nil {
		before(sc)
	}
	k.slo.stamp(sc.call, objective, hasSLO, k.now())
	if err := k.sched.Submit(sc.call, k.now()); err != nil {
		k.mu.Unlock()
		sc.cancel(nil)
		refused()
		if errors.Is(err, sched.ErrTooLarge) {
			return nil, api.Errorf(api.CallerTooLarge, "the call needs about %d tokens (prompt + max_tokens), more than any core of %q holds at once", sc.call.Tokens, sc.call.Model)
		}
		if c.Module == sched.LLM {
			return nil, api.Wrap(api.CallerNotFound, err, "no core can run model %q", sc.call.Model)
		}
		return nil, api.Wrap(api.KernelInternal, err, "the %s module has no worker", c.Module)
	}
	k.inflight[sc.ID] = sc
	k.calls.Add(1)
	k.armQueueTimer(sc)
	// The caller leaving, the deadline or shutdown end a queued call here; a running one
	// ends through the context its module runs it under, which derives from sctx. Both
	// hooks are set before the lock is released, so no dispatch or completion can
	// precede them.
	context.AfterFunc(sctx, func() { k.abandon(sc) })
	sc.release = context.AfterFunc(ctx, func() {
		sc.cancel(api.Wrap(api.CallerCancelled, context.Cause(ctx), "the caller went away"))
	})
	k.mu.Unlock()
	k.poke()
	return sc, nil
}

// abandon ends sc if it is still waiting in a queue.
func (k *Kernel) abandon(sc *Syscall) {
	k.mu.Lock()
	if sc.call.State != sched.Queued {
		k.mu.Unlock()
		return
	}
	k.sched.Cancel(sc.call, k.now())
	err := k.ctxError(sc)
	k.mu.Unlock()
	k.end(sc, nil, err)
}
