package sched

import (
	"math"
	"strconv"
	"testing"
	"time"
)

func wsSched(t *testing.T) *Scheduler {
	s := newSched(t, "fifo", 0, CoreSpec{ID: 0, Module: LLM, MaxInflight: 100, MaxTokens: 1000})
	s.EnableWorkingSet(WorkingSet{High: 0.8, Suspend: 0.95, Idle: time.Minute})
	return s
}

func TestWorkingSetAdmitsWholePrograms(t *testing.T) {
	s := wsSched(t)
	call := func(id uint64, prog string, tokens int) *Call {
		return &Call{ID: id, Module: LLM, Program: prog, Tokens: tokens}
	}
	mustSubmit(t, s, call(1, "a", 300), 0)
	mustSubmit(t, s, call(2, "b", 300), 0)
	mustSubmit(t, s, call(3, "c", 300), 0) // 900 > 800: c waits
	got := ids(s.Dispatch(0))
	if got != "1 2" {
		t.Fatalf("dispatched %q, want a and b only", got)
	}
	// a's call ends and it goes to a tool: a stays admitted, its next call runs at once
	// even though c has waited longer. That is the point: its context is still cached.
	s.Complete(s.runningCall(1), 1*ms)
	if got := ids(s.Dispatch(1 * ms)); got != "" {
		t.Fatalf("c admitted while a and b hold the set: %q", got)
	}
	mustSubmit(t, s, call(4, "a", 350), 2*ms)
	if got := ids(s.Dispatch(2 * ms)); got != "4" {
		t.Fatalf("a's next call: dispatched %q, want 4", got)
	}
	// b finishes for good: c is admitted.
	s.Complete(s.runningCall(2), 3*ms)
	s.EndProgram("b")
	if got := ids(s.Dispatch(3 * ms)); got != "3" {
		t.Fatalf("after b ended: dispatched %q, want 3", got)
	}
	if active, tokens, admits, _ := s.WorkingSetStats(); active != 2 || tokens != 650 || admits != 3 {
		t.Fatalf("active %d tokens %d admits %d", active, tokens, admits)
	}
}

func TestWorkingSetSuspendsNewestWhenContextsGrow(t *testing.T) {
	s := wsSched(t)
	for i, p := range []string{"a", "b"} {
		mustSubmit(t, s, &Call{ID: uint64(i + 1), Module: LLM, Program: p, Tokens: 400}, 0)
	}
	s.Dispatch(0)
	s.Complete(s.runningCall(1), ms)
	s.Complete(s.runningCall(2), ms)
	// a's context grows to 600: 1000 > 950, so b (admitted last) is suspended.
	mustSubmit(t, s, &Call{ID: 3, Module: LLM, Program: "a", Tokens: 600}, 2*ms)
	mustSubmit(t, s, &Call{ID: 4, Module: LLM, Program: "b", Tokens: 450}, 2*ms)
	if got := ids(s.Dispatch(2 * ms)); got != "3" {
		t.Fatalf("dispatched %q, want only a's call", got)
	}
	if _, _, _, suspends := s.WorkingSetStats(); suspends != 1 {
		t.Fatalf("suspensions %d, want 1", suspends)
	}
}

func TestWorkingSetForgetsIdlePrograms(t *testing.T) {
	s := wsSched(t)
	mustSubmit(t, s, &Call{ID: 1, Module: LLM, Program: "a", Tokens: 700}, 0)
	s.Dispatch(0)
	s.Complete(s.runningCall(1), ms)
	mustSubmit(t, s, &Call{ID: 2, Module: LLM, Program: "b", Tokens: 700}, 2*ms)
	if got := ids(s.Dispatch(2 * ms)); got != "" {
		t.Fatalf("b admitted beside a: %q", got)
	}
	// a never calls again: after Idle it is presumed done and b gets in.
	if got := ids(s.Dispatch(time.Minute + 2*ms)); got != "2" {
		t.Fatalf("after a went idle: %q", got)
	}
}

func ids(as []Assignment) string {
	out := ""
	for i, a := range as {
		if i > 0 {
			out += " "
		}
		out += strconv.FormatUint(a.Call.ID, 10)
	}
	return out
}

// runningCall finds a running call by ID, for tests.
func (s *Scheduler) runningCall(id uint64) *Call {
	for _, k := range s.cores {
		for c := range k.running {
			if c.ID == id {
				return c
			}
		}
	}
	return nil
}

// A program that does not fit is passed by smaller ones only until it has waited Beta
// times its service (here the 1 s minimum): then it holds the reservation, no later
// program is admitted before it, and it gets in as soon as an active one leaves.
//
// Limit 0.8 × 1000 = 800 tokens. a (600) is active; b (500) waits from t=0.
//
//	t=1ms: c (100) fits (700 ≤ 800) and is admitted past b: b has waited 1 ms < 2 × 1 s.
//	t=3s:  b has waited 3 s ≥ 2 × 1 s: it is reserved. d (100) would fit (800) but waits.
//	t=4s:  a ends: b is admitted (100 + 500 = 600), then d behind it (700).
func TestWorkingSetStarvationBound(t *testing.T) {
	for _, beta := range []float64{2, math.Inf(1)} {
		s := newSched(t, "fifo", 0, CoreSpec{ID: 0, Module: LLM, MaxInflight: 100, MaxTokens: 1000})
		s.EnableWorkingSet(WorkingSet{High: 0.8, Suspend: 1, Idle: time.Hour, Beta: beta, MinService: time.Second})
		mustSubmit(t, s, &Call{ID: 1, Module: LLM, Program: "a", Tokens: 600}, 0)
		mustSubmit(t, s, &Call{ID: 2, Module: LLM, Program: "b", Tokens: 500}, 0)
		if got := ids(s.Dispatch(0)); got != "1" {
			t.Fatalf("β=%v t=0: dispatched %q, want a's call", beta, got)
		}
		mustSubmit(t, s, &Call{ID: 3, Module: LLM, Program: "c", Tokens: 100}, ms)
		if got := ids(s.Dispatch(ms)); got != "3" {
			t.Fatalf("β=%v t=1ms: dispatched %q, want c past b", beta, got)
		}
		mustSubmit(t, s, &Call{ID: 4, Module: LLM, Program: "d", Tokens: 100}, 3*time.Second)
		got := ids(s.Dispatch(3 * time.Second))
		if math.IsInf(beta, 1) {
			if got != "4" {
				t.Fatalf("no bound: dispatched %q, want d past b again", got)
			}
			continue
		}
		if got != "" {
			t.Fatalf("t=3s: dispatched %q, want nothing: b is starving and reserved", got)
		}
		if n := s.WorkingSetReservations(); n != 1 {
			t.Fatalf("reservations %d, want 1", n)
		}
		s.Complete(s.runningCall(1), 4*time.Second)
		s.EndProgram("a")
		if got := ids(s.Dispatch(4 * time.Second)); got != "2 4" {
			t.Fatalf("t=4s: dispatched %q, want b then d", got)
		}
	}
}

// The service a program received raises the wait it may be passed for: b, suspended
// after 10 s of service, may be passed until it has waited 2 × 10 s.
//
// Limit 800, suspension past 950. a and b (400 each) are admitted at 0; a's call ends
// at 1 s, b's at 10 s. At 10 s a's next call needs 600: 1000 > 950 suspends b (the
// newest), whose next call (450) then waits.
//
//	t=29s: b has waited 19 s < 20 s: c (100) is admitted past it (700 ≤ 800).
//	t=31s: b has waited 21 s ≥ 20 s: it is reserved; d (50) would fit but waits.
func TestWorkingSetStarvationScalesWithService(t *testing.T) {
	s := newSched(t, "fifo", 0, CoreSpec{ID: 0, Module: LLM, MaxInflight: 100, MaxTokens: 1000})
	s.EnableWorkingSet(WorkingSet{High: 0.8, Suspend: 0.95, Idle: time.Hour, Beta: 2})
	mustSubmit(t, s, &Call{ID: 1, Module: LLM, Program: "a", Tokens: 400}, 0)
	mustSubmit(t, s, &Call{ID: 2, Module: LLM, Program: "b", Tokens: 400}, 0)
	if got := ids(s.Dispatch(0)); got != "1 2" {
		t.Fatalf("t=0: %q", got)
	}
	s.Complete(s.runningCall(1), time.Second)
	s.Complete(s.runningCall(2), 10*time.Second)
	mustSubmit(t, s, &Call{ID: 3, Module: LLM, Program: "a", Tokens: 600}, 10*time.Second)
	mustSubmit(t, s, &Call{ID: 4, Module: LLM, Program: "b", Tokens: 450}, 10*time.Second)
	if got := ids(s.Dispatch(10 * time.Second)); got != "3" {
		t.Fatalf("t=10s: dispatched %q, want a's call with b suspended", got)
	}
	mustSubmit(t, s, &Call{ID: 5, Module: LLM, Program: "c", Tokens: 100}, 29*time.Second)
	if got := ids(s.Dispatch(29 * time.Second)); got != "5" {
		t.Fatalf("t=29s: dispatched %q, want c past b", got)
	}
	mustSubmit(t, s, &Call{ID: 6, Module: LLM, Program: "d", Tokens: 50}, 31*time.Second)
	if got := ids(s.Dispatch(31 * time.Second)); got != "" {
		t.Fatalf("t=31s: dispatched %q, want nothing: b is reserved", got)
	}
	if n := s.WorkingSetReservations(); n != 1 {
		t.Fatalf("reservations %d", n)
	}
}

// With Evict a starving program does not wait for active programs to end: those
// between calls are suspended, smallest context first, until it fits. Without it, it
// waits for them (TestWorkingSetStarvationBound).
//
// Limit 800. a (500) and e (200) are admitted at 0; their calls end at 1 ms and they go
// to tools. b (400) waits from 0 (500 + 200 + 400 > 800).
//
//	t=1s: b has waited 1 s < 8 × 1 s: nothing happens.
//	t=8s: b is starving: e (the smaller) is suspended, 500 + 400 = 900 > 800 still, so
//	      a is too; b is admitted alone (400). a's next call then waits: 900 > 800.
func TestWorkingSetStarvingProgramSuspendsIdleOnes(t *testing.T) {
	s := newSched(t, "fifo", 0, CoreSpec{ID: 0, Module: LLM, MaxInflight: 100, MaxTokens: 1000})
	s.EnableWorkingSet(WorkingSet{High: 0.8, Suspend: 1, Idle: time.Hour, Beta: 8, Evict: true})
	mustSubmit(t, s, &Call{ID: 1, Module: LLM, Program: "a", Tokens: 500}, 0)
	mustSubmit(t, s, &Call{ID: 2, Module: LLM, Program: "e", Tokens: 200}, 0)
	mustSubmit(t, s, &Call{ID: 3, Module: LLM, Program: "b", Tokens: 400}, 0)
	if got := ids(s.Dispatch(0)); got != "1 2" {
		t.Fatalf("t=0: %q", got)
	}
	s.Complete(s.runningCall(1), ms)
	s.Complete(s.runningCall(2), ms)
	if got := ids(s.Dispatch(time.Second)); got != "" {
		t.Fatalf("t=1s: %q", got)
	}
	if got := ids(s.Dispatch(8 * time.Second)); got != "3" {
		t.Fatalf("t=8s: dispatched %q, want b's call", got)
	}
	if active, tokens, _, suspends := s.WorkingSetStats(); active != 1 || tokens != 400 || suspends != 2 {
		t.Fatalf("active %d tokens %d suspends %d, want b alone after suspending e and a", active, tokens, suspends)
	}
	mustSubmit(t, s, &Call{ID: 4, Module: LLM, Program: "a", Tokens: 500}, 9*time.Second)
	if got := ids(s.Dispatch(9 * time.Second)); got != "" {
		t.Fatalf("t=9s: a readmitted beside b: %q", got)
	}
}

// With a CPU tier behind the engines the default marks are 1.2 and 1.3; marks given
// explicitly stay as given.
func TestWorkingSetTierMarks(t *testing.T) {
	for _, tc := range []struct {
		cfg           WorkingSet
		high, suspend float64
	}{
		{WorkingSet{}, 0.9, 1.0},
		{WorkingSet{Tier: true}, 1.2, 1.3},
		{WorkingSet{Tier: true, High: 0.8, Suspend: 0.95}, 0.8, 0.95},
	} {
		s := New(func(Module) Policy { p, _ := NewPolicy(Config{Name: "fifo"}); return p })
		s.EnableWorkingSet(tc.cfg)
		if s.ws.cfg.High != tc.high || s.ws.cfg.Suspend != tc.suspend {
			t.Errorf("%+v: marks %v / %v, want %v / %v", tc.cfg, s.ws.cfg.High, s.ws.cfg.Suspend, tc.high, tc.suspend)
		}
	}
}
