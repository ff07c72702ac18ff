package ratelimit

import (
	"context"
	"math"
	"sync"
	"time"
)

// bucket is the token budget: a token bucket that may go into debt and takes tokens
// back. golang.org/x/time/rate, which keeps the request budget, cannot do either: it
// refuses a reservation larger than its burst, and a reservation already acted on
// cannot be returned. Tokens are reserved by estimate before a call and settled after
// it, and a refund must reach callers already waiting, or the budget a short answer
// leaves unused is lost while they sleep on a wait computed before it came back.
//
// Waiters are served in arrival order, so a large call is not starved by small ones.
type bucket struct {
	mu      sync.Mutex
	rate    float64 // tokens regained per second
	cap     float64 // most tokens held at once
	level   float64 // tokens available now; negative is debt
	last    time.Time
	waiters []*waiter
}

type waiter struct {
	n    float64
	wake chan struct{} // buffered: a wake-up is never lost, and never blocks the sender
}

func newBucket(ratePerSec, capacity float64) *bucket {
	return &bucket{rate: ratePerSec, cap: capacity, level: capacity, last: time.Now()}
}

// refill adds the tokens regained since the last event. Regained tokens never lift the
// level above the cap, but refunds may: a refund is budget that was held by a call in
// flight, not budget saved up while idle, and clipping it would waste it exactly when
// callers are waiting for it.
func (b *bucket) refill(now time.Time) {
	if now.After(b.last) {
		if b.level < b.cap {
			b.level = math.Min(b.cap, b.level+b.rate*now.Sub(b.last).Seconds())
		}
		b.last = now
	}
}

// need is the level at which a call of n tokens may start. A call larger than the
// bucket starts when the bucket is full and leaves it in debt, which later callers wait
// out: the budget over time holds even though one call exceeds the burst.
func (b *bucket) need(n float64) float64 { return math.Min(n, b.cap) }

// acquire takes n tokens, waiting in line until the bucket holds enough or ctx ends.
func (b *bucket) acquire(ctx context.Context, n int) error {
	w := &waiter{n: float64(n), wake: make(chan struct{}, 1)}
	b.mu.Lock()
	b.refill(time.Now())
	if len(b.waiters) == 0 && b.level >= b.need(w.n) {
		b.level -= w.n
		b.mu.Unlock()
		return nil
	}
	b.waiters = append(b.waiters, w)
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for {
		var tick <-chan time.Time
		if b.waiters[0] == w {
			if b.level >= b.need(w.n) {
				b.level -= w.n
				b.waiters = b.waiters[1:]
				b.wakeHead()
				b.mu.Unlock()
				return nil
			}
			d := time.Duration((b.need(w.n) - b.level) / b.rate * float64(time.Second))
			if timer == nil {
				timer = time.NewTimer(d)
			} else {
				timer.Reset(d)
			}
			tick = timer.C
		}
		b.mu.Unlock()
		select {
		case <-tick:
		case <-w.wake:
		case <-ctx.Done():
			b.mu.Lock()
			b.remove(w)
			b.wakeHead()
			b.mu.Unlock()
			return ctx.Err()
		}
		b.mu.Lock()
		b.refill(time.Now())
	}
}

// settle corrects a reservation of est tokens to the used ones: the difference is
// returned to the bucket, or taken as debt when the call used more than estimated.
func (b *bucket) settle(est, used int) {
	b.mu.Lock()
	b.refill(time.Now())
	b.level += float64(est - used)
	if est > used {
		b.wakeHead()
	}
	b.mu.Unlock()
}

func (b *bucket) wakeHead() {
	if len(b.waiters) > 0 {
		select {
		case b.waiters[0].wake <- struct{}{}:
		default:
		}
	}
}

func (b *bucket) remove(w *waiter) {
	for i, x := range b.waiters {
		if x == w {
			b.waiters = append(b.waiters[:i], b.waiters[i+1:]...)
			return
		}
	}
}
