package kernel

import (
	"context"
	"sync"
	"time"

	"github.com/aios-go/aios/api"
)

// BreakerPolicy takes a core that keeps failing out of dispatch and probes it back in.
// After Threshold consecutive backend failures the core is marked down; after Cooldown
// its Health is probed, and on success it takes calls again, on probation: one more
// failure takes it out again at once. Each failed probe doubles the wait, up to
// MaxCooldown. The last core serving a model is never taken out, so calls for that model
// keep retrying and end with a typed error instead of waiting for a probe.
//
// Independently, a core that answers a rate limit or overload with Retry-After is held
// out for that long (at most MaxRetryAfter), so no call, retried or new, is sent to it
// before the provider asked; that holds even for the last core of a model.
type BreakerPolicy struct {
	Threshold     int // 0 turns the breaker off
	Cooldown      time.Duration
	MaxCooldown   time.Duration
	MaxRetryAfter time.Duration
}

const (
	DefaultCooldown      = 5 * time.Second
	DefaultMaxCooldown   = 2 * time.Minute
	DefaultMaxRetryAfter = 5 * time.Minute
	probeTimeout         = 10 * time.Second
)

func (p BreakerPolicy) withDefaults() BreakerPolicy {
	if p.Cooldown <= 0 {
		p.Cooldown = DefaultCooldown
	}
	if p.MaxCooldown <= 0 {
		p.MaxCooldown = DefaultMaxCooldown
	}
	p.MaxCooldown = max(p.MaxCooldown, p.Cooldown)
	if p.MaxRetryAfter <= 0 {
		p.MaxRetryAfter = DefaultMaxRetryAfter
	}
	return p
}

// coreHealth is a core's breaker state; guarded by the kernel's mutex.
type coreHealth struct {
	failures  int // consecutive backend failures
	open      bool
	cooling   bool // held out for Retry-After
	coolUntil time.Time
	cooldown  time.Duration // wait before the next probe
	probe     *time.Timer
	cool      *time.Timer
	opened    uint64 // times taken out
}

// background tracks the breaker's timers and probes so Shutdown can stop and wait for
// them.
type background struct {
	wg     sync.WaitGroup
	ctx    context.Context
	cancel context.CancelFunc
	closed bool // guarded by the kernel's mutex
}

func (b *background) init() { b.ctx, b.cancel = context.WithCancel(context.Background()) }

// after runs f after d on its own goroutine, tracked; k.mu must be held.
func (k *Kernel) after(d time.Duration, f func()) *time.Timer {
	k.bg.wg.Add(1)
	return time.AfterFunc(d, func() {
		defer k.bg.wg.Done()
		f()
	})
}

// stopTimer stops t, accounting for the run it will now never make.
func (k *Kernel) stopTimer(t *time.Timer) {
	if t != nil && t.Stop() {
		k.bg.wg.Done()
	}
}

// stopBackground cancels pending probes and cool-downs and waits for running ones.
func (k *Kernel) stopBackground() {
	k.mu.Lock()
	k.bg.closed = true
	for _, e := range k.cores {
		k.stopTimer(e.health.probe)
		k.stopTimer(e.health.cool)
	}
	k.mu.Unlock()
	k.bg.cancel()
	k.bg.wg.Wait()
}

// down reports whether the scheduler should keep calls away from e.
func (h *coreHealth) down() bool { return h.open || h.cooling }

// attemptSucceeded closes the books on e's failures; k.mu held.
func (k *Kernel) attemptSucceeded(e *coreEntry) {
	e.health.failures = 0
	e.health.cooldown = 0
}

// attemptFailed records a failed attempt on e; k.mu held.
func (k *Kernel) attemptFailed(e *coreEntry, err error, kind api.Kind) {
	p := e.cfg.Resilience.Breaker.withDefaults()
	if ra := retryAfter(err); ra > 0 && (kind == api.BackendRateLimited || kind == api.BackendOverloaded) {
		k.coolFor(e, min(ra, p.MaxRetryAfter))
	}
	switch kind {
	case api.BackendOverloaded, api.BackendUnavailable, api.BackendTimeout, api.BackendBadResponse:
		e.health.failures++
	case api.BackendRejected:
		// The core answered; the request was at fault, not the core.
		e.health.failures = 0
		return
	default:
		// Rate limits are the key's budget, not the core's health; the rest is the
		// caller's or the kernel's doing.
		return
	}
	if p.Threshold <= 0 || e.health.open || e.health.failures < p.Threshold || !k.peerUp(e) {
		return
	}
	e.health.open = true
	e.health.opened++
	k.sched.SetDown(e.id, true)
	if e.health.cooldown == 0 {
		e.health.cooldown = p.Cooldown
	}
	k.log.Warn("LLM core taken out after consecutive failures", "core", coreName(e),
		"failures", e.health.failures, "probe_in", e.health.cooldown, "error", err)
	k.scheduleProbe(e)
}

// peerUp reports whether another core serving e's model takes calls now.
func (k *Kernel) peerUp(e *coreEntry) bool {
	for _, o := range k.byModel[e.cfg.Model] {
		if o != e && !o.health.down() {
			return true
		}
	}
	return false
}

// scheduleProbe arranges e's next health probe; k.mu held.
func (k *Kernel) scheduleProbe(e *coreEntry) {
	if k.bg.closed {
		return
	}
	d := e.health.cooldown
	e.health.cooldown = min(2*d, e.cfg.Resilience.Breaker.withDefaults().MaxCooldown)
	e.health.probe = k.after(d, func() { k.probe(e) })
}

// probe asks an open core's backend whether it answers, and lets it back in if so.
func (k *Kernel) probe(e *coreEntry) {
	ctx, cancel := context.WithTimeout(k.bg.ctx, probeTimeout)
	err := e.cfg.Core.Health(ctx)
	cancel()
	k.mu.Lock()
	if k.bg.closed {
		k.mu.Unlock()
		return
	}
	if err != nil {
		k.log.Info("LLM core still failing its health probe", "core", coreName(e), "next_probe_in", e.health.cooldown, "error", err)
		k.scheduleProbe(e)
		k.mu.Unlock()
		return
	}
	e.health.open = false
	// On probation: the next failure reopens the breaker straight away.
	e.health.failures = max(e.cfg.Resilience.Breaker.Threshold-1, 0)
	k.sched.SetDown(e.id, e.health.down())
	k.log.Info("LLM core back in service after a good health probe", "core", coreName(e))
	k.mu.Unlock()
	k.poke()
}

// coolFor holds e out of dispatch for d, as its provider asked; k.mu held.
func (k *Kernel) coolFor(e *coreEntry, d time.Duration) {
	if k.bg.closed {
		return
	}
	until := time.Now().Add(d)
	if e.health.cooling && !until.After(e.health.coolUntil) {
		return
	}
	e.health.cooling, e.health.coolUntil = true, until
	k.sched.SetDown(e.id, true)
	k.stopTimer(e.health.cool)
	var t *time.Timer
	t = k.after(d, func() {
		k.mu.Lock()
		if k.bg.closed || e.health.cool != t {
			// Shut down, or a later Retry-After replaced this hold with a longer one.
			k.mu.Unlock()
			return
		}
		e.health.cooling = false
		k.sched.SetDown(e.id, e.health.down())
		k.mu.Unlock()
		k.poke()
	})
	e.health.cool = t
}

// healthState names e's state for status reports; k.mu held.
func (h *coreHealth) state() string {
	switch {
	case h.open:
		return "open"
	case h.cooling:
		return "cooling"
	}
	return "ok"
}
