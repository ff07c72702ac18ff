package metrics

import (
	"testing"
	"time"
)

func TestTCTAttainment(t *testing.T) {
	s := time.Second
	progs := []Program{
		{Agent: "a", Arrival: 0, Finish: 10 * s, Solo: 5 * s},              // 10 ≤ 2×5: met
		{Agent: "a", Arrival: 5 * s, Finish: 16 * s, Solo: 5 * s},          // 11 > 10: missed
		{Agent: "b", Arrival: 0, Finish: 4 * s, Solo: 2 * s},               // 4 ≤ 4: met (the bound is inclusive)
		{Agent: "b", Arrival: 0, Finish: 1 * s, Solo: 2 * s, Failed: true}, // failed: missed
		{Agent: "b", Arrival: 0, Finish: 1 * s, Solo: 4 * s},               // met
		{Agent: "c", Arrival: 0, Finish: 1 * s},                            // no solo time, no objective: not counted
	}
	a := TCTAttainment(progs, func(p Program) time.Duration { return 2 * p.Solo })
	if a.Met != 3 || a.Total != 5 || a.Overall != 0.6 {
		t.Errorf("met %d of %d (%v), want 3 of 5 (0.6)", a.Met, a.Total, a.Overall)
	}
	if a.PerAgent["a"] != 0.5 || a.PerAgent["b"] != 2.0/3 || len(a.PerAgent) != 2 {
		t.Errorf("per agent %v, want a 0.5, b 2/3", a.PerAgent)
	}
	if a.Worst != "a" || a.WorstShare != 0.5 {
		t.Errorf("worst %s %v, want a 0.5", a.Worst, a.WorstShare)
	}
}

func TestTTFTAttainment(t *testing.T) {
	ms := time.Millisecond
	calls := []Call{
		{Agent: "a", TTFT: 100 * ms},
		{Agent: "a", TTFT: 300 * ms},
		{Agent: "b", TTFT: 200 * ms},
		{Agent: "b", TTFT: 50 * ms, Failed: true},
	}
	a := TTFTAttainment(calls, 200*ms)
	if a.Met != 2 || a.Total != 4 || a.Overall != 0.5 || a.PerAgent["a"] != 0.5 || a.PerAgent["b"] != 0.5 {
		t.Errorf("got %+v, want 2 of 4, each agent 0.5", a)
	}
	if a.Worst != "a" {
		t.Errorf("worst %s, want a (ties go to the first by name)", a.Worst)
	}
	if e := TTFTAttainment(nil, ms); e.Total != 0 || e.Overall != 0 {
		t.Errorf("no calls: %+v", e)
	}
}
