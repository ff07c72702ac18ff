package sched

import "time"

// Retention chooses how long to keep a program's KV cache pinned on the engine when its
// call ends in a tool call, from that tool's past durations (after Continuum's idea:
// pin across a tool call only when the program is likely to be back before the pin
// costs more memory than the prefill it saves). It is pure: the owner reports tool
// durations and asks for TTLs.
type Retention struct {
	ema   map[string]time.Duration // smoothed duration per tool
	max   time.Duration            // never pin longer: a long tool wait is not worth the memory
	first time.Duration            // guess for a tool never seen
}

// NewRetention starts with no history: an unseen tool is guessed at 1 s, and nothing is
// pinned for longer than 10 s.
func NewRetention() *Retention {
	return &Retention{ema: map[string]time.Duration{}, max: 10 * time.Second, first: time.Second}
}

// Expect is how long tool is expected to take: its smoothed past durations, or the
// first guess for a tool never seen.
func (r *Retention) Expect(tool string) time.Duration {
	if d, ok := r.ema[tool]; ok {
		return d
	}
	return r.first
}

// TTL is how long to pin a context of tokens tokens before tool runs, or 0 for no pin.
func (r *Retention) TTL(tool string, tokens, capacity int) time.Duration {
	d := r.Expect(tool)
	// Pin for a margin over the expected wait, but not for tools expected to outlast
	// the cap, nor contexts so large that pinning them crowds out the running batch.
	if d > r.max || tokens > capacity/8 {
		return 0
	}
	return min(2*d, r.max)
}

// Observe records that tool took d.
func (r *Retention) Observe(tool string, d time.Duration) {
	if old, ok := r.ema[tool]; ok {
		r.ema[tool] = (3*old + d) / 4
		return
	}
	r.ema[tool] = d
}
