package sched

import (
	"testing"
	"time"
)

// Under memory pressure the working set suspends, with Graph, the program whose next
// LLM call the graph expects furthest ahead; without it, the newest admitted.
//
// Class k has learned that tool slow takes 60 s and fast 1 s. Admitted in order a, b, c
// (300 + 300 + 150 of 1000; suspension past 950), a runs slow and b fast; c's context
// grows to 400 (1000 > 950). One suspension makes room: c (newest) without the graph,
// a (back in 60 s, not 1 s) with it.
func TestWorkingSetGraphSuspendsFurthestReuse(t *testing.T) {
	for _, tc := range []struct {
		graph bool
		want  string // dispatched once c's context grew
	}{{false, ""}, {true, "8"}} {
		s := newSched(t, "fifo", 0, CoreSpec{ID: 0, Module: LLM, MaxInflight: 100, MaxTokens: 1000})
		s.EnableWorkingSet(WorkingSet{High: 0.8, Suspend: 0.95, Idle: time.Hour, Graph: tc.graph})
		now := time.Duration(0)
		id := uint64(0)
		call := func(prog string, tokens int) *Call {
			id++
			c := &Call{ID: id, Module: LLM, Program: prog, Class: "k", Tokens: tokens, InputTokens: tokens}
			mustSubmit(t, s, c, now)
			return c
		}
		for _, tool := range []struct {
			prog, name string
			d          time.Duration
		}{{"t1", "slow", 60 * sec}, {"t2", "fast", sec}} {
			c := call(tool.prog, 10)
			s.Dispatch(now)
			s.Complete(c, now)
			s.ToolStarted(tool.prog, tool.name, 0, now)
			now += tool.d
			s.ToolEnded(tool.prog, tool.name, now)
			c = call(tool.prog, 20)
			s.Dispatch(now)
			s.Complete(c, now)
			s.EndProgram(tool.prog)
		}
		a, b, c := call("a", 300), call("b", 300), call("c", 150)
		if got := ids(s.Dispatch(now)); got != "5 6 7" {
			t.Fatalf("graph %v: admitted %q", tc.graph, got)
		}
		s.Complete(a, now)
		s.Complete(b, now)
		s.ToolStarted("a", "slow", 0, now)
		s.ToolStarted("b", "fast", 0, now)
		now += 100 * time.Millisecond
		s.Complete(c, now)
		call("c", 400) // id 8: c's next call; 300 + 300 + 400 > 950
		if got := ids(s.Dispatch(now)); got != tc.want {
			t.Errorf("graph %v: dispatched %q, want %q", tc.graph, got, tc.want)
		}
		for p, active := range map[string]bool{"a": !tc.graph, "b": true, "c": tc.graph} {
			if got := s.Admitted(&Call{Module: LLM, Program: p}); got != active {
				t.Errorf("graph %v: %s active %v, want %v", tc.graph, p, got, active)
			}
		}
		if _, _, _, n := s.WorkingSetStats(); n != 1 {
			t.Errorf("graph %v: %d suspensions, want 1", tc.graph, n)
		}
	}
}
