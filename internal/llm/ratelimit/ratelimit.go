// Package ratelimit keeps an LLM core within the requests per minute and tokens per
// minute its provider allows. Wrap decorates any llm.Core: a call waits, honouring its
// context, until both budgets admit it, then runs. Tokens are reserved up front by
// estimate (the prompt, counted with the tokenizer, plus the most the call may produce)
// and settled afterwards from the usage the backend reports, so an answer shorter than
// its max_tokens gives the difference back at once.
//
// The budgets are smoothed, not per calendar minute: a core may spend at most Burst worth
// of its budget at once and regains it continuously, which is how Anthropic and OpenAI
// replenish their own limits. Sending at the provider's rate rather than in bursts keeps
// the kernel clear of 429s instead of recovering from them.
package ratelimit

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/aios-go/aios/api"
	"github.com/aios-go/aios/internal/llm"
	"github.com/aios-go/aios/internal/llm/tokenizer"
	"golang.org/x/time/rate"
)

// Limits are one core's budgets. Zero means unlimited.
type Limits struct {
	RPM int // requests per minute
	TPM int // tokens per minute: prompt plus completion, as providers count them
	// Burst is how much of the budgets may be spent at once, as a span of time: one second
	// lets a core with 600 RPM send 10 requests back to back. Default DefaultBurst. The
	// longer it is, the further above the limit a one-minute window may go.
	Burst time.Duration
	// DefaultMaxOutput is the output a call without max_tokens is assumed to reach, for
	// the reservation. Default DefaultMaxOutput.
	DefaultMaxOutput int
}

const (
	DefaultBurst     = time.Second
	DefaultMaxOutput = 1024
)

// Core is an llm.Core kept within Limits.
type Core struct {
	inner  llm.Core
	limits Limits
	reqs   *rate.Limiter // nil when RPM is unlimited
	toks   *bucket       // nil when TPM is unlimited
}

var _ llm.Core = (*Core)(nil)

// Wrap returns c kept within l, or c itself when l sets no limit.
func Wrap(c llm.Core, l Limits) (llm.Core, error) {
	if l.RPM < 0 || l.TPM < 0 {
		return nil, api.Errorf(api.CallerBadRequest, "rate limits must not be negative (rpm %d, tpm %d)", l.RPM, l.TPM)
	}
	if l.RPM == 0 && l.TPM == 0 {
		return c, nil
	}
	if l.Burst <= 0 {
		l.Burst = DefaultBurst
	}
	if l.DefaultMaxOutput <= 0 {
		l.DefaultMaxOutput = DefaultMaxOutput
	}
	w := &Core{inner: c, limits: l}
	perMinute := l.Burst.Seconds() / 60
	if l.RPM > 0 {
		w.reqs = rate.NewLimiter(rate.Limit(float64(l.RPM)/60), max(1, int(float64(l.RPM)*perMinute)))
	}
	if l.TPM > 0 {
		w.toks = newBucket(float64(l.TPM)/60, max(1, float64(l.TPM)*perMinute))
		// Load the vocabulary now, at start-up, not on the first call, which would
		// otherwise wait a quarter of a second for it.
		tokenizer.Count("warm")
	}
	return withHints(w), nil
}

// withHints keeps the session hints the inner core takes visible through the limiter:
// the kernel learns what a core takes from its type, and hints are not calls, so no
// limit applies to them.
func withHints(w *Core) llm.Core {
	_, ends := w.inner.(llm.SessionEnder)
	_, swaps := w.inner.(llm.SessionSwapper)
	switch {
	case ends && swaps:
		return enderSwapper{ender{w}}
	case ends:
		return ender{w}
	case swaps:
		return swapper{w}
	}
	return w
}

type ender struct{ *Core }

func (c ender) EndSession(s string) { c.inner.(llm.SessionEnder).EndSession(s) }

type swapper struct{ *Core }

func (c swapper) SwapSession(s string, in bool) { c.inner.(llm.SessionSwapper).SwapSession(s, in) }

type enderSwapper struct{ ender }

func (c enderSwapper) SwapSession(s string, in bool) {
	c.inner.(llm.SessionSwapper).SwapSession(s, in)
}

// Unwrap is the core being limited.
func (c *Core) Unwrap() llm.Core { return c.inner }

// Limits are the budgets in force.
func (c *Core) Limits() Limits { return c.limits }

func (c *Core) Capabilities() llm.Capabilities   { return c.inner.Capabilities() }
func (c *Core) Capacity() llm.Capacity           { return c.inner.Capacity() }
func (c *Core) Health(ctx context.Context) error { return c.inner.Health(ctx) }
func (c *Core) Close() error                     { return c.inner.Close() }

// Estimate is the number of tokens reserved for req before it runs: its prompt and the
// most it may produce.
func (c *Core) Estimate(req *llm.Request) (prompt, output int) {
	msgs := req.Messages
	if req.Resume != "" {
		// A resumed call sends its partial answer back as a prefix; the provider counts it.
		msgs = append(append([]api.Message(nil), msgs...), api.Message{Role: "assistant", Content: api.Content(req.Resume)})
	}
	output = req.MaxTokens
	if output <= 0 {
		output = c.limits.DefaultMaxOutput
	}
	return tokenizer.Prompt(msgs, req.Tools), output
}

// Generate waits until the budgets admit req, runs it, and settles the token budget
// with what the call really used.
func (c *Core) Generate(ctx context.Context, req *llm.Request, emit func(llm.Delta)) (*llm.Result, error) {
	prompt, output := c.Estimate(req)
	est := prompt + output
	if c.toks != nil && est > c.limits.TPM {
		return nil, api.Errorf(api.CallerTooLarge,
			"the call needs about %d tokens (prompt plus max_tokens), more than this core's limit of %d tokens a minute; lower max_tokens or shorten the prompt", est, c.limits.TPM)
	}
	if c.toks != nil {
		if err := c.toks.acquire(ctx, est); err != nil {
			return nil, waitError(ctx, err, "tokens-per-minute")
		}
	}
	if c.reqs != nil {
		if err := waitRequest(ctx, c.reqs); err != nil {
			if c.toks != nil {
				c.toks.settle(est, 0)
			}
			return nil, waitError(ctx, err, "requests-per-minute")
		}
	}
	if emit == nil {
		emit = func(llm.Delta) {}
	}
	if c.toks == nil {
		return c.inner.Generate(ctx, req, emit)
	}
	deltas := 0
	counting := func(d llm.Delta) {
		deltas++
		emit(d)
	}
	res, err := c.inner.Generate(ctx, req, counting)
	// A failed or cancelled call reports no usage, but the provider still counted the
	// prompt and whatever streamed before the end.
	used := prompt + deltas
	if err == nil && res != nil && res.Usage.PromptTokens+res.Usage.CompletionTokens > 0 {
		used = res.Usage.PromptTokens + res.Usage.CompletionTokens
	}
	c.toks.settle(est, used)
	return res, err
}

// waitRequest takes one request from l, waiting as long as it takes unless ctx ends.
func waitRequest(ctx context.Context, l *rate.Limiter) error {
	r := l.Reserve()
	d := r.Delay()
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		r.Cancel()
		return ctx.Err()
	}
}

// waitError classifies a wait that ctx ended, as the cores classify theirs: the
// deadline is the kernel's policy, anything else the caller's cancellation (wrapping
// the cause, which the kernel's preemption relies on).
func waitError(ctx context.Context, err error, which string) error {
	cause := context.Cause(ctx)
	if cause == nil {
		cause = err
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return api.Wrap(api.PolicyTimeout, cause, "the call's deadline passed while it waited for the core's %s budget", which)
	}
	return api.Wrap(api.CallerCancelled, cause, "cancelled while waiting for the core's %s budget", which)
}

// String describes the limits, for logs.
func (l Limits) String() string {
	return fmt.Sprintf("rpm=%d tpm=%d burst=%v", l.RPM, l.TPM, l.Burst)
}
