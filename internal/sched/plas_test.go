package sched

import (
	"math"
	"testing"
	"time"
)

// Levels of these tests: [0,10ms) [10ms,20ms) [20ms,∞), the last round robin by 40ms.
func plasCfg(name string) Config {
	return Config{Name: name, Queues: 3, QuantumBase: 10 * ms, QuantumRatio: 2}
}

func TestPLASLevels(t *testing.T) {
	p, err := newPLAS(Config{}, false)
	if err != nil {
		t.Fatal(err)
	}
	pl := p.(*plas)
	want := []time.Duration{2 * time.Second, 8 * time.Second, 32 * time.Second}
	if len(pl.bounds) != len(want) || pl.slice != 128*time.Second {
		t.Fatalf("default bounds %v slice %v; want %v and 128s", pl.bounds, pl.slice, want)
	}
	for i := range want {
		if pl.bounds[i] != want[i] {
			t.Fatalf("default bounds %v, want %v", pl.bounds, want)
		}
	}
	for _, bad := range []Config{{QuantumRatio: 1}, {Queues: -1}, {Beta: -1}} {
		if _, err := newPLAS(bad, false); err == nil {
			t.Errorf("config %+v accepted", bad)
		}
	}
}

// A long call is demoted once it used its level's quantum, and a newcomer program runs
// before it; the program's next call starts at the level its service earned.
func TestPLASDemotesLongCall(t *testing.T) {
	s := newSchedCfg(t, plasCfg("plas"), oneCore(1))
	runTable(t, s, []event{
		{at: 0, op: "submit", id: 1, prog: "A", want: "1@0"},
		{at: 1 * ms, op: "submit", id: 2, prog: "B", want: ""},
		{at: 9 * ms, op: "preempt", wantPrem: "", want: ""},
		// A reached 10ms: demoted to level 1, B (level 0) goes first.
		{at: 10 * ms, op: "preempt", wantPrem: "1", want: "2@0"},
		{at: 12 * ms, op: "submit", id: 3, prog: "C", want: ""},
		// C arrived after A's call yet runs first: C has received nothing.
		{at: 15 * ms, op: "complete", id: 2, want: "3@0"},
		{at: 20 * ms, op: "complete", id: 3, want: "1@0"},
		{at: 25 * ms, op: "complete", id: 1, want: ""}, // A: 15ms of service
		{at: 26 * ms, op: "submit", id: 4, prog: "A", want: "4@0"},
		{at: 27 * ms, op: "submit", id: 5, prog: "D", want: ""},
		{at: 28 * ms, op: "submit", id: 6, prog: "A", want: ""}, // level 1: A's 15ms
		{at: 29 * ms, op: "submit", id: 7, prog: "E", want: ""}, // level 0
		{at: 30 * ms, op: "complete", id: 4, want: "5@0"},
		{at: 31 * ms, op: "complete", id: 5, want: "7@0"}, // before A's older call 6
		{at: 32 * ms, op: "complete", id: 7, want: "6@0"},
	})
}

// A call past its quantum keeps its core while only lower levels wait: stopping it
// would cost a context switch and it would be picked again at once.
func TestPLASNoPointlessPreemption(t *testing.T) {
	s := newSchedCfg(t, plasCfg("plas"), oneCore(1))
	runTable(t, s, []event{
		{at: 0, op: "submit", id: 1, prog: "A", want: "1@0"},
		{at: 30 * ms, op: "complete", id: 1, want: ""}, // A: last level
		{at: 30 * ms, op: "submit", id: 2, prog: "B", want: "2@0"},
		{at: 31 * ms, op: "submit", id: 3, prog: "A", want: ""},
		{at: 45 * ms, op: "preempt", wantPrem: "", want: "", check: func(t *testing.T) {
			if at, ok := s.NextDeadline(); ok {
				t.Fatalf("nothing would go ahead of the running call, yet NextDeadline = %v", at)
			}
		}},
		{at: 46 * ms, op: "submit", id: 4, prog: "C", want: ""},
		// C is level 0: B, 16ms into a 10ms quantum, yields at once.
		{at: 46 * ms, op: "preempt", wantPrem: "2", want: "4@0"},
		{at: 47 * ms, op: "complete", id: 4, want: "2@0"},
		// B (16ms, level 1) is ahead of A (30ms, last level).
		{at: 48 * ms, op: "complete", id: 2, want: "3@0"},
	})
}

// The last level is round robin with the next geometric quantum (40ms here).
func TestPLASLastLevelRoundRobin(t *testing.T) {
	s := newSchedCfg(t, plasCfg("plas"), oneCore(1))
	runTable(t, s, []event{
		{at: 0, op: "submit", id: 1, prog: "A", want: "1@0"},
		{at: 1 * ms, op: "submit", id: 2, prog: "B", want: ""},
		{at: 10 * ms, op: "preempt", wantPrem: "1", want: "2@0"},
		{at: 20 * ms, op: "preempt", wantPrem: "2", want: "1@0"}, // both level 1 now
		{at: 30 * ms, op: "preempt", wantPrem: "1", want: "2@0"}, // A: 20ms, last level
		{at: 40 * ms, op: "preempt", wantPrem: "2", want: "1@0"}, // B: 20ms
		{at: 79 * ms, op: "preempt", wantPrem: "", want: ""},
		{at: 80 * ms, op: "preempt", wantPrem: "1", want: "2@0"},
		{at: 120 * ms, op: "preempt", wantPrem: "2", want: "1@0"},
	})
}

// starvationTable keeps one core busy with a stream of new programs while program A,
// which already received 30ms, waits. Under Beta 2 A's call is promoted once it waited
// 60ms (at 90ms) and runs before newcomers that arrived after it.
func starvationTable(afterPromotion string) []event {
	return []event{
		{at: 0, op: "submit", id: 1, prog: "A", want: "1@0"},
		{at: 0, op: "submit", id: 2, prog: "B", want: ""},
		{at: 30 * ms, op: "complete", id: 1, want: "2@0"},
		{at: 30 * ms, op: "submit", id: 3, prog: "A", want: ""},
		{at: 35 * ms, op: "submit", id: 4, prog: "C", want: ""},
		{at: 40 * ms, op: "complete", id: 2, want: "4@0"},
		{at: 45 * ms, op: "submit", id: 5, prog: "D", want: ""},
		{at: 50 * ms, op: "complete", id: 4, want: "5@0"},
		{at: 55 * ms, op: "submit", id: 6, prog: "E", want: ""},
		{at: 60 * ms, op: "complete", id: 5, want: "6@0"},
		{at: 65 * ms, op: "submit", id: 7, prog: "F", want: ""},
		{at: 70 * ms, op: "complete", id: 6, want: "7@0"},
		{at: 75 * ms, op: "submit", id: 8, prog: "G", want: ""},
		{at: 80 * ms, op: "complete", id: 7, want: "8@0"},
		{at: 85 * ms, op: "submit", id: 9, prog: "H", want: ""},
		{at: 89 * ms, op: "complete", id: 8, want: "9@0"}, // A waited 59ms: not yet
		{at: 95 * ms, op: "submit", id: 10, prog: "I", want: ""},
		{at: 99 * ms, op: "complete", id: 9, want: afterPromotion},
	}
}

func TestPLASAntiStarvation(t *testing.T) {
	cfg := plasCfg("plas")
	cfg.Beta = 2
	runTable(t, newSchedCfg(t, cfg, oneCore(1)), starvationTable("3@0"))

	cfg.Beta = math.Inf(1) // promotion off: A keeps waiting behind every newcomer
	runTable(t, newSchedCfg(t, cfg, oneCore(1)), starvationTable("10@0"))
}

// P runs two 15ms calls side by side, Q one 15ms call. plas charges P 30ms (level 2);
// atlas charges P its critical path, 15ms (level 1, like Q), so P's next call, queued
// first, goes first under atlas and last under plas.
func TestATLASvsPLASOnParallelProgram(t *testing.T) {
	for _, tc := range []struct{ policy, want string }{{"plas", "8@0"}, {"atlas", "7@0"}} {
		t.Run(tc.policy, func(t *testing.T) {
			cfg := plasCfg(tc.policy)
			cfg.Queues = 4 // [0,10) [10,20) [20,40) [40,∞)
			s := newSchedCfg(t, cfg, oneCore(3))
			runTable(t, s, []event{
				{at: 0, op: "submit", id: 1, prog: "P", want: "1@0"},
				{at: 0, op: "submit", id: 2, prog: "P", want: "2@0"},
				{at: 0, op: "submit", id: 3, prog: "Q", want: "3@0"},
				{at: 15 * ms, op: "complete", id: 1, want: ""},
				{at: 15 * ms, op: "complete", id: 2, want: ""},
				{at: 15 * ms, op: "complete", id: 3, want: ""},
				{at: 16 * ms, op: "submit", id: 4, prog: "X", want: "4@0"},
				{at: 16 * ms, op: "submit", id: 5, prog: "Y", want: "5@0"},
				{at: 16 * ms, op: "submit", id: 6, prog: "Z", want: "6@0"},
				{at: 17 * ms, op: "submit", id: 7, prog: "P", want: ""},
				{at: 18 * ms, op: "submit", id: 8, prog: "Q", want: ""},
				{at: 20 * ms, op: "complete", id: 4, want: tc.want},
			})
		})
	}
}

// On a sequential program atlas's critical path is the program's total service.
func TestATLASSequentialProgramMatchesPLAS(t *testing.T) {
	p, _ := newPLAS(plasCfg("atlas"), true)
	a := p.(*plas)
	for i, d := range []time.Duration{3 * ms, 4 * ms, 5 * ms} {
		c := &Call{ID: uint64(i + 1), Program: "P"}
		a.Push(c, 0)
		a.Pick(0, func(*Call) Verdict { return Take })
		c.Service = d
		a.Stopped(c, d, true)
	}
	if got := a.progs[groupKey{name: "P"}]; got.path != 12*ms || got.service != 12*ms {
		t.Fatalf("path %v service %v; want 12ms both", got.path, got.service)
	}
}

// A program with no call for IdleTTL is forgotten: memory stays bounded, and its next
// call starts afresh at the top level.
func TestPLASForgetsIdlePrograms(t *testing.T) {
	cfg := plasCfg("plas")
	cfg.IdleTTL = time.Second
	cfg.MaxIdle = 2
	s := newSchedCfg(t, cfg, oneCore(1))
	pl := s.Policy(LLM).(*plas)
	runTable(t, s, []event{
		{at: 0, op: "submit", id: 1, prog: "A", want: "1@0"},
		{at: 30 * ms, op: "complete", id: 1, want: ""},
		{at: 31 * ms, op: "submit", id: 2, agent: "B", want: "2@0"}, // no program: the agent's
		{at: 32 * ms, op: "complete", id: 2, want: ""},
		{at: 33 * ms, op: "submit", id: 3, want: "3@0"}, // anonymous: forgotten as it ends
		{at: 34 * ms, op: "complete", id: 3, want: "", check: func(t *testing.T) {
			if len(pl.progs) != 2 {
				t.Fatalf("%d programs remembered, want A and B", len(pl.progs))
			}
		}},
		{at: 35 * ms, op: "submit", id: 4, prog: "C", want: "4@0"},
		{at: 36 * ms, op: "complete", id: 4, want: "", check: func(t *testing.T) {
			if _, ok := pl.progs[groupKey{name: "A"}]; ok || len(pl.progs) != 2 {
				t.Fatalf("beyond MaxIdle the oldest idle program (A) goes; have %v", pl.progs)
			}
		}},
		{at: 2 * time.Second, op: "submit", id: 5, prog: "B", want: "5@0", check: func(t *testing.T) {
			if len(pl.progs) != 1 {
				t.Fatalf("after IdleTTL only the active program stays; have %v", pl.progs)
			}
		}},
	})
}
