package sched

import (
	"math"
	"sort"
	"time"
)

// WorkingSet is program-level admission: Denning's load control applied to the KV cache.
// Only programs whose summed contexts fit within a high-water fraction of the engines'
// KV capacity are active; calls of other programs wait in the kernel, in policy order.
//
// Admit whole programs, not calls: holding a program's next call while it is mid-task
// lengthens its gaps, grows the active set and causes the thrash this prevents. Between
// an active program's calls (while it waits on a tool) its prefix stays cached because
// the programs sharing the engine all fit.
type WorkingSet struct {
	// Capacity is the KV capacity in tokens the active contexts share (0: the sum of the
	// module's cores' MaxTokens).
	Capacity int
	// High is the fraction of Capacity new programs are admitted up to (default 0.9,
	// or 1.2 with Tier). Contexts are summed as if nothing were shared, while programs
	// of one kind share a cached system prompt, so the sum overstates the cache in use;
	// 0.8 bound below the direct arm's capacity in aios bench, 0.9 did not.
	High float64
	// Suspend is the fraction past which, as active contexts grow, the newest active
	// programs are suspended: their running calls finish, their next calls wait to be
	// admitted again (default 1.0, or 1.3 with Tier).
	Suspend float64
	// Tier says the engines back their KV cache with a CPU offload tier, which changes
	// the default marks: what overcommitting the GPU evicts is then copied back at
	// PCIe speed instead of recomputed, and in aios bench marks of 1.2 / 1.3 beat 0.9 /
	// 1.0 on every run with a tier (mean TCT 5–10% lower, p99 6–9%; docs/bench.md).
	Tier bool
	// Idle is how long an active program with no call queued or running stays active
	// before it is presumed finished (default 60s), for owners that do not call
	// EndProgram.
	Idle time.Duration
	// Beta bounds how long a program waits to be admitted relative to the engine time
	// it has received, as PLAS's β bounds its queues (default 2, PLAS's own; +Inf turns
	// it off). Programs that fit are admitted past one that does not (keeping order
	// would idle the cache), but once a waiting program's admission wait reaches Beta ×
	// its service it is starving, and the starving program with the highest ratio
	// holds a reservation: no other program is admitted before it, so it gets in as
	// soon as enough active contexts leave, and no stream of smaller programs can
	// overtake it for ever.
	Beta float64
	// MinService is the service a program that has received less is charged with in
	// that ratio (default 1s), so a new program may be passed for Beta × MinService
	// before it holds the reservation.
	MinService time.Duration
	// Evict makes the bound hard: the reserved program does not wait for active ones
	// to end, but suspends those between calls (waiting on a tool), smallest context
	// first, until it fits. Their next calls wait to be admitted again and may find
	// their prefix evicted. Off by default: in aios bench at 1.2× load it held wait ÷
	// service at Beta but cost p99 TCT and capacity (docs/bench.md).
	Evict bool
	// Graph chooses whom to suspend by the execution graph's prediction (Scheduler.Graph):
	// the program whose next LLM call is expected furthest ahead goes first, as
	// Bélády's MIN evicts the block used furthest ahead. Programs with no prediction
	// come after, in the order used without it.
	Graph bool
	// Swap moves contexts through the engines' CPU KV tier instead of leaving them to
	// be evicted and recomputed (swap.go). Owners refuse it where engines have no tier.
	Swap bool
	// SwapAfter is the shortest expected tool call a program is swapped out for
	// (default 2s): below it, the copy back stalls the batch for little gain (in aios
	// bench, 1s cost more in loads than it won in admission).
	SwapAfter time.Duration
	// SwapRate is how many tokens per second the tier copies back to the GPU, and
	// SwapMargin the slack added (default 250ms): a swapped-out program is warmed that
	// long before its tool is expected back, so its context is resident when it
	// returns.
	SwapRate   float64
	SwapMargin time.Duration
	// FairShare admits by agent (Agent Fair Share): each agent present is entitled to an
	// equal share of the set, and agents sending more than the others are kept from the
	// room that light agents leave unused and suspended to make room for their programs
	// (fairshare.go). Off by default.
	FairShare bool
	// FairLend, with FairShare, lets an agent past its share take the room that light
	// agents (those sending less than their share) leave unused, as long as none of
	// them waits: the set stays full, but a light agent's next program then waits for a
	// heavy agent's to end. Off: that room is kept (fairshare.go).
	FairLend bool
	// Weights are agents' weights in FairShare (missing: 1): an agent's share of the set,
	// and how many programs it may send while still light, are in proportion to its
	// weight. The kernel passes the fair policy's (scheduler.fair.weights).
	Weights map[string]float64
	// FairHalfLife is how fast FairShare forgets an agent's program arrivals (default
	// 5 min): the window over which it tells heavy agents from light ones.
	FairHalfLife time.Duration
	// FairLight: an agent is light while its recent arrivals are below this fraction of
	// its weighted share of all agents' (default 0.8).
	FairLight float64
}

type wsProgram struct {
	key      string
	agent    string
	tokens   int // context of its latest call: what it holds in the cache
	active   bool
	admitted time.Duration
	order    uint64 // admission order, to suspend the newest first
	calls    int    // queued or running
	inQueue  int    // queued
	lastSeen time.Duration
	service  time.Duration // engine time of its finished calls
	waiting  bool          // inactive with a call queued: waiting to be admitted
	since    time.Duration // when it began waiting
	waited   time.Duration // admission waits before the current one
	arrived  uint64        // order of first arrival, to break ties deterministically
	tools    int           // tool calls the kernel is running for it now
	back     time.Duration // when its running tools are expected to end
	swapped  bool          // suspended with its context offloaded; not yet readmitted
}

// ratio is p's admission wait over its service (at least MinService).
func (w *workingSet) ratio(p *wsProgram, now time.Duration) float64 {
	return float64(p.waited+now-p.since) / float64(max(p.service, w.cfg.MinService))
}

// starving reports whether p has waited to be admitted Beta times its service.
func (w *workingSet) starving(p *wsProgram, now time.Duration) bool {
	wait := p.waited + now - p.since
	return float64(wait) >= w.cfg.Beta*float64(max(p.service, w.cfg.MinService))
}

type workingSet struct {
	cfg      WorkingSet
	progs    map[string]*wsProgram
	used     int // summed tokens of active programs
	seq      uint64
	arrivals uint64
	admits   int
	suspends int
	// reserved is the starving program admitted next, before any other (nil: none).
	reserved     *wsProgram
	reservations int
	graph        *Graph // predictions, used with cfg.Graph
	// swaps are the moves Round hands the owner next; swapOuts and swapIns count them.
	swaps             []Swap
	swapOuts, swapIns int
	returning         bool       // a swapped-out program waits to be readmitted (holdNew)
	fair              *fairState // nil unless WorkingSet.FairShare
}

// EnableWorkingSet turns on program-level admission for the LLM module.
func (s *Scheduler) EnableWorkingSet(cfg WorkingSet) {
	high, suspend := 0.9, 1.0
	if cfg.Tier {
		high, suspend = 1.2, 1.3
	}
	if cfg.High <= 0 {
		cfg.High = high
	}
	if cfg.Suspend <= 0 {
		cfg.Suspend = suspend
	}
	if cfg.Idle <= 0 {
		cfg.Idle = 60 * time.Second
	}
	if cfg.Beta <= 0 {
		cfg.Beta = 2
	}
	if cfg.MinService <= 0 {
		cfg.MinService = time.Second
	}
	if cfg.SwapAfter <= 0 {
		cfg.SwapAfter = 2 * time.Second
	}
	if cfg.SwapMargin <= 0 {
		cfg.SwapMargin = 250 * time.Millisecond
	}
	if cfg.FairHalfLife <= 0 {
		cfg.FairHalfLife = defaultFairHalfLife
	}
	if cfg.FairLight <= 0 {
		cfg.FairLight = defaultFairLight
	}
	s.ws = &workingSet{cfg: cfg, progs: map[string]*wsProgram{}, graph: s.graph}
	if cfg.FairShare {
		s.ws.fair = newFairState(cfg)
	}
}

// WorkingSetStats reports the admission's counters: programs active now, their summed
// context, admissions and suspensions so far.
func (s *Scheduler) WorkingSetStats() (active, tokens, admits, suspends int) {
	if s.ws == nil {
		return 0, 0, 0, 0
	}
	for _, p := range s.ws.progs {
		if p.active {
			active++
		}
	}
	return active, s.ws.used, s.ws.admits, s.ws.suspends
}

// EndProgram tells the scheduler a program is finished, so its context leaves the
// working set at once and policies that learn from whole programs (psjf) learn its
// size.
func (s *Scheduler) EndProgram(program string) {
	s.graph.ProgramEnded(program)
	for _, q := range s.queues {
		if e, ok := q.(ProgramEnder); ok {
			e.ProgramEnded(program)
		}
	}
	if s.ws == nil {
		return
	}
	if p := s.ws.progs[program]; p != nil {
		s.ws.forget(p)
	}
}

// ToolStarted tells the scheduler that the kernel started a call of tool for program,
// expected to take expect: the program is not idle while it runs (so it is not
// forgotten), and admission knows when its context will be needed again.
func (s *Scheduler) ToolStarted(program, tool string, expect, now time.Duration) {
	s.graph.ToolStarted(program, tool, now)
	if s.ws == nil {
		return
	}
	if p := s.ws.progs[program]; p != nil {
		p.tools++
		p.back = max(p.back, now+expect)
		s.ws.toolStarted(p, expect)
	}
}

// ToolEnded tells the scheduler that program's call of tool ended.
func (s *Scheduler) ToolEnded(program, tool string, now time.Duration) {
	s.graph.ToolEnded(program, tool, now)
	if s.ws == nil {
		return
	}
	if p := s.ws.progs[program]; p != nil && p.tools > 0 {
		p.tools--
		p.lastSeen = now
		if p.tools == 0 {
			p.back = 0
		}
	}
}

// Admitted reports whether the program a call belongs to is active in the working
// set, so its calls run without waiting for admission. Without working-set admission
// every program is.
func (s *Scheduler) Admitted(c *Call) bool {
	if s.ws == nil || c.Module != LLM {
		return true
	}
	p := s.ws.progs[programKey(c)]
	return p != nil && p.active
}

// WorkingSetReservations is how many times a starving program held the admission
// reservation (WorkingSet.Beta).
func (s *Scheduler) WorkingSetReservations() int {
	if s.ws == nil {
		return 0
	}
	return s.ws.reservations
}

func (w *workingSet) forget(p *wsProgram) {
	w.deactivate(p)
	if w.reserved == p {
		w.reserved = nil
	}
	delete(w.progs, p.key)
}

func programKey(c *Call) string {
	if c.Program != "" {
		return c.Program
	}
	return c.Agent
}

func (w *workingSet) capacity(s *Scheduler) int {
	if w.cfg.Capacity > 0 {
		return w.cfg.Capacity
	}
	n := 0
	for _, k := range s.cores {
		if k.spec.Module == LLM && !k.down {
			n += k.spec.MaxTokens
		}
	}
	return n
}

// arrive notes a queued call of a program; its context grows to the call's size.
func (w *workingSet) arrive(c *Call, now time.Duration) {
	if c.Module != LLM {
		return
	}
	key := programKey(c)
	p := w.progs[key]
	if p == nil {
		w.arrivals++
		p = &wsProgram{key: key, agent: c.Agent, arrived: w.arrivals}
		w.progs[key] = p
		if w.fair != nil {
			w.fair.arrived(c.Agent, now)
		}
	}
	p.calls++
	p.lastSeen = now
	if p.active {
		w.hold(p, c.Tokens-p.tokens)
	}
	p.tokens = c.Tokens
}

// leave notes that a call of the program finished or was cancelled.
func (w *workingSet) leave(c *Call, now time.Duration) {
	if c.Module != LLM {
		return
	}
	if p := w.progs[programKey(c)]; p != nil {
		p.calls--
		p.lastSeen = now
		p.service += c.Service
	}
}

// queued notes a call of the program entering (+1) or leaving (-1) the queue. A
// program outside the set waits to be admitted while it has a call queued.
func (w *workingSet) queued(c *Call, delta int, now time.Duration) {
	if c.Module != LLM {
		return
	}
	p := w.progs[programKey(c)]
	if p == nil {
		return
	}
	p.inQueue = max(p.inQueue+delta, 0)
	w.updateWaiting(p, now)
}

func (w *workingSet) updateWaiting(p *wsProgram, now time.Duration) {
	switch wait := !p.active && p.inQueue > 0; {
	case wait && !p.waiting:
		p.waiting, p.since = true, now
	case !wait && p.waiting:
		p.waiting = false
		p.waited += now - p.since
		if w.reserved == p {
			w.reserved = nil
		}
	}
}

func (w *workingSet) deactivate(p *wsProgram) {
	if p.active {
		p.active = false
		w.hold(p, -p.tokens)
	}
}

// admit decides whether c's program may run now, admitting it if it fits.
func (w *workingSet) admit(s *Scheduler, c *Call, now time.Duration) bool {
	if c.Module != LLM {
		return true
	}
	p := w.progs[programKey(c)]
	if p == nil || p.active {
		return true
	}
	if w.reserved != nil && w.reserved != p {
		return false // a starving program is admitted first
	}
	if w.holdNew(p) {
		return false
	}
	if w.reserved != p && w.overShare(p) {
		return false // a light agent below its share is waiting
	}
	limit := int(w.cfg.High * float64(w.capacity(s)))
	if p.swapped {
		limit = w.returnLimit(s)
	}
	if w.reserved == p && w.cfg.Evict && w.used+p.tokens > limit {
		w.makeRoom(p, limit, now)
	}
	if w.used+p.tokens > limit && w.used > 0 {
		w.evictHeavy(p, limit, now)
	}
	// A program alone bigger than the limit is still admitted into an empty set, or it
	// would never run.
	if w.used+p.tokens > limit && w.used > 0 {
		return false
	}
	if w.reserved != p && w.intoReserve(p, limit) {
		return false // the room is kept for agents below their share
	}
	w.activate(p, now)
	return true
}

func (w *workingSet) activate(p *wsProgram, now time.Duration) {
	before := w.heldBy(p)
	w.seq++
	p.active, p.admitted, p.order, p.swapped = true, now, w.seq, false
	w.updateWaiting(p, now)
	w.hold(p, p.tokens)
	w.admittedFair(p, before)
	w.admits++
}

// makeRoom suspends active programs that are between calls (waiting on a tool) until
// the starving p fits. Programs whose tool the kernel runs, and so knows when it should
// end, go first, the one expected back last first (its context is reused furthest in
// the future, Bélády's rule); then the rest, smallest context first, since each will
// recompute what the engine evicts of it meanwhile, newest first among equals. Their
// next calls wait to be admitted again.
func (w *workingSet) makeRoom(p *wsProgram, limit int, now time.Duration) {
	w.suspendFor(p, limit, now, func(*wsProgram) bool { return true })
}

// suspendFor suspends active programs between calls that may (may says which) until p
// fits, in makeRoom's order.
func (w *workingSet) suspendFor(p *wsProgram, limit int, now time.Duration, may func(*wsProgram) bool) {
	var idle []*wsProgram
	for _, q := range w.progs {
		if q.active && q.calls == 0 {
			idle = append(idle, q)
		}
	}
	sort.Slice(idle, func(i, j int) bool {
		a, b := idle[i], idle[j]
		if w.cfg.Graph {
			if first, decided := w.furthest(a, b, now); decided {
				return first
			}
		}
		if (a.tools > 0) != (b.tools > 0) {
			return a.tools > 0
		}
		if a.tools > 0 && a.back != b.back {
			return a.back > b.back
		}
		return a.tokens < b.tokens || a.tokens == b.tokens && a.order > b.order
	})
	for _, q := range idle {
		if w.used+p.tokens <= limit {
			return
		}
		if !may(q) {
			continue
		}
		w.deactivate(q)
		w.suspends++
		w.swapOut(q)
	}
}

// reserve gives the reservation to the starving program that has waited longest, when
// none holds it.
func (w *workingSet) reserve(now time.Duration) {
	if w.reserved != nil || math.IsInf(w.cfg.Beta, 1) {
		return
	}
	var best *wsProgram
	for _, p := range w.progs {
		if !p.waiting || !w.starving(p, now) || !w.mayReserve(p) {
			continue
		}
		if best == nil || w.ratio(p, now) > w.ratio(best, now) || w.ratio(p, now) == w.ratio(best, now) && p.arrived < best.arrived {
			best = p
		}
	}
	if best != nil {
		w.reserved = best
		w.reservations++
	}
}

// maintain forgets idle programs and suspends the newest active ones while the active
// contexts exceed the suspension mark.
func (w *workingSet) maintain(s *Scheduler, now time.Duration) {
	for _, p := range w.progs {
		if p.calls <= 0 && p.tools <= 0 && now-p.lastSeen >= w.cfg.Idle {
			w.forget(p)
		}
	}
	defer func() {
		w.fairRound(int(w.cfg.High*float64(w.capacity(s))), now)
		w.reserve(now)
	}()
	limit := int(w.cfg.Suspend * float64(w.capacity(s)))
	if w.used <= limit {
		return
	}
	var active []*wsProgram
	for _, p := range w.progs {
		if p.active {
			active = append(active, p)
		}
	}
	sort.Slice(active, func(i, j int) bool {
		if w.cfg.Graph {
			if first, decided := w.furthest(active[i], active[j], now); decided {
				return first
			}
		}
		return active[i].order > active[j].order
	})
	for _, p := range active {
		if w.used <= limit || len(active) == 1 {
			break
		}
		w.deactivate(p)
		w.suspends++
		w.swapOut(p)
		w.updateWaiting(p, now) // its queued calls now wait to be admitted again
		active = active[1:]
	}
}

// furthest orders two programs for suspension by the graph's prediction of their next
// LLM call: one with a prediction goes before one without, the later prediction first.
// decided is false when neither has one (or they tie), for the caller's own order. A
// program with a call queued or running has none: it uses its cache now.
func (w *workingSet) furthest(a, b *wsProgram, now time.Duration) (first, decided bool) {
	ra, okA := w.predict(a, now)
	rb, okB := w.predict(b, now)
	switch {
	case okA != okB:
		return okA, true
	case !okA || ra == rb:
		return false, false
	}
	return ra > rb, true
}

func (w *workingSet) predict(p *wsProgram, now time.Duration) (time.Duration, bool) {
	if p.calls > 0 {
		return 0, false
	}
	r, ok := w.graph.Predict(p.key, now)
	if !ok {
		return 0, false
	}
	return r.Horizon(now), true
}
