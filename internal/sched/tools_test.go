package sched

import (
	"testing"
	"time"
)

// A program whose tool the kernel runs is not idle, however long the tool takes: it
// stays in the working set, and a program that does not fit keeps waiting.
func TestWorkingSetKeepsProgramsInKernelTools(t *testing.T) {
	s := wsSched(t) // Idle: 1 min
	mustSubmit(t, s, &Call{ID: 1, Module: LLM, Program: "a", Tokens: 700}, 0)
	s.Dispatch(0)
	s.Complete(s.runningCall(1), ms)
	s.ToolStarted("a", "t", 5*time.Minute, ms)
	mustSubmit(t, s, &Call{ID: 2, Module: LLM, Program: "b", Tokens: 700}, 2*ms)
	if got := ids(s.Dispatch(2 * time.Minute)); got != "" {
		t.Fatalf("b admitted while a's tool runs: %q", got)
	}
	// The tool ends; a's idle clock starts then, not at its last LLM call.
	s.ToolEnded("a", "t", 3*time.Minute)
	if got := ids(s.Dispatch(3*time.Minute + 30*time.Second)); got != "" {
		t.Fatalf("b admitted 30 s after a's tool ended: %q", got)
	}
	if got := ids(s.Dispatch(4*time.Minute + ms)); got != "2" {
		t.Fatalf("after a idled for a minute past its tool: %q", got)
	}
}

// With Evict, a starving program suspends first the program whose kernel-run tool is
// expected back last (its context is reused furthest ahead), not the smallest context.
//
// Limit 800: a (250, tool due at 10 s), e (300, tool due at 100 s) are active; b (400)
// starves 8 s after its arrival: suspending e alone makes room, so a keeps its place,
// although the size rule alone would have suspended a, the smaller.
func TestWorkingSetEvictsFurthestReuseFirst(t *testing.T) {
	s := newSched(t, "fifo", 0, CoreSpec{ID: 0, Module: LLM, MaxInflight: 100, MaxTokens: 1000})
	s.EnableWorkingSet(WorkingSet{High: 0.8, Suspend: 1, Idle: time.Hour, Beta: 8, Evict: true})
	mustSubmit(t, s, &Call{ID: 1, Module: LLM, Program: "a", Tokens: 250}, 0)
	mustSubmit(t, s, &Call{ID: 2, Module: LLM, Program: "e", Tokens: 300}, 0)
	if got := ids(s.Dispatch(0)); got != "1 2" {
		t.Fatalf("t=0: %q", got)
	}
	s.Complete(s.runningCall(1), ms)
	s.Complete(s.runningCall(2), ms)
	s.ToolStarted("a", "t", 10*time.Second, ms)
	s.ToolStarted("e", "t", 100*time.Second, ms)
	mustSubmit(t, s, &Call{ID: 3, Module: LLM, Program: "b", Tokens: 400}, ms)
	mustSubmit(t, s, &Call{ID: 9, Module: LLM, Program: "x", Tokens: 300}, ms)
	if got := ids(s.Dispatch(9 * time.Second)); got != "3" {
		t.Fatalf("t=9s: dispatched %q, want b's call", got)
	}
	mustSubmit(t, s, &Call{ID: 4, Module: LLM, Program: "a", Tokens: 350}, 10*time.Second)
	if got := ids(s.Dispatch(10 * time.Second)); got != "4" {
		t.Fatalf("a was suspended instead of e: dispatched %q", got)
	}
}

// A gated module starts calls whose resource is free and passes over those whose
// resource is busy, in policy order, without closing the queue behind them.
func TestGatePassesBusyResources(t *testing.T) {
	s := newSched(t, "fifo", 0, CoreSpec{ID: 0, Module: Tool, MaxInflight: 10})
	busy := map[string]bool{"slow": true}
	s.SetGate(Tool, func(c *Call) bool { return !busy[c.Model] })
	mustSubmit(t, s, &Call{ID: 1, Module: Tool, Model: "slow"}, 0)
	mustSubmit(t, s, &Call{ID: 2, Module: Tool, Model: "fast"}, 0)
	mustSubmit(t, s, &Call{ID: 3, Module: Tool, Model: "slow"}, 0)
	mustSubmit(t, s, &Call{ID: 4, Module: Tool, Model: "fast"}, 0)
	if got := ids(s.Dispatch(0)); got != "2 4" {
		t.Fatalf("dispatched %q, want the calls of the free tool", got)
	}
	if n := s.Waiting(Tool, "slow"); n != 2 {
		t.Fatalf("waiting for slow: %d, want 2", n)
	}
	busy["slow"] = false
	if got := ids(s.Dispatch(ms)); got != "1 3" {
		t.Fatalf("after slow freed: dispatched %q, want 1 3 in order", got)
	}
}
