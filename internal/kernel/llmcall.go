package kernel

import (
	"context"
	"errors"
	"hash/fnv"
	"time"

	"github.com/aios-go/aios/api"
	"github.com/aios-go/aios/internal/llm"
	"github.com/aios-go/aios/internal/sched"
)

// DefaultMaxTokens is the output budget of a call that sets none: AIOS's max_new_tokens.
const DefaultMaxTokens = 1000

// LLMCall is what a caller asks of the LLM module.
type LLMCall struct {
	Agent    string
	Program  string // session; defaults to the agent
	Thread   string
	Op       string // AIOS action type or "chat.completions"
	Priority int
	Timeout  time.Duration // overrides the kernel's default deadline when > 0
	Request  llm.Request
	// Emit, when set, receives the response as it streams. It runs on the core's
	// goroutine and must not block for long.
	Emit func(llm.Delta)
}

// SubmitLLM turns c into a syscall and queues it. The returned syscall ends on its own;
// ctx bounds its life (its end cancels the syscall).
func (k *Kernel) SubmitLLM(ctx context.Context, c LLMCall) (*Syscall, error) {
	return k.SubmitLLMWith(ctx, c, nil)
}

// SubmitLLMWith is SubmitLLM with a hook that sees the syscall before it can be
// dispatched, under the kernel's lock: what the hook writes, Emit may read.
func (k *Kernel) SubmitLLMWith(ctx context.Context, c LLMCall, before func(*Syscall)) (*Syscall, error) {
	req := c.Request
	if req.Model == "" {
		req.Model = k.opts.DefaultLLM
	}
	if _, ok := k.byModel[req.Model]; !ok {
		return nil, api.Errorf(api.CallerNotFound, "model %q is not served by this kernel; served models: %v", req.Model, k.Models())
	}
	if len(req.Messages) == 0 {
		return nil, api.Errorf(api.CallerBadRequest, "messages must hold at least one message")
	}
	if req.MaxTokens <= 0 {
		req.MaxTokens = DefaultMaxTokens
	}
	if c.Program == "" {
		c.Program = c.Agent
	}
	req.Agent, req.Session, req.Priority = c.Agent, c.Program, c.Priority

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
		Agent: c.Agent, Program: c.Program, Thread: c.Thread, Module: sched.LLM, Op: c.Op,
		Priority: c.Priority, req: &req, emit: c.Emit, ctx: sctx, done: make(chan struct{}),
		cancel: func(cause error) { cancel(cause); stopDeadline() },
	}
	if dl, ok := sctx.Deadline(); ok {
		sc.Deadline = dl
	}

	k.mu.Lock()
	if k.closing {
		k.mu.Unlock()
		sc.cancel(nil)
		return nil, api.Errorf(api.KernelShuttingDown, "the kernel is shutting down and takes no new calls")
	}
	k.nextID++
	sc.ID = k.nextID
	prompt := llm.EstimateTokens(req.Messages, req.Tools)
	sc.call = &sched.Call{
		ID: sc.ID, Agent: c.Agent, Program: c.Program, Module: sched.LLM, Model: req.Model,
		Priority: c.Priority, Tokens: prompt + req.MaxTokens,
		InputTokens: prompt, MaxOutput: req.MaxTokens, Text: lastText(req.Messages, 512),
	}
	if k.opts.Routing.Mode == sched.CacheAware {
		sc.call.Prefix = messageHashes(req.Messages)
	}
	if k.retain != nil {
		capacity := k.byModel[req.Model][0].capacity.MaxTokens
		sc.req.KVTTL = k.retain.arrive(c.Program, req.Tools, sc.call.Tokens, capacity, time.Now())
	}
	sc.timings.Arrival = time.Now()
	if before != nil {
		before(sc)
	}
	if err := k.sched.Submit(sc.call, k.now()); err != nil {
		k.mu.Unlock()
		sc.cancel(nil)
		if errors.Is(err, sched.ErrTooLarge) {
			return nil, api.Errorf(api.CallerTooLarge, "the call needs about %d tokens (prompt + max_tokens), more than any core of %q holds at once", sc.call.Tokens, req.Model)
		}
		return nil, api.Wrap(api.CallerNotFound, err, "no core can run model %q", req.Model)
	}
	k.inflight[sc.ID] = sc
	k.calls.Add(1)
	// The caller leaving, the deadline or shutdown end a queued call here; a running one
	// ends through its slice's context, which derives from sctx. Both hooks are set
	// before the lock is released, so no dispatch or completion can precede them.
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

// CallLLM submits c and waits for its outcome.
func (k *Kernel) CallLLM(ctx context.Context, c LLMCall) (*llm.Result, *Syscall, error) {
	sc, err := k.SubmitLLM(ctx, c)
	if err != nil {
		return nil, nil, err
	}
	res, err := sc.Wait(ctx)
	return res, sc, err
}

// lastText is the end of the conversation's last message, which policies that predict
// output lengths compare calls by.
func lastText(msgs []api.Message, n int) string {
	if len(msgs) == 0 {
		return ""
	}
	t := string(msgs[len(msgs)-1].Content)
	if len(t) > n {
		t = t[len(t)-n:]
	}
	return t
}

// messageHashes names a conversation's prefixes by hashes chained over its messages: a
// chat prompt grows by whole messages, so two calls sharing their first n messages share
// n hashes, which is what cache-aware routing matches on.
func messageHashes(msgs []api.Message) []uint64 {
	out := make([]uint64, len(msgs))
	h := fnv.New64a()
	for i, m := range msgs {
		h.Write([]byte(m.Role))
		h.Write([]byte{0})
		h.Write([]byte(m.Content))
		h.Write([]byte{0})
		out[i] = h.Sum64()
	}
	return out
}
