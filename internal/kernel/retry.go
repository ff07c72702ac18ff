package kernel

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/aios-go/aios/api"
)

// Resilience is how the kernel treats one core's failures. The zero value retries
// nothing and never takes the core out, which keeps a kernel built in code (tests,
// benchmarks) predictable; Build fills in the configured or default policy.
type Resilience struct {
	Retry   RetryPolicy
	Breaker BreakerPolicy
}

// RetryPolicy says how often and how patiently a call that failed on this core is tried
// again. Only backend failures are retried (rate limits, overload, 5xx, timeouts, drops,
// malformed responses); a rejected request would fail the same way anywhere.
type RetryPolicy struct {
	// MaxRetries is how many times a call is tried again after its first attempt.
	MaxRetries int
	// Backoff is the wait before the first retry; each retry doubles it, up to
	// MaxBackoff, and the wait is drawn from its upper half so retries spread out.
	Backoff    time.Duration
	MaxBackoff time.Duration
}

const (
	DefaultBackoff    = 250 * time.Millisecond
	DefaultMaxBackoff = 10 * time.Second
)

func (p RetryPolicy) withDefaults() RetryPolicy {
	if p.Backoff <= 0 {
		p.Backoff = DefaultBackoff
	}
	if p.MaxBackoff <= 0 {
		p.MaxBackoff = DefaultMaxBackoff
	}
	p.MaxBackoff = max(p.MaxBackoff, p.Backoff)
	return p
}

// delay is the wait before retry n (0 for the first), with "equal jitter": half fixed
// so a retry never comes back at once, half random so a burst of failures does not
// return as a burst.
func (p RetryPolicy) delay(n int) time.Duration {
	d := p.Backoff
	for range n {
		if d >= p.MaxBackoff/2 {
			d = p.MaxBackoff
			break
		}
		d *= 2
	}
	d = min(d, p.MaxBackoff)
	return d/2 + rand.N(d/2+1)
}

// retryState is a syscall's record of its failed attempts; guarded by the kernel's mutex.
type retryState struct {
	n int // retries so far
}

// retryableKind reports whether a failure of this kind may go away on another attempt.
func retryableKind(k api.Kind) bool {
	switch k {
	case api.BackendRateLimited, api.BackendOverloaded, api.BackendUnavailable, api.BackendTimeout, api.BackendBadResponse:
		return true
	}
	return false
}

// afterAttempt applies the outcome of one attempt of sc on core e: the core's breaker
// hears of it, and a retryable failure is retried (on any core serving the model,
// resuming from the text already streamed when the caller has some). It runs under
// k.mu from finishSlice. retried means the call is queued again or backing off and is
// not terminal; otherwise final is the error to end it with.
func (k *Kernel) afterAttempt(sc *Syscall, e *coreEntry, ctx context.Context, err error, now time.Duration) (retried bool, final error) {
	if err == nil {
		k.attemptSucceeded(e)
		return false, nil
	}
	if sc.ctx.Err() != nil {
		return false, err // the caller, the deadline or shutdown ended it; classify says which
	}
	kind := api.KindOf(err)
	k.attemptFailed(e, err, kind)
	if !retryableKind(kind) {
		return false, err
	}
	p := e.cfg.Resilience.Retry.withDefaults()
	if sc.retry.n >= p.MaxRetries {
		if sc.retry.n > 0 {
			return false, annotate(err, "gave up after %d attempts", sc.retry.n+1)
		}
		return false, err
	}
	// What the caller already holds decides how the call can go on. Nothing: start
	// again anywhere. Text: only a core that continues a partial answer may take it,
	// or the caller would get the start twice. A tool call in pieces: nothing can.
	switch {
	case sc.sawToolArg:
		return false, annotate(err, "the stream dropped while a tool call was being sent, which cannot be continued")
	case sc.produced > 0 && !k.allResume(sc.req.Model):
		return false, annotate(err, "the stream dropped after %d tokens had reached the caller, and not every core serving %q can continue a partial answer", sc.produced, sc.req.Model)
	}

	delay := p.delay(sc.retry.n)
	wait := delay
	if ra := retryAfter(err); ra > 0 && e.health.cooling {
		// The core is held out for Retry-After (breaker.go); the call waits in the
		// queue, for this core to come back or for another one.
		delay = 0
		if !k.peerUp(e) {
			wait = max(wait, ra)
		} else {
			wait = 0
		}
	}
	if !sc.Deadline.IsZero() && time.Now().Add(wait).After(sc.Deadline) {
		return false, annotate(err, "not retried: the wait of %v would pass the call's deadline", wait.Round(time.Millisecond))
	}
	sc.retry.n++
	e.retried.Add(1)
	k.log.Debug("retrying LLM call", "syscall", sc.ID, "core", coreName(e), "attempt", sc.retry.n+1,
		"after", delay, "resume_tokens", sc.produced, "error", err)
	if delay == 0 {
		sc.stopRun = nil
		k.sched.Requeue(sc.call, now)
		return true, nil
	}
	// Back off on this core's slot: the failing core gets no new work from this call
	// meanwhile, and the call keeps its place ahead of later arrivals.
	k.runs.Add(1)
	go k.backOff(sc, ctx, delay)
	return true, nil
}

// backOff waits out a retry's delay, then queues the call again. ctx is the failed
// slice's context: it ends early when the call is preempted (queue it now) or its
// syscall ends (make it terminal).
func (k *Kernel) backOff(sc *Syscall, ctx context.Context, d time.Duration) {
	defer k.runs.Done()
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
	k.mu.Lock()
	sc.stopRun = nil
	if sc.ctx.Err() != nil {
		k.sched.Complete(sc.call, k.now())
		err := k.ctxError(sc)
		k.mu.Unlock()
		k.end(sc, nil, err)
		return
	}
	k.sched.Requeue(sc.call, k.now())
	k.mu.Unlock()
	k.poke()
}

// allResume reports whether every core serving model can continue a partial answer.
func (k *Kernel) allResume(model string) bool {
	cores := k.byModel[model]
	for _, c := range cores {
		if !c.caps.Resume {
			return false
		}
	}
	return len(cores) > 0
}

// cannotResume is the error of a slice sent, with text to continue, to a core that
// cannot continue it: a mixed fleet where the scheduler picked such a core.
func cannotResume(e *coreEntry, resume string) error {
	return api.Errorf(api.BackendUnavailable,
		"the call had streamed %d bytes when it stopped, and core %s cannot continue a partial answer; it ends here rather than repeat or cut the answer",
		len(resume), coreName(e))
}

// retryAfter is how long the source of err asked to wait, if it said.
func retryAfter(err error) time.Duration {
	var ae *api.Error
	if errors.As(err, &ae) {
		return ae.RetryAfter
	}
	return 0
}

// annotate adds context to a typed error, keeping its kind and Retry-After.
func annotate(err error, format string, args ...any) error {
	var ae *api.Error
	if !errors.As(err, &ae) {
		return err
	}
	return &api.Error{Kind: ae.Kind, Message: fmt.Sprintf(format, args...), RetryAfter: ae.RetryAfter, Err: err}
}
