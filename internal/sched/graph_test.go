package sched

import (
	"math"
	"testing"
	"time"
)

const sec = time.Second

// Two programs of one class, by hand:
//
//	A: call (100 tok) 0–1 s, search 1–3 s, call (150) 3–4 s, end
//	B: call (100) 10–11 s, search 11–15 s, call (180) 15–16 s, run 16–17 s, call (200) 17–18 s, end
func learnTwo(g *Graph) {
	g.CallArrived("A", "c", 100, 0)
	g.CallEnded("A", sec, sec)
	g.ToolStarted("A", "search", sec)
	g.ToolEnded("A", "search", 3*sec)
	g.CallArrived("A", "c", 150, 3*sec)
	g.CallEnded("A", sec, 4*sec)
	g.ProgramEnded("A")

	g.CallArrived("B", "c", 100, 10*sec)
	g.CallEnded("B", sec, 11*sec)
	g.ToolStarted("B", "search", 11*sec)
	g.ToolEnded("B", "search", 15*sec)
	g.CallArrived("B", "c", 180, 15*sec)
	g.CallEnded("B", sec, 16*sec)
	g.ToolStarted("B", "run", 16*sec)
	g.ToolEnded("B", "run", 17*sec)
	g.CallArrived("B", "c", 200, 17*sec)
	g.CallEnded("B", sec, 18*sec)
	g.ProgramEnded("B")
}

func stateOf(t *testing.T, g *Graph, class, state string) GraphState {
	t.Helper()
	for _, c := range g.Snapshot() {
		if c.Class != class {
			continue
		}
		for _, s := range c.States {
			if s.State == state {
				return s
			}
		}
	}
	t.Fatalf("class %q has no state %q: %+v", class, state, g.Snapshot())
	return GraphState{}
}

func TestGraphLearnsBranchesDurationsGrowth(t *testing.T) {
	g := NewGraph()
	learnTwo(g)
	snap := g.Snapshot()
	if len(snap) != 1 || snap[0].Programs != 2 || len(snap[0].States) != 5 {
		t.Fatalf("snapshot %+v, want class c: 2 programs, 5 states", snap)
	}
	first := stateOf(t, g, "c", "llm#0@start")
	if first.Next["tool:search"] != 1 || first.Seen != 2 || first.DurationMS != 1000 {
		t.Errorf("first call: %+v", first)
	}
	// Search took 2 s then 4 s: EMA (3·2 + 4)/4 = 2.5 s.
	if s := stateOf(t, g, "c", "tool:search"); s.DurationMS != 2500 || s.Next["llm#1@search"] != 1 {
		t.Errorf("search: %+v", s)
	}
	// After search, A ended and B ran a tool: ½ each; growth 50 then 80: (3·50 + 80)/4.
	second := stateOf(t, g, "c", "llm#1@search")
	if second.Next["end"] != 0.5 || second.Next["tool:run"] != 0.5 || second.Growth != 57.5 {
		t.Errorf("second call: %+v", second)
	}
	if s := stateOf(t, g, "c", "llm#2@run"); s.Next["end"] != 1 || s.Growth != 20 {
		t.Errorf("third call: %+v", s)
	}
}

func TestGraphPredictsNextReuse(t *testing.T) {
	g := NewGraph()
	learnTwo(g)
	g.CallArrived("C", "c", 100, 100*sec)
	if _, ok := g.Predict("C", 100*sec); ok {
		t.Error("predicted a program whose call runs")
	}
	// During its first call: search follows, 2.5 s, and it never ends there.
	if gap, pEnd, ok := g.AfterCall("C"); !ok || gap != 2500*time.Millisecond || pEnd != 0 {
		t.Errorf("after first call: %v %v %v", gap, pEnd, ok)
	}
	g.CallEnded("C", sec, 101*sec)
	if r, ok := g.Predict("C", 101*sec); !ok || r.At != 103500*time.Millisecond || r.PEnd != 0 {
		t.Errorf("between calls: %+v %v", r, ok)
	}
	g.ToolStarted("C", "search", 101200*time.Millisecond)
	if r, ok := g.Predict("C", 102*sec); !ok || r.At != 103700*time.Millisecond {
		t.Errorf("in search: %+v %v", r, ok)
	}
	// Overdue: presumed back now.
	if r, _ := g.Predict("C", 105*sec); r.At != 105*sec {
		t.Errorf("overdue: %+v", r)
	}
	g.ToolEnded("C", "search", 103*sec)
	g.CallArrived("C", "c", 150, 104*sec)
	g.CallEnded("C", sec, 105*sec)
	// After the second call: run (1 s) or end, ½ each: the horizon doubles the gap.
	r, ok := g.Predict("C", 105*sec)
	if !ok || r.At != 106*sec || r.PEnd != 0.5 || r.Horizon(105*sec) != 107*sec {
		t.Errorf("after second call: %+v %v horizon %v", r, ok, r.Horizon(105*sec))
	}
	// Errors: B's call came 2 s after its prediction (13 s), C's 0.3 s after (103.7 s).
	if mae, n := g.Accuracy(); n != 2 || mae != 1150*time.Millisecond {
		t.Errorf("accuracy %v over %d, want 1.15s over 2", mae, n)
	}
	if h := (Reuse{At: 5 * sec, PEnd: 1}).Horizon(0); h != time.Hour {
		t.Errorf("certain end: horizon %v", h)
	}
}

func TestGraphBoundsClassesStatesPrograms(t *testing.T) {
	g := NewGraph()
	g.MaxClasses, g.MaxStates, g.Idle = 2, 3, time.Minute
	for i, c := range []string{"x", "y", "z"} {
		g.CallArrived(c, c, 10, time.Duration(i)*sec)
	}
	if len(g.classes) != 2 || g.classes["x"] != nil {
		t.Errorf("classes %v: want y and z, x least recently used", len(g.classes))
	}
	for i := 0; i < 10; i++ {
		g.CallEnded("z", sec, 5*sec)
		g.ToolStarted("z", string(rune('a'+i)), 5*sec)
		g.ToolEnded("z", string(rune('a'+i)), 6*sec)
		g.CallArrived("z", "z", 10, 6*sec)
	}
	if n := len(g.classes["z"].states); n != 3 {
		t.Errorf("class z has %d states, want the bound 3", n)
	}
	g.CallEnded("y", sec, 3*sec)
	g.Forget(time.Minute + 3*sec)
	if g.progs["y"] != nil || g.progs["z"] == nil {
		t.Errorf("forget: y silent a minute should go, z (call running) stay")
	}
	if math.IsNaN(stateOf(t, g, "z", "llm#0@start").Next["tool:a"]) {
		t.Error("NaN probability")
	}
}
