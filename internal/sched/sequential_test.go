package sched

import (
	"testing"
	"time"
)

// One program at a time, in first-arrival order, even with a slot free; the head
// program keeps the cores for Linger between its calls (its tool time).
func TestSequentialOrder(t *testing.T) {
	s := newSchedCfg(t, Config{Name: "sequential", Linger: 100 * ms}, oneCore(2))
	deadline := func(want time.Duration) func(*testing.T) {
		return func(t *testing.T) {
			if at, ok := s.NextDeadline(); !ok || at != want {
				t.Fatalf("NextDeadline = %v, %v; want %v, the head's linger ending", at, ok, want)
			}
		}
	}
	runTable(t, s, []event{
		{at: 0, op: "submit", id: 1, prog: "A", want: "1@0"},
		{at: 1 * ms, op: "submit", id: 2, prog: "B", want: ""}, // a slot is free; B waits
		{at: 2 * ms, op: "submit", id: 3, prog: "A", want: "3@0"},
		{at: 10 * ms, op: "complete", id: 1, want: ""},
		{at: 20 * ms, op: "complete", id: 3, want: "", check: deadline(120 * ms)},
		{at: 50 * ms, op: "submit", id: 4, prog: "A", want: "4@0"}, // back from its tool
		{at: 60 * ms, op: "complete", id: 4, want: ""},
		{at: 159 * ms, op: "tick", want: ""},
		{at: 160 * ms, op: "tick", want: "2@0"},
		{at: 161 * ms, op: "submit", id: 5, prog: "A", want: ""}, // B holds now
		{at: 162 * ms, op: "submit", id: 6, prog: "C", want: ""},
		{at: 170 * ms, op: "complete", id: 2, want: ""},
		// A first arrived before C, so it goes first.
		{at: 270 * ms, op: "tick", want: "5@0"},
		{at: 280 * ms, op: "complete", id: 5, want: ""},
		{at: 380 * ms, op: "tick", want: "6@0"},
	})
}

// A call with neither program nor agent is its own program and ends with itself.
func TestSequentialAnonymousCallsDoNotLinger(t *testing.T) {
	s := newSchedCfg(t, Config{Name: "sequential"}, oneCore(2))
	runTable(t, s, []event{
		{at: 0, op: "submit", id: 1, want: "1@0"},
		{at: 0, op: "submit", id: 2, want: ""},
		{at: 1 * ms, op: "complete", id: 1, want: "2@0"},
	})
	if _, ok := s.NextDeadline(); ok {
		t.Fatal("an anonymous call holds the cores after it ended")
	}
}

// hybrid: agents take turns in first-arrival order; inside the agent at the head, its
// programs' calls run side by side, FIFO.
func TestHybridOrder(t *testing.T) {
	table := func(third string) []event {
		return []event{
			{at: 0, op: "submit", id: 1, agent: "X", prog: "p1", want: "1@0"},
			{at: 1 * ms, op: "submit", id: 2, agent: "Y", prog: "q1", want: ""},
			{at: 2 * ms, op: "submit", id: 3, agent: "X", prog: "p2", want: third},
		}
	}
	runTable(t, newSchedCfg(t, Config{Name: "sequential", Linger: 100 * ms}, oneCore(2)), table(""))

	s := newSchedCfg(t, Config{Name: "hybrid", Linger: 100 * ms}, oneCore(2))
	runTable(t, s, append(table("3@0"),
		event{at: 3 * ms, op: "submit", id: 4, agent: "X", prog: "p1", want: ""},
		event{at: 4 * ms, op: "submit", id: 5, agent: "X", prog: "p3", want: ""},
		event{at: 10 * ms, op: "complete", id: 1, want: "4@0"},
		event{at: 11 * ms, op: "complete", id: 3, want: "5@0"},
		event{at: 20 * ms, op: "complete", id: 4, want: ""},
		event{at: 30 * ms, op: "complete", id: 5, want: ""},
		event{at: 130 * ms, op: "tick", want: "2@0"},
	))
}

// With Linger negative the head lets go as soon as it has nothing in flight.
func TestSequentialNoLinger(t *testing.T) {
	s := newSchedCfg(t, Config{Name: "sequential", Linger: -1}, oneCore(1))
	runTable(t, s, []event{
		{at: 0, op: "submit", id: 1, prog: "A", want: "1@0"},
		{at: 0, op: "submit", id: 2, prog: "B", want: ""},
		{at: 1 * ms, op: "complete", id: 1, want: "2@0"},
	})
}
