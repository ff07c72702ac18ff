package sched

import (
	"strconv"
	"testing"
	"time"
)

// fairSched is one core of 1000 KV tokens, admission up to all of it, fifo order.
func fairSched(t *testing.T, ws WorkingSet) *Scheduler {
	s := newSched(t, "fifo", 0, CoreSpec{ID: 0, Module: LLM, MaxInflight: 100, MaxTokens: 1000})
	ws.High, ws.Suspend, ws.Beta = 1, 1, 1e9
	s.EnableWorkingSet(ws)
	return s
}

// submitHeavyAndLight queues four 300-token programs of agent h (calls 1-4), then one
// 200-token program of agent l (call 5). h has sent 4 programs and l 1: the mean is
// 2.5 and l, below 0.8 × 2.5, is light. Two agents are present: a share is 500.
func submitHeavyAndLight(t *testing.T, s *Scheduler) {
	for i := 1; i <= 4; i++ {
		mustSubmit(t, s, &Call{ID: uint64(i), Module: LLM, Agent: "h", Program: "h" + strconv.Itoa(i), Tokens: 300}, 0)
	}
	mustSubmit(t, s, &Call{ID: 5, Module: LLM, Agent: "l", Program: "l1", Tokens: 200}, 0)
}

func TestFairShareAdmitsLightAgentPastHeavyOnes(t *testing.T) {
	// Without fair share, h's first three programs fill 900 of 1000 and l's waits.
	plain := fairSched(t, WorkingSet{})
	submitHeavyAndLight(t, plain)
	if got := ids(plain.Dispatch(0)); got != "1 2 3" {
		t.Fatalf("plain admission: dispatched %q, want 1 2 3", got)
	}

	// With it: h1 comes in (an agent holding nothing may bring one program); h2 would
	// take h past its share of 500 into the 500 l leaves unused (1000 - 300 - 500 <
	// 300), so it waits, as do h3 and h4; l1 is admitted.
	s := fairSched(t, WorkingSet{FairShare: true})
	submitHeavyAndLight(t, s)
	if got := ids(s.Dispatch(0)); got != "1 5" {
		t.Fatalf("fair share: dispatched %q, want 1 5", got)
	}
	// l now holds 200 of its 500: the 300 it leaves unused is still kept, so h2 waits
	// (500 + 300 + 300 > 1000) although the set has room for it.
	if got := ids(s.Dispatch(ms)); got != "" {
		t.Fatalf("h2 admitted into the room kept for l: %q", got)
	}
	// l's program ends: l, present no more, has no share to keep, and h's share is
	// the whole set: h2 and h3 fit beside h1 (900), h4 does not.
	s.Complete(s.runningCall(5), 2*ms)
	s.EndProgram("l1")
	if got := ids(s.Dispatch(2 * ms)); got != "2 3" {
		t.Fatalf("after l left: dispatched %q, want 2 3", got)
	}
}

func TestFairShareLendingIsWorkConserving(t *testing.T) {
	// FairLend keeps no room: h2 fits within h's share of 500 (300 + 300 > 500, but h
	// holds 300 < 500 when it is asked), h3 is refused since h then holds 600 >= 500
	// while l waits below its share, h4 likewise, and l1 fits (600 + 200 <= 1000).
	s := fairSched(t, WorkingSet{FairShare: true, FairLend: true})
	submitHeavyAndLight(t, s)
	if got := ids(s.Dispatch(0)); got != "1 2 5" {
		t.Fatalf("dispatched %q, want 1 2 5", got)
	}
	// No light agent waits any more: once h1 leaves, h may fill the set again (h3:
	// 500 + 300; h4 would make 1100).
	s.Complete(s.runningCall(1), ms)
	s.EndProgram("h1")
	if got := ids(s.Dispatch(ms)); got != "3" {
		t.Fatalf("dispatched %q, want 3", got)
	}
}

// Agents sending alike are none of them light: fair share then decides as plain
// admission does, call for call.
func TestFairShareWithEqualAgentsIsPlainAdmission(t *testing.T) {
	run := func(ws WorkingSet) string {
		s := fairSched(t, ws)
		id := uint64(0)
		for round := 0; round < 3; round++ {
			for _, a := range []string{"x", "y"} {
				id++
				mustSubmit(t, s, &Call{ID: id, Module: LLM, Agent: a, Program: a + strconv.Itoa(round), Tokens: 250 + 50*round}, 0)
			}
		}
		out := ids(s.Dispatch(0))
		s.Complete(s.runningCall(1), ms)
		s.EndProgram("x0")
		return out + " | " + ids(s.Dispatch(ms))
	}
	plain, fair := run(WorkingSet{}), run(WorkingSet{FairShare: true})
	if plain != fair {
		t.Fatalf("equal agents: fair share dispatched %q, plain admission %q", fair, plain)
	}
	if plain != "1 2 3 | 4" {
		t.Fatalf("plain admission dispatched %q, want 1 2 3 | 4", plain)
	}
}

// An agent's record of arrivals halves every half-life.
func TestDecayedDemand(t *testing.T) {
	const hl = time.Minute
	f := newFairState(WorkingSet{FairHalfLife: hl})
	f.arrived("a", 0)
	f.arrived("a", 0)
	if v := f.demand["a"].valueAt(hl, hl); v != 1 {
		t.Fatalf("after one half-life: %v, want 1", v)
	}
	f.arrived("a", 2*hl)
	if v := f.demand["a"].valueAt(2*hl, hl); v != 1.5 {
		t.Fatalf("after two half-lives and one more arrival: %v, want 1.5", v)
	}
}

// Light agents are not held to their share: l, light (2 programs against a mean of 3),
// brings a second program past its share of 333 while m, light too, leaves 133 of its
// own unused. Holding l to its share made light agents wait for each other.
func TestFairShareLightAgentMayPassItsShare(t *testing.T) {
	s := fairSched(t, WorkingSet{FairShare: true})
	mustSubmit(t, s, &Call{ID: 1, Module: LLM, Agent: "l", Program: "l1", Tokens: 400}, 0)
	mustSubmit(t, s, &Call{ID: 2, Module: LLM, Agent: "l", Program: "l2", Tokens: 400}, 0)
	mustSubmit(t, s, &Call{ID: 3, Module: LLM, Agent: "m", Program: "m1", Tokens: 200}, 0)
	for i := 4; i <= 9; i++ {
		mustSubmit(t, s, &Call{ID: uint64(i), Module: LLM, Agent: "h", Program: "h" + strconv.Itoa(i), Tokens: 100}, 0)
	}
	// l1 and l2 (800) and m1 (1000) fill the set; h, heavy, gets in as room frees.
	if got := ids(s.Dispatch(0)); got != "1 2 3" {
		t.Fatalf("dispatched %q, want 1 2 3", got)
	}
}

// A light agent's program that does not fit suspends a heavy agent's program that is
// between calls, while the heavy agent is past its share.
func TestFairShareSuspendsHeavyForLight(t *testing.T) {
	s := fairSched(t, WorkingSet{FairShare: true})
	// h alone: its share is the whole set, and it fills it (3 × 300 = 900).
	for i := 1; i <= 4; i++ {
		mustSubmit(t, s, &Call{ID: uint64(i), Module: LLM, Agent: "h", Program: "h" + strconv.Itoa(i), Tokens: 300}, 0)
	}
	if got := ids(s.Dispatch(0)); got != "1 2 3" {
		t.Fatalf("dispatched %q, want 1 2 3", got)
	}
	// h1 and h2 finish their calls and go to tools; h3 is still running.
	s.Complete(s.runningCall(1), ms)
	s.Complete(s.runningCall(2), ms)
	// l (1 program against h's 4: light) brings 300: 900 + 300 > 1000. Two agents are
	// present, a share is 500, and h holds 900: h2, the newest of h's programs between
	// calls with equal contexts, is suspended, and l1 runs.
	mustSubmit(t, s, &Call{ID: 5, Module: LLM, Agent: "l", Program: "l1", Tokens: 300}, 2*ms)
	if got := ids(s.Dispatch(2 * ms)); got != "5" {
		t.Fatalf("dispatched %q, want 5", got)
	}
	if active, tokens, _, suspends := s.WorkingSetStats(); active != 3 || tokens != 900 || suspends != 1 {
		t.Fatalf("active %d tokens %d suspensions %d, want 3, 900, 1", active, tokens, suspends)
	}
	// h2's next call waits to be admitted again.
	mustSubmit(t, s, &Call{ID: 6, Module: LLM, Agent: "h", Program: "h2", Tokens: 350}, 3*ms)
	if got := ids(s.Dispatch(3 * ms)); got != "" {
		t.Fatalf("suspended h2 ran: %q", got)
	}
}

// Weights split the set: with h at weight 4 and l at 1, h's share is 800 of 1000 and l's
// 200, and h, sending 4 programs against l's 1, is exactly at its weighted share of
// arrivals, so neither is light and admission is plain: h1-h3 fill 900 and l1 waits.
// With equal weights the same arrivals make l light (the first test).
func TestFairShareWeightsSplitTheSet(t *testing.T) {
	s := fairSched(t, WorkingSet{FairShare: true, Weights: map[string]float64{"h": 4}})
	submitHeavyAndLight(t, s)
	if got := ids(s.Dispatch(0)); got != "1 2 3" {
		t.Fatalf("h at weight 4: dispatched %q, want 1 2 3", got)
	}
	if f := s.ws.fair; f.share["h"] != 800 || f.share["l"] != 200 || f.light["l"] || f.light["h"] {
		t.Fatalf("shares %v, light %v; want h 800, l 200, no one light", f.share, f.light)
	}
}

// A heavier weight keeps an agent light at a higher rate of arrivals: l at weight 3 sends
// 2 programs against h's 4 (its weighted share of 6 arrivals is 6 × 3/4 = 4.5, and
// 2 < 0.8 × 4.5), so it is light, and its share is 750: h1 comes in, h2 would take h
// past its 250 into the 750 - 0 l leaves unused, and l1 and l2 (300 + 300 + 300 <=
// 1000) are admitted.
func TestFairShareWeightedLightAgentGetsItsShare(t *testing.T) {
	s := fairSched(t, WorkingSet{FairShare: true, Weights: map[string]float64{"l": 3}})
	for i := 1; i <= 4; i++ {
		mustSubmit(t, s, &Call{ID: uint64(i), Module: LLM, Agent: "h", Program: "h" + strconv.Itoa(i), Tokens: 300}, 0)
	}
	mustSubmit(t, s, &Call{ID: 5, Module: LLM, Agent: "l", Program: "l1", Tokens: 300}, 0)
	mustSubmit(t, s, &Call{ID: 6, Module: LLM, Agent: "l", Program: "l2", Tokens: 300}, 0)
	if got := ids(s.Dispatch(0)); got != "1 5 6" {
		t.Fatalf("dispatched %q, want 1 5 6", got)
	}
	if f := s.ws.fair; f.share["l"] != 750 || f.share["h"] != 250 || !f.light["l"] {
		t.Fatalf("shares %v, light %v; want l 750 and light, h 250", f.share, f.light)
	}
}

// The light threshold is configurable: at 0.2, l's 1 program against h's 4 (0.2 × 2.5
// = 0.5 < 1) is not light, and admission is plain.
func TestFairShareLightThreshold(t *testing.T) {
	s := fairSched(t, WorkingSet{FairShare: true, FairLight: 0.2})
	submitHeavyAndLight(t, s)
	if got := ids(s.Dispatch(0)); got != "1 2 3" {
		t.Fatalf("dispatched %q, want 1 2 3", got)
	}
}
