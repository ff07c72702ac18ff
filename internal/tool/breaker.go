package tool

import "time"

// Breaker states as Stats reports them.
const (
	BreakerClosed   = "closed"
	BreakerOpen     = "open"
	BreakerHalfOpen = "half_open"
)

// breaker is one tool's circuit breaker: a state machine fed the time and each call's
// outcome, so tests drive it without clocks. A tool that keeps failing (a crashed MCP
// server, an API that is down) is refused at once instead of tying up a slot and the
// agent's time until its timeout, and is probed by one call at a time until it recovers.
type breaker struct {
	threshold int           // < 0: disabled
	base      time.Duration // first cooldown
	state     string
	fails     int           // consecutive failures while closed
	cooldown  time.Duration // current cooldown: base, doubled after each failed probe
	until     time.Time     // open: when the next probe may pass
	probing   bool          // half open: the probe is out
}

func newBreaker(l Limits) breaker {
	return breaker{threshold: l.BreakerThreshold, base: l.BreakerCooldown, state: BreakerClosed, cooldown: l.BreakerCooldown}
}

// outcome is how a call bears on the tool's health.
type outcome int

const (
	succeeded outcome = iota
	failed
	// neutral: the call says nothing of the tool (the caller cancelled or sent a
	// request the tool refused as the caller's fault).
	neutral
)

// allow says whether a call may run now. When it may not, wait is how long until a
// probe may pass (0 while a probe is out: its end is not known). probe marks the one
// call let through a half-open breaker; its outcome must be recorded.
func (b *breaker) allow(now time.Time) (ok, probe bool, wait time.Duration) {
	if b.threshold < 0 {
		return true, false, 0
	}
	switch b.state {
	case BreakerOpen:
		if now.Before(b.until) {
			return false, false, b.until.Sub(now)
		}
		b.state, b.probing = BreakerHalfOpen, true
		return true, true, 0
	case BreakerHalfOpen:
		if b.probing {
			return false, false, 0
		}
		b.probing = true
		return true, true, 0
	}
	return true, false, 0
}

// record feeds the outcome of a call that allow let through.
func (b *breaker) record(now time.Time, probe bool, o outcome) {
	if b.threshold < 0 {
		return
	}
	if probe {
		b.probing = false
		switch o {
		case succeeded:
			b.state, b.fails, b.cooldown = BreakerClosed, 0, b.base
		case failed:
			// A cooldown configured above the ceiling stays as configured.
			b.cooldown = max(b.cooldown, min(2*b.cooldown, MaxBreakerCooldown))
			b.state, b.until = BreakerOpen, now.Add(b.cooldown)
		}
		// neutral: stay half open, and the next call probes.
		return
	}
	if b.state != BreakerClosed {
		// A call admitted before the breaker opened, ending late: the probe decides.
		return
	}
	switch o {
	case succeeded:
		b.fails = 0
	case failed:
		b.fails++
		if b.fails >= b.threshold {
			b.state, b.until = BreakerOpen, now.Add(b.cooldown)
		}
	}
}
