package kernel

import (
	"context"
	"hash/fnv"
	"strconv"
	"time"

	"github.com/aios-go/aios/api"
	"github.com/aios-go/aios/internal/llm"
	"github.com/aios-go/aios/internal/sched"
)

// DefaultMaxTokens is the output budget of a call that sets none: AIOS's max_new_tokens.
const DefaultMaxTokens = 1000

// LLMCall is what a caller asks of the LLM module: a Call with the request inline.
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

// Call is c as a syscall of the LLM module.
func (c LLMCall) Call() Call {
	req := c.Request
	return Call{Agent: c.Agent, Program: c.Program, Thread: c.Thread, Module: sched.LLM, Op: c.Op,
		Priority: c.Priority, Timeout: c.Timeout, LLM: &req, Emit: c.Emit}
}

// SubmitLLM is Submit for an LLM call.
func (k *Kernel) SubmitLLM(ctx context.Context, c LLMCall) (*Syscall, error) {
	return k.submit(ctx, c.Call(), nil)
}

// SubmitLLMWith is SubmitLLM with a hook that sees the syscall before it can be
// dispatched, under the kernel's lock: what the hook writes, Emit may read.
func (k *Kernel) SubmitLLMWith(ctx context.Context, c LLMCall, before func(*Syscall)) (*Syscall, error) {
	return k.submit(ctx, c.Call(), before)
}

// CallLLM submits c and waits for its outcome.
func (k *Kernel) CallLLM(ctx context.Context, c LLMCall) (*llm.Result, *Syscall, error) {
	res, sc, err := k.Do(ctx, c.Call())
	r, _ := res.(*llm.Result)
	return r, sc, err
}

// llmModule drives LLM syscalls: admission by tokens, slices on cores, context switches,
// retries and failover (kernel.go, retry.go, breaker.go).
type llmModule struct{ k *Kernel }

func (m llmModule) admit(sc *Syscall, c *Call) error {
	k := m.k
	if c.LLM == nil {
		return api.Errorf(api.CallerBadRequest, "an LLM syscall needs a request")
	}
	req := *c.LLM
	if req.Model == "" {
		req.Model = k.opts.DefaultLLM
	}
	if _, ok := k.byModel[req.Model]; !ok {
		return api.Errorf(api.CallerNotFound, "model %q is not served by this kernel; served models: %v", req.Model, k.Models())
	}
	if len(req.Messages) == 0 {
		return api.Errorf(api.CallerBadRequest, "messages must hold at least one message")
	}
	if req.MaxTokens <= 0 {
		req.MaxTokens = DefaultMaxTokens
	}
	req.Agent, req.Session, req.Priority = c.Agent, c.Program, c.Priority
	sc.llmState = &llmState{req: &req, emit: c.Emit}

	prompt := llm.EstimateTokens(req.Messages, req.Tools)
	sc.call = &sched.Call{
		ID: sc.ID, Agent: c.Agent, Program: c.Program, Module: sched.LLM, Model: req.Model,
		Priority: c.Priority, Tokens: prompt + req.MaxTokens,
		InputTokens: prompt, MaxOutput: req.MaxTokens, Text: lastText(req.Messages, 512),
		Class: programClass(req.Messages),
	}
	if k.opts.Routing.Mode == sched.CacheAware {
		sc.call.Prefix = messageHashes(req.Messages)
	}
	if k.retain != nil {
		capacity := k.byModel[req.Model][0].capacity.MaxTokens
		req.KVTTL = k.retain.arrive(c.Program, req.Tools, sc.call.Tokens, capacity, time.Now())
	}
	return nil
}

// start runs one slice of sc on the core the scheduler chose, after preparing what that
// slice needs: the text already streamed to resume from, the policy's rank for engines
// that schedule by priority, and the tokens left to generate.
func (m llmModule) start(sc *Syscall, a sched.Assignment) {
	k := m.k
	e := k.cores[a.Core]
	sc.core = e
	if !e.caps.Resume {
		// A core that cannot continue a partial answer must not be preempted.
		a.Call.NoPreempt = true
	}
	runCtx, stop := context.WithCancelCause(sc.ctx)
	sc.stopRun = stop
	req := *sc.req
	req.Resume = sc.snapshot.String()
	if r, ok := k.sched.Policy(sched.LLM).(sched.Ranker); ok {
		// Pass the kernel's order down to engines that take priorities, so their own
		// queue agrees with it (the kernel's larger Priority is more urgent).
		req.Priority = -r.Rank(a.Call)
	}
	if k.retain != nil {
		req.ReuseAfter = k.reuseHint(sc.Program)
	}
	sc.sliceStart = sc.produced
	if req.Resume != "" {
		req.MaxTokens -= sc.produced
	}
	k.runs.Add(1)
	go k.run(sc, e, runCtx, &req)
}

// programClass names what a program is like by its system prompt (programs of one
// kind share it), for policies that predict a program's size from its class; "" when
// the conversation has none.
func programClass(msgs []api.Message) string {
	for _, m := range msgs {
		if m.Role == "system" || m.Role == "developer" {
			h := fnv.New64a()
			h.Write([]byte(m.Content))
			return "system:" + strconv.FormatUint(h.Sum64(), 16)
		}
	}
	return ""
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
