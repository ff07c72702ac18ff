package sched

import (
	"fmt"
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
					c := randomCall(r, uint64(len(all)+1))
					mustSubmit(t, s, c, now)
					all = append(all, c)
				case x < 7 && len(running) > 0:
					i := r.IntN(len(running))
					running[i].OutputTokens = 1 + r.IntN(400)
					s.Complete(running[i], now)
					running = append(running[:i], running[i+1:]...)
				case x < 8 && len(all) > 0:
					c := all[r.IntN(len(all))]
					s.Cancel(c, now)
				default:
					for _, c := range s.Preemptions(now) {
						c.OutputTokens += r.IntN(50) // what the slice produced, as an owner may report it
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
			// Policies that keep per-call state must have let go of every call.
			if l, ok := s.Policy(LLM).(interface{ live() int }); ok && l.live() != 0 {
				t.Fatalf("policy still holds state for %d calls after all ended", l.live())
			}
		})
	}
}

// randomCall is a call of one of a few programs and agents (or of none), with a prompt
// text whose kind hints at its output length, as learning policies expect.
func randomCall(r *rand.Rand, id uint64) *Call {
	texts := []string{"classify the sentiment of this review", "write the function body",
		"summarize the retrieved pages", "pick the next tool", ""}
	c := &Call{ID: id, Module: LLM, Tokens: 1 + r.IntN(1500), Priority: r.IntN(3),
		InputTokens: r.IntN(1000), MaxOutput: r.IntN(500), Text: texts[r.IntN(len(texts))]}
	if k := r.IntN(7); k < 6 {
		c.Program = fmt.Sprintf("p%d", k)
	}
	if k := r.IntN(4); k < 3 {
		c.Agent = fmt.Sprintf("a%d", k)
	}
	return c
}
