package sched

import "testing"

func twoCores(t *testing.T, mode Routing) *Scheduler {
	t.Helper()
	s := newSched(t, "fifo", 0,
		CoreSpec{ID: 0, Module: LLM, MaxInflight: 4},
		CoreSpec{ID: 1, Module: LLM, MaxInflight: 4})
	if err := s.SetRouting(RoutingConfig{Mode: mode}); err != nil {
		t.Fatal(err)
	}
	return s
}

func TestRoundRobinRouting(t *testing.T) {
	s := twoCores(t, RoundRobin)
	runTable(t, s, []event{
		{at: 0, op: "submit", id: 1, want: "1@0"},
		{at: 0, op: "submit", id: 2, want: "2@1"},
		{at: 0, op: "submit", id: 3, want: "3@0"},
		{at: 0, op: "complete", id: 1, want: ""},
		{at: 0, op: "submit", id: 4, want: "4@1"}, // in turn, though core 0 is now lighter
	})
}

func TestAffinityPinsLongContexts(t *testing.T) {
	s := twoCores(t, Affinity)
	long := func(id uint64, prog string) *Call {
		return &Call{ID: id, Module: LLM, Program: prog, Tokens: 5000}
	}
	mustSubmit(t, s, long(1, "p"), 0)
	mustSubmit(t, s, &Call{ID: 2, Module: LLM, Program: "q", Tokens: 5000}, 0)
	first := s.Dispatch(0)
	if len(first) != 2 || first[0].Core == first[1].Core {
		t.Fatalf("first calls: %v", first)
	}
	pCore := first[0].Core
	s.Complete(first[0].Call, ms)
	s.Complete(first[1].Call, ms)
	// Load the other core less: p's next long call still goes home.
	mustSubmit(t, s, long(3, "p"), 2*ms)
	if got := s.Dispatch(2 * ms); len(got) != 1 || got[0].Core != pCore {
		t.Fatalf("p's second call went to %v, want core %d", got, pCore)
	}
	// A short call of p is not pinned.
	mustSubmit(t, s, &Call{ID: 4, Module: LLM, Program: "p", Tokens: 100}, 3*ms)
	if got := s.Dispatch(3 * ms); len(got) != 1 || got[0].Core == pCore {
		t.Fatalf("short call: %v, want the less loaded core", got)
	}
}

func TestAffinityIdleCoreSteals(t *testing.T) {
	s := newSched(t, "fifo", 0,
		CoreSpec{ID: 0, Module: LLM, MaxInflight: 1},
		CoreSpec{ID: 1, Module: LLM, MaxInflight: 1})
	_ = s.SetRouting(RoutingConfig{Mode: Affinity})
	mustSubmit(t, s, &Call{ID: 1, Module: LLM, Program: "p", Tokens: 5000}, 0)
	s.Dispatch(0) // p pinned to core 0
	mustSubmit(t, s, &Call{ID: 2, Module: LLM, Program: "p", Tokens: 5000}, ms)
	if got := s.Dispatch(ms); len(got) != 1 || got[0].Core != 1 {
		t.Fatalf("core 0 busy, core 1 idle: %v; want the idle core to take it", got)
	}
}

func TestCacheAwareFollowsPrefixes(t *testing.T) {
	s := twoCores(t, CacheAware)
	a := []uint64{1, 2, 3, 4}
	b := []uint64{9, 8, 7, 6}
	mustSubmit(t, s, &Call{ID: 1, Module: LLM, Prefix: a}, 0)
	mustSubmit(t, s, &Call{ID: 2, Module: LLM, Prefix: b}, 0)
	got := s.Dispatch(0)
	aCore := got[0].Core
	// Continuations of a go where a's prefix is cached, even when that core is busier.
	for i := uint64(3); i < 6; i++ {
		mustSubmit(t, s, &Call{ID: i, Module: LLM, Prefix: append(append([]uint64{}, a...), 100+i)}, ms)
		if got := s.Dispatch(ms); len(got) != 1 || got[0].Core != aCore {
			t.Fatalf("continuation %d went to %v, want core %d", i, got, aCore)
		}
	}
	// A prompt matching nothing goes least-loaded.
	mustSubmit(t, s, &Call{ID: 7, Module: LLM, Prefix: []uint64{42}}, 2*ms)
	if got := s.Dispatch(2 * ms); len(got) != 1 || got[0].Core == aCore {
		t.Fatalf("unmatched call: %v", got)
	}
	if err := s.SetRouting(RoutingConfig{Mode: "random"}); err == nil {
		t.Fatal("unknown routing accepted")
	}
}

func TestPrefixTreeForgetsLeastRecent(t *testing.T) {
	tr := prefixTree{max: 3}
	tr.insert([]uint64{1, 2})
	tr.insert([]uint64{5, 6})
	if got := tr.match([]uint64{1, 2}); got != 0 {
		t.Fatalf("match of a prefix whose first block was forgotten: %d, want 0", got)
	}
	if got := tr.match([]uint64{5, 6}); got != 2 {
		t.Fatalf("match of the newest prefix: %d, want 2", got)
	}
}

func TestHeldCoreTakesNothingNew(t *testing.T) {
	s := twoCores(t, LeastLoaded)
	s.SetHeld(0, true)
	runTable(t, s, []event{
		{at: 0, op: "submit", id: 1, want: "1@1"},
		{at: 0, op: "submit", id: 2, want: "2@1"},
	})
	s.SetHeld(1, true)
	mustSubmit(t, s, &Call{ID: 3, Module: LLM}, ms)
	if got := s.Dispatch(ms); len(got) != 0 {
		t.Fatalf("both engines saturated, yet dispatched %v", got)
	}
	s.SetHeld(0, false)
	if got := s.Dispatch(2 * ms); len(got) != 1 || got[0].Core != 0 {
		t.Fatalf("after core 0 drained: %v", got)
	}
}

// A configuration naming no routing gets affinity: a long context's next call goes back
// to its program's core even when the other core is lighter.
func TestDefaultRoutingIsAffinity(t *testing.T) {
	s := twoCores(t, "")
	mustSubmit(t, s, &Call{ID: 1, Module: LLM, Program: "p", Tokens: 5000}, 0)
	first := s.Dispatch(0)
	if len(first) != 1 {
		t.Fatalf("first call: %v", first)
	}
	pCore := first[0].Core
	s.Complete(first[0].Call, ms)
	// A short call of another program goes least-loaded: with both cores idle, to the
	// first, p's. Least-loaded routing would now send p's next call to the other core.
	mustSubmit(t, s, &Call{ID: 2, Module: LLM, Program: "q", Tokens: 100}, ms)
	if got := s.Dispatch(ms); len(got) != 1 || got[0].Core != pCore {
		t.Fatalf("short call went to %v, want core %d", got, pCore)
	}
	mustSubmit(t, s, &Call{ID: 3, Module: LLM, Program: "p", Tokens: 6000}, 2*ms)
	if got := s.Dispatch(2 * ms); len(got) != 1 || got[0].Core != pCore {
		t.Fatalf("p's next call went to %v, want its core %d", got, pCore)
	}
}
