package kernel

import (
	"time"

	"github.com/aios-go/aios/api"
	"github.com/aios-go/aios/internal/sched"
)

// DefaultMaxQueued bounds each module's queue when Options.MaxQueued is 0: far above
// what the engines behind one kernel drain in a deadline's time, and small enough that
// a flood of callers cannot grow the kernel's memory without bound.
const DefaultMaxQueued = 4096

// Retry-After given with a refusal is the time the queue takes to drain back to half its
// limit (or the expected wait), kept within these bounds.
const (
	minRetryAfter = time.Second
	maxRetryAfter = time.Minute
)

// rateWindow is how long completions are counted before the drain rate is updated.
const rateWindow = 5 * time.Second

// drainRate estimates how many syscalls of one module complete per second: a mean over
// windows of rateWindow, smoothed, so a refusal can say how long to wait. Guarded by
// the kernel's mutex.
type drainRate struct {
	start time.Duration // current window's start
	count int           // completions in it
	rate  float64       // per second; 0 until the first window closes
}

// done counts one completion at now.
func (d *drainRate) done(now time.Duration) {
	d.roll(now)
	d.count++
}

func (d *drainRate) roll(now time.Duration) {
	if el := now - d.start; el >= rateWindow {
		r := float64(d.count) / el.Seconds()
		if d.rate == 0 {
			d.rate = r
		} else {
			d.rate = 0.5*d.rate + 0.5*r
		}
		d.start, d.count = now, 0
	}
}

// wait is how long n queued syscalls take to drain, and whether that is known.
func (d *drainRate) wait(n int, now time.Duration) (time.Duration, bool) {
	d.roll(now)
	if d.rate <= 0 {
		return 0, false
	}
	return time.Duration(float64(n) / d.rate * float64(time.Second)), true
}

func clampRetry(d time.Duration) time.Duration { return min(max(d, minRetryAfter), maxRetryAfter) }

// refuse is backpressure: it says why a new syscall of module m must not be queued, or
// nil. Past the module's backlog limit the answer is policy_quota_exceeded (429); when
// the queue ahead will not drain before the call's deadline it is backend_overloaded
// (503). Both carry Retry-After. A refused call was never acknowledged, so nothing
// accepted is ever dropped; bounding the queues bounds the kernel's memory.
//
// Calls of programs already admitted to the working set are never refused: they run
// without waiting for admission, and only they free the room the queued programs wait
// for; refusing them while the queue is full of programs waiting for that room would
// deadlock. Their number is bounded by the KV cache, so memory stays bounded.
func (k *Kernel) refuse(c *sched.Call, deadline time.Time, now time.Duration, wall time.Time) error {
	m := c.Module
	if k.opts.WorkingSet != nil && m == sched.LLM && k.sched.Admitted(c) {
		return nil
	}
	limit := k.opts.MaxQueued
	if limit == 0 {
		limit = DefaultMaxQueued
	}
	q := k.sched.Queued(m)
	d := &k.drain[m]
	if limit > 0 && q >= limit {
		after := minRetryAfter
		if w, ok := d.wait(q-limit/2, now); ok {
			after = w
		}
		e := api.Errorf(api.PolicyQuota, "the kernel's %s queue is full (%d calls waiting, the limit is %d); retry after the time it says", m, q, limit)
		e.RetryAfter = clampRetry(after)
		return e
	}
	if !deadline.IsZero() && q > 0 {
		if w, ok := d.wait(q, now); ok && wall.Add(w).After(deadline) {
			e := api.Errorf(api.BackendOverloaded, "the %d %s calls queued ahead take about %v to drain, past this call's deadline in %v; retry later or with a longer timeout",
				q, m, w.Round(time.Millisecond), deadline.Sub(wall).Round(time.Millisecond))
			e.RetryAfter = clampRetry(w)
			return e
		}
	}
	return nil
}
