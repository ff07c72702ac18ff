package sched

import "testing"

// plas passes its levels down: a call demoted for its program's service ranks below a
// newcomer's.
func TestPLASRanksByLevel(t *testing.T) {
	s := newSched(t, "plas", 10*ms, oneCore(1))
	old := &Call{ID: 1, Module: LLM, Program: "old"}
	mustSubmit(t, s, old, 0)
	s.Dispatch(0)
	mustSubmit(t, s, &Call{ID: 2, Module: LLM, Program: "new"}, ms)
	for _, c := range s.Preemptions(10 * ms) {
		s.Requeue(c, 10*ms)
	}
	got := s.Dispatch(10 * ms)
	if len(got) != 1 || got[0].Call.ID != 2 {
		t.Fatalf("dispatched %v, want the newcomer", got)
	}
	r := s.Policy(LLM).(Ranker)
	if r.Rank(old) <= r.Rank(got[0].Call) {
		t.Fatalf("demoted call rank %d, newcomer %d: the demoted one must rank lower (larger)", r.Rank(old), r.Rank(got[0].Call))
	}
	p := &priority{}
	if p.Rank(&Call{Priority: 5}) >= p.Rank(&Call{Priority: 1}) {
		t.Fatal("priority 5 must rank before priority 1")
	}
}
