package sched

// Fair-share admission (WorkingSet.FairShare): the working set is the resource that
// degrades past capacity, so it is what an agent's share is counted in. Every agent with
// a program in the set or waiting for it is entitled to an equal share of the set's
// tokens. While an agent below its share has a program waiting, no program of an agent
// at or past its share is admitted: the room that frees goes to the agent below. When no
// agent below its share waits, anyone may take the room, so the set stays full.
//
// Ordering calls fairly (fair, VTC) does not isolate a light agent from a heavy one past
// capacity: the heavy agent's programs fill the set and the light agent's program waits
// for admission behind them whatever order the calls run in (docs/bench.md, "Isolation
// and fairness"). This is SAGA's Agent Fair Share applied where the contention is.

// fairState is the fair-share bookkeeping of a working set, kept only when it is on.
type fairState struct {
	held   map[string]int  // tokens of each agent's active programs
	share  int             // tokens each present agent is entitled to, this round
	hungry map[string]bool // agents below their share with a program waiting, this round
}

// hold changes the active tokens by delta on p's behalf.
func (w *workingSet) hold(p *wsProgram, delta int) {
	w.used += delta
	if w.fair != nil {
		w.fair.held[p.agent] += delta
		if w.fair.held[p.agent] == 0 {
			delete(w.fair.held, p.agent)
		}
	}
}

// fairRound computes the shares for one dispatch round: the admission limit split over
// the agents present (with a program active or waiting), and who is below its share and
// waiting.
func (w *workingSet) fairRound(limit int) {
	f := w.fair
	if f == nil {
		return
	}
	present := map[string]bool{}
	clear(f.hungry)
	for _, p := range w.progs {
		if p.active || p.waiting {
			present[p.agent] = true
		}
	}
	if len(present) == 0 {
		return
	}
	f.share = limit / len(present)
	for _, p := range w.progs {
		if p.waiting && f.held[p.agent] < f.share {
			f.hungry[p.agent] = true
		}
	}
}

// overShare reports whether p must wait because its agent holds its share while an
// agent below its share waits.
func (w *workingSet) overShare(p *wsProgram) bool {
	f := w.fair
	if f == nil || f.hungry[p.agent] {
		return false
	}
	return len(f.hungry) > 0 && f.held[p.agent] >= f.share
}

// admitted notes that p's agent took more of the set this round.
func (w *workingSet) admittedFair(p *wsProgram) {
	if f := w.fair; f != nil && f.held[p.agent] >= f.share {
		delete(f.hungry, p.agent)
	}
}

// mayReserve reports whether p may hold the starvation reservation: not while its agent
// is at its share and an agent below it waits, or the bound would hand the room back to
// the agent that fills the set.
func (w *workingSet) mayReserve(p *wsProgram) bool {
	return !w.overShare(p)
}
