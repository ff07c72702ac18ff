package sched

import (
	"math/rand/v2"
	"testing"
	"time"
)

// TestInvariantsUnderRandomLoad drives every policy with random submissions, completions,
// cancellations and preemptions, and checks after each step that no core holds more than
// its capacity and that every call ends exactly once.
func TestInvariantsUnderRandomLoad(t *testing.T) {
	for _, policy := range PolicyNames() {
		t.Run(policy, func(t *testing.T) {
			r := rand.New(rand.NewPCG(1, 2))
			s := newSched(t, policy, 5*ms,
				CoreSpec{ID: 0, Module: LLM, MaxInflight: 3, MaxTokens: 3000},
				CoreSpec{ID: 1, Module: LLM, MaxInflight: 5, MaxTokens: 2000},
			)
			var running, all []*Call
			now := time.Duration(0)
			for step := 0; step < 5000; step++ {
				now += time.Duration(r.IntN(3)) * ms
				switch x := r.IntN(10); {
				case x < 4:
					c := &Call{ID: uint64(len(all) + 1), Module: LLM, Tokens: 1 + r.IntN(1500), Priority: r.IntN(3)}
					mustSubmit(t, s, c, now)
					all = append(all, c)
				case x < 7 && len(running) > 0:
					i := r.IntN(len(running))
					s.Complete(running[i], now)
					running = append(running[:i], running[i+1:]...)
				case x < 8 && len(all) > 0:
					c := all[r.IntN(len(all))]
					s.Cancel(c, now)
				default:
					for _, c := range s.Preemptions(now) {
						s.Requeue(c, now)
					}
				}
				for _, a := range s.Dispatch(now) {
					running = append(running, a.Call)
				}
				kept := running[:0]
				for _, c := range running {
					if c.State == Running || c.State == Preempting {
						kept = append(kept, c)
					}
				}
				running = kept
				for _, l := range s.Loads() {
					if l.Inflight > l.Spec.MaxInflight || l.Tokens > l.Spec.MaxTokens || l.Inflight < 0 {
						t.Fatalf("step %d: core %d holds %d calls / %d tokens, capacity %d / %d",
							step, l.Spec.ID, l.Inflight, l.Tokens, l.Spec.MaxInflight, l.Spec.MaxTokens)
					}
				}
			}
			// Drain: everything left must run to completion.
			for i := 0; i < 100000 && (len(running) > 0 || s.Queued(LLM) > 0); i++ {
				now += ms
				for _, c := range running {
					s.Complete(c, now)
				}
				running = running[:0]
				for _, a := range s.Dispatch(now) {
					running = append(running, a.Call)
				}
			}
			for _, c := range all {
				if c.State != Finished {
					t.Fatalf("call %d left in state %d", c.ID, c.State)
				}
			}
		})
	}
}
