package sched

import (
	"maps"
	"math"
	"slices"
	"time"
)

// Fair-share admission (WorkingSet.FairShare): the working set is the resource that
// degrades past capacity, so it is what an agent's share is counted in. Every agent with
// a program in the set or waiting for it is entitled to a share of the set's tokens in
// proportion to its weight (WorkingSet.Weights; equal shares by default). An agent is
// light while it has recently sent fewer programs than its weight entitles it to
// (WorkingSet.FairLight), heavy otherwise. The rules restrain heavy agents only:
//
//   - while a light agent below its share has a program waiting, no program of a heavy
//     agent at or past its share is admitted: the room that frees goes to the light one;
//   - a heavy agent does not go past its share into the room the light agents leave
//     unused of theirs (unless FairLend), so a light agent's next program finds room at
//     once instead of waiting for a heavy agent's to end;
//   - a light agent's program that still does not fit suspends programs of heavy agents
//     past their share that are between calls (waiting on a tool) until it does.
//
// Light agents are admitted as without fair share, past their share if need be: they
// send less than it over time, and holding them to it at every instant made them wait
// for each other (in aios bench, 9.5 s of admission wait per light program against
// 0.15 s without the heavy agent). Suspending the heavy agent's idle programs cut the
// rest of that wait (3.7 s) and took the light agents from 1.52-1.63× their slowdown
// alone to 1.41-1.45× (docs/bench.md). Agents sending alike are all heavy, and then no rule
// binds: admission is as without fair share, decision for decision.
//
// Ordering calls fairly (fair, VTC) does not isolate a light agent from a heavy one past
// capacity: the heavy agent's programs fill the set and the light agent's program waits
// for admission behind them whatever order the calls run in, and the heavy agent's calls
// slow the engine's steps (docs/bench.md, "Isolation and fairness"). This is SAGA's
// Agent Fair Share applied where the contention is.

// fairState is the fair-share bookkeeping of a working set, kept only when it is on.
type fairState struct {
	held     map[string]int      // tokens of each agent's active programs
	demand   map[string]*decayed // each agent's recent program arrivals
	total    decayed             // all agents' together, kept as one count so that no sum depends on map order
	light    map[string]bool     // agents whose recent arrivals are below their share, this round
	share    map[string]int      // tokens each present agent is entitled to, this round
	hungry   map[string]bool     // light agents below their share with a program waiting, this round
	unused   int                 // summed share that present light agents do not hold, this round
	weights  map[string]float64  // WorkingSet.Weights
	halfLife time.Duration       // WorkingSet.FairHalfLife
	lightAt  float64             // WorkingSet.FairLight
}

const (
	// defaultFairHalfLife is how fast an agent's record of program arrivals forgets:
	// long enough to hold a few dozen programs of an agent sending a few a minute, so
	// one burst does not make a light agent heavy.
	defaultFairHalfLife = 5 * time.Minute
	// defaultFairLight: an agent is light while its recent arrivals are below this
	// fraction of its share of them (the mean over agents, with equal weights). Agents
	// sending alike sit at the mean and, with the noise of arrivals, would flip across
	// it; below 0.8 they stay heavy, so a workload of equal agents keeps no room back,
	// while an agent sending a quarter of the heavy one's (aios bench --heavy 4: 1/11 of
	// programs against a mean of 1/8) is light.
	defaultFairLight = 0.8
)

// decayed is a count that halves every half-life.
type decayed struct {
	v  float64
	at time.Duration
}

func (d *decayed) valueAt(now, halfLife time.Duration) float64 {
	if now > d.at {
		d.v *= math.Exp2(-float64(now-d.at) / float64(halfLife))
		d.at = now
	}
	return d.v
}

func newFairState(cfg WorkingSet) *fairState {
	return &fairState{held: map[string]int{}, demand: map[string]*decayed{}, light: map[string]bool{},
		share: map[string]int{}, hungry: map[string]bool{}, weights: cfg.Weights,
		halfLife: cfg.FairHalfLife, lightAt: cfg.FairLight}
}

// weight is agent's weight (1 unless WorkingSet.Weights says otherwise).
func (f *fairState) weight(agent string) float64 {
	if w, ok := f.weights[agent]; ok {
		return w
	}
	return 1
}

// unusedOf is what of its share agent, holding held, leaves unused.
func (f *fairState) unusedOf(agent string, held int) int { return max(f.share[agent]-held, 0) }

// arrived records a new program of agent.
func (f *fairState) arrived(agent string, now time.Duration) {
	d := f.demand[agent]
	if d == nil {
		d = &decayed{at: now}
		f.demand[agent] = d
	}
	d.valueAt(now, f.halfLife)
	d.v++
	f.total.valueAt(now, f.halfLife)
	f.total.v++
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
// the agents present (with a program active or waiting) by weight, who is below its
// share and waiting, who is light, and how much of their shares the light agents leave
// unused.
func (w *workingSet) fairRound(limit int, now time.Duration) {
	f := w.fair
	if f == nil {
		return
	}
	clear(f.hungry)
	clear(f.light)
	clear(f.share)
	f.unused = 0
	for a, d := range f.demand {
		if d.valueAt(now, f.halfLife) < 0.01 {
			delete(f.demand, a) // gone for many half-lives
		}
	}
	// Sums over maps are taken in sorted order, so that rounding cannot make two runs
	// of the same arrivals decide differently.
	known := slices.Sorted(maps.Keys(f.demand))
	var weights float64
	for _, a := range known {
		weights += f.weight(a)
	}
	total := f.total.valueAt(now, f.halfLife)
	for _, a := range known {
		if f.demand[a].v < f.lightAt*total*f.weight(a)/weights {
			f.light[a] = true
		}
	}
	seen := map[string]bool{}
	for _, p := range w.progs {
		if p.active || p.waiting {
			seen[p.agent] = true
		}
	}
	if len(seen) == 0 {
		return
	}
	present := slices.Sorted(maps.Keys(seen))
	weights = 0
	for _, a := range present {
		weights += f.weight(a)
	}
	for _, a := range present {
		f.share[a] = int(float64(limit) * f.weight(a) / weights)
		if f.light[a] {
			f.unused += f.unusedOf(a, f.held[a])
		}
	}
	for _, p := range w.progs {
		if p.waiting && f.light[p.agent] && f.held[p.agent] < f.share[p.agent] {
			f.hungry[p.agent] = true
		}
	}
}

// overShare reports whether p must wait because its agent is heavy and holds its share
// while a light agent below its share waits.
func (w *workingSet) overShare(p *wsProgram) bool {
	f := w.fair
	if f == nil || f.light[p.agent] {
		return false
	}
	return len(f.hungry) > 0 && f.held[p.agent] >= f.share[p.agent]
}

// othersUnused is the unused share of the light agents other than agent.
func (f *fairState) othersUnused(agent string) int {
	if f.light[agent] {
		return f.unused - f.unusedOf(agent, f.held[agent])
	}
	return f.unused
}

// intoReserve reports whether admitting p would take its heavy agent past its share into
// the room kept for the light agents' unused shares. An agent holding nothing may always
// bring one program, or a program larger than a share would never run. With FairLend no
// room is kept.
func (w *workingSet) intoReserve(p *wsProgram, limit int) bool {
	f := w.fair
	if f == nil || w.cfg.FairLend || f.light[p.agent] {
		return false
	}
	held := f.held[p.agent]
	if held == 0 || held+p.tokens <= f.share[p.agent] {
		return false
	}
	return w.used+p.tokens+f.othersUnused(p.agent) > limit
}

// admittedFair notes that p's agent, holding before what it held before p's admission,
// took more of the set this round.
func (w *workingSet) admittedFair(p *wsProgram, before int) {
	f := w.fair
	if f == nil {
		return
	}
	if f.light[p.agent] {
		f.unused -= f.unusedOf(p.agent, before) - f.unusedOf(p.agent, f.held[p.agent])
	}
	if f.held[p.agent] >= f.share[p.agent] {
		delete(f.hungry, p.agent)
	}
}

// mayReserve reports whether p may hold the starvation reservation (WorkingSet.Beta):
// not while its agent holds its share and another agent waits below its own or a light
// agent leaves some of its own unused, or the bound would hand the room back to the
// agent that fills the set. Within an agent's share the bound holds as before.
func (w *workingSet) mayReserve(p *wsProgram) bool {
	f := w.fair
	if f == nil || f.held[p.agent] < f.share[p.agent] {
		return true
	}
	return len(f.hungry) == 0 && (w.cfg.FairLend || f.othersUnused(p.agent) == 0)
}

// heldBy is what p's agent holds of the set (0 without fair share).
func (w *workingSet) heldBy(p *wsProgram) int {
	if w.fair == nil {
		return 0
	}
	return w.fair.held[p.agent]
}

// evictHeavy makes room for a light agent's program that does not fit by suspending
// programs of heavy agents past their share that are between calls (waiting on a tool),
// in makeRoom's order; their next calls wait to be admitted again, and may find their
// prefix evicted: the heavy agent pays for the room it took.
func (w *workingSet) evictHeavy(p *wsProgram, limit int, now time.Duration) {
	f := w.fair
	if f == nil || !f.light[p.agent] {
		return
	}
	w.suspendFor(p, limit, now, func(q *wsProgram) bool {
		return !f.light[q.agent] && f.held[q.agent] > f.share[q.agent]
	})
}
