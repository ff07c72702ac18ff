package sched

import (
	"testing"
	"time"
)

// finish runs one program of class with engine time service through p and ends it.
func finish(t *testing.T, p Policy, program, class string, service time.Duration) {
	t.Helper()
	c := &Call{Agent: "a", Program: program, Class: class, Module: LLM}
	p.Push(c, 0)
	if got := p.Pick(0, func(*Call) Verdict { return Take }); got != c {
		t.Fatalf("pick %s: %v", program, got)
	}
	c.Service = service
	p.(Observer).Stopped(c, 0, true)
	p.(ProgramEnder).ProgramEnded(program)
}

func pickAll(p Policy) []string {
	var out []string
	for p.Len() > 0 {
		c := p.Pick(0, func(*Call) Verdict { return Take })
		out = append(out, c.Program)
	}
	return out
}

// Programs go by predicted size plus ProgramAging × arrival, their class's mean size
// the prediction: big programs took 10 s, small ones 1 s. A big program that arrived at
// 0 (key 10 s) goes after a small one that arrived at 1 s (1 + 0.3 = 1.3 s) but before
// one that arrived at 40 s (1 + 12 = 13 s). A class never seen gets the mean of all
// (5.5 s): at 2 s, key 6.1 s.
func TestPSJFOrder(t *testing.T) {
	p, err := NewPolicy(Config{Name: "psjf"})
	if err != nil {
		t.Fatal(err)
	}
	finish(t, p, "b0", "big", 10*time.Second)
	finish(t, p, "s0", "small", time.Second)
	for _, c := range []*Call{
		{ID: 1, Program: "big1", Class: "big", Arrival: 0},
		{ID: 2, Program: "small1", Class: "small", Arrival: time.Second},
		{ID: 3, Program: "small2", Class: "small", Arrival: 40 * time.Second},
		{ID: 4, Program: "new", Class: "unseen", Arrival: 2 * time.Second},
	} {
		c.Module, c.seq = LLM, c.ID
		p.Push(c, c.Arrival)
	}
	got := pickAll(p)
	want := []string{"small1", "new", "big1", "small2"}
	for i := range want {
		if i >= len(got) || got[i] != want[i] {
			t.Fatalf("order %v, want %v", got, want)
		}
	}
}

// A program's later calls keep the key it got with its first, whatever was learned
// since; the class mean follows its programs (a plain mean of the first 16).
func TestPSJFProgramKeepsItsKey(t *testing.T) {
	p, _ := NewPolicy(Config{Name: "psjf"})
	finish(t, p, "x0", "k", 2*time.Second)
	first := &Call{ID: 1, Program: "long", Class: "k", Module: LLM, seq: 1}
	p.Push(first, 0)
	p.Pick(0, func(*Call) Verdict { return Take })
	first.Service = 30 * time.Second
	p.(Observer).Stopped(first, time.Second, true)
	finish(t, p, "x1", "k", 4*time.Second) // class mean now 3 s
	ps := p.(*psjf)
	if m := ps.classes["k"].mean; m != 3 {
		t.Fatalf("class mean %v, want 3", m)
	}
	next := &Call{ID: 2, Program: "long", Class: "k", Module: LLM, seq: 2, Arrival: 50 * time.Second}
	p.Push(next, 50*time.Second)
	if k := ps.calls[next].key; k != 2*time.Second {
		t.Fatalf("the program's second call has key %v, want its first's 2s", k)
	}
	p.Pick(0, func(*Call) Verdict { return Take })
	next.Service = 10 * time.Second
	p.(Observer).Stopped(next, 2*time.Second, true)
	p.(ProgramEnder).ProgramEnded("long")
	if m := ps.classes["k"].mean; m != (2+4+40)/3.0 {
		t.Fatalf("class mean %v after a program of 40 s, want %v", m, (2+4+40)/3.0)
	}
}

// Programs whose owner never ends them are learned from and dropped once idle, and a
// cancelled queued call leaves nothing behind.
func TestPSJFForgetsIdlePrograms(t *testing.T) {
	p, _ := NewPolicy(Config{Name: "psjf", IdleTTL: time.Minute})
	ps := p.(*psjf)
	c := &Call{ID: 1, Program: "quiet", Class: "q", Module: LLM}
	p.Push(c, 0)
	p.Pick(0, func(*Call) Verdict { return Take })
	c.Service = 3 * time.Second
	p.(Observer).Stopped(c, time.Second, true)
	gone := &Call{ID: 2, Program: "cancelled", Module: LLM}
	p.Push(gone, 0)
	if !p.Remove(gone) || len(ps.calls) != 0 {
		t.Fatalf("Remove left %d calls", len(ps.calls))
	}
	for i := range psjfSweep {
		x := &Call{ID: uint64(10 + i), Program: "busy", Module: LLM}
		p.Push(x, 2*time.Minute)
		p.Pick(0, func(*Call) Verdict { return Take })
		p.(Observer).Stopped(x, 2*time.Minute, true)
	}
	if ps.progs["quiet"] != nil || ps.progs["cancelled"] != nil {
		t.Fatalf("idle programs kept: %v", ps.progs)
	}
	if c := ps.classes["q"]; c == nil || c.mean != 3 {
		t.Fatalf("the idle program was not learned from: %+v", c)
	}
}
