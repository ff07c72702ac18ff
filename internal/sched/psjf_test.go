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

// Calls go by their program's predicted remaining size plus ProgramAging × arrival,
// the class's mean size the prediction for a new program: big programs took 10 s, small ones 1 s. A big program that arrived at
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

// A program's later calls go by what it is predicted to need still: class mean 10 s,
// the program has had 8 s, so its call arriving at 20 s has key 2 + 0.3·20 = 8 s and
// goes before a new program's call that arrived at 5 s (10 + 1.5 = 11.5 s). Past its
// prediction a program needs 0 more, and the class mean follows its programs (a plain
// mean of the first 16).
func TestPSJFRemainingSize(t *testing.T) {
	p, _ := NewPolicy(Config{Name: "psjf"})
	ps := p.(*psjf)
	finish(t, p, "x0", "k", 10*time.Second)
	first := &Call{ID: 1, Program: "long", Class: "k", Module: LLM, seq: 1}
	p.Push(first, 0)
	p.Pick(0, func(*Call) Verdict { return Take })
	first.Service = 8 * time.Second
	p.(Observer).Stopped(first, time.Second, true)

	fresh := &Call{ID: 2, Program: "fresh", Class: "k", Module: LLM, seq: 2, Arrival: 5 * time.Second}
	later := &Call{ID: 3, Program: "long", Class: "k", Module: LLM, seq: 3, Arrival: 20 * time.Second}
	p.Push(fresh, 5*time.Second)
	p.Push(later, 20*time.Second)
	if k := ps.calls[later].key; k != 8*time.Second {
		t.Fatalf("the later call's key %v, want 8s", k)
	}
	if got := pickAll(p); len(got) != 2 || got[0] != "long" || got[1] != "fresh" {
		t.Fatalf("order %v, want long then fresh", got)
	}
	later.Service = 32 * time.Second
	p.(Observer).Stopped(later, 30*time.Second, true)
	again := &Call{ID: 4, Program: "long", Class: "k", Module: LLM, seq: 4, Arrival: 40 * time.Second}
	p.Push(again, 40*time.Second)
	if k := ps.calls[again].key; k != 12*time.Second {
		t.Fatalf("past its prediction, key %v, want 0 + 0.3·40s = 12s", k)
	}
	p.Pick(0, func(*Call) Verdict { return Take })
	p.(Observer).Stopped(again, 41*time.Second, true)
	p.(ProgramEnder).ProgramEnded("long")
	if m := ps.classes["k"].mean; m != (10+40)/2.0 {
		t.Fatalf("class mean %v after a program of 40 s, want %v", m, (10+40)/2.0)
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

// Classes are bounded: past MaxIdle a new one replaces a less learned one.
func TestPSJFBoundsClasses(t *testing.T) {
	p, _ := NewPolicy(Config{Name: "psjf", MaxIdle: 4})
	ps := p.(*psjf)
	for i := range 20 {
		finish(t, p, "p"+string(rune('a'+i)), "class-"+string(rune('a'+i)), time.Second)
	}
	if n := len(ps.classes); n > 4 {
		t.Fatalf("%d classes kept, bound 4", n)
	}
	if ps.classes["class-t"] == nil {
		t.Fatal("the newest class was dropped")
	}
}
