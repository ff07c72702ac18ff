package sched

import (
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
