package tool

import (
	"testing"
	"time"
)

// The breaker alone, as a table of events and expected decisions.
func TestBreakerStates(t *testing.T) {
	t0 := time.Unix(1000, 0)
	type step struct {
		at       time.Duration // since t0
		call     bool          // allow a call, then record o unless hold
		o        outcome
		hold     bool // a call that stays out (a probe still running)
		finish   bool // record o for the held probe
		ok       bool
		wait     time.Duration
		wantSt   string
		wantProb bool
	}
	cases := []struct {
		name   string
		limits Limits
		steps  []step
	}{
		{"opens after threshold, success resets the count", Limits{BreakerThreshold: 2, BreakerCooldown: time.Second}, []step{
			{call: true, o: failed, ok: true, wantSt: BreakerClosed},
			{call: true, o: succeeded, ok: true, wantSt: BreakerClosed},
			{call: true, o: failed, ok: true, wantSt: BreakerClosed},
			{call: true, o: neutral, ok: true, wantSt: BreakerClosed},
			{call: true, o: failed, ok: true, wantSt: BreakerOpen},
			{at: 300 * time.Millisecond, call: true, ok: false, wait: 700 * time.Millisecond, wantSt: BreakerOpen},
		}},
		{"probe: one at a time, failure doubles, success closes", Limits{BreakerThreshold: 1, BreakerCooldown: time.Second}, []step{
			{call: true, o: failed, ok: true, wantSt: BreakerOpen},
			{at: time.Second, call: true, hold: true, ok: true, wantProb: true, wantSt: BreakerHalfOpen},
			{at: time.Second, call: true, ok: false, wait: 0, wantSt: BreakerHalfOpen},
			{at: 2 * time.Second, finish: true, o: failed, wantSt: BreakerOpen},
			{at: 3 * time.Second, call: true, ok: false, wait: time.Second, wantSt: BreakerOpen},
			{at: 4 * time.Second, call: true, o: failed, ok: true, wantProb: true, wantSt: BreakerOpen},
			{at: 5 * time.Second, call: true, ok: false, wait: 3 * time.Second, wantSt: BreakerOpen},
			{at: 8 * time.Second, call: true, o: succeeded, ok: true, wantProb: true, wantSt: BreakerClosed},
			{at: 8 * time.Second, call: true, o: failed, ok: true, wantSt: BreakerOpen},
			{at: 8500 * time.Millisecond, call: true, ok: false, wait: 500 * time.Millisecond, wantSt: BreakerOpen},
		}},
		{"a neutral probe leaves the next call to probe", Limits{BreakerThreshold: 1, BreakerCooldown: time.Second}, []step{
			{call: true, o: failed, ok: true, wantSt: BreakerOpen},
			{at: time.Second, call: true, o: neutral, ok: true, wantProb: true, wantSt: BreakerHalfOpen},
			{at: time.Second, call: true, o: succeeded, ok: true, wantProb: true, wantSt: BreakerClosed},
		}},
		{"cooldown doubles up to the ceiling", Limits{BreakerThreshold: 1, BreakerCooldown: 100 * time.Second}, []step{
			{call: true, o: failed, ok: true, wantSt: BreakerOpen},
			{at: 100 * time.Second, call: true, o: failed, ok: true, wantProb: true, wantSt: BreakerOpen},
			{at: 100 * time.Second, call: true, ok: false, wait: MaxBreakerCooldown, wantSt: BreakerOpen},
			{at: 220 * time.Second, call: true, o: failed, ok: true, wantProb: true, wantSt: BreakerOpen},
			{at: 220 * time.Second, call: true, ok: false, wait: MaxBreakerCooldown, wantSt: BreakerOpen},
		}},
		{"disabled", Limits{BreakerThreshold: -1}, []step{
			{call: true, o: failed, ok: true, wantSt: BreakerClosed},
			{call: true, o: failed, ok: true, wantSt: BreakerClosed},
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b := newBreaker(c.limits.WithDefaults())
			var heldProbe bool
			for i, s := range c.steps {
				now := t0.Add(s.at)
				if s.finish {
					b.record(now, heldProbe, s.o)
				}
				if s.call {
					ok, probe, wait := b.allow(now)
					if ok != s.ok || probe != s.wantProb || wait != s.wait {
						t.Fatalf("step %d: allow = %v, probe %v, wait %v; want %v, %v, %v", i, ok, probe, wait, s.ok, s.wantProb, s.wait)
					}
					if ok && s.hold {
						heldProbe = probe
					} else if ok {
						b.record(now, probe, s.o)
					}
				}
				if b.state != s.wantSt {
					t.Fatalf("step %d: state %s, want %s", i, b.state, s.wantSt)
				}
			}
		})
	}
}
