package sched

import (
	"errors"
	"fmt"
	"sort"
	"time"
)

// Errors Submit returns for calls that could never run.
var (
	ErrNoCore   = errors.New("no core serves this call")
	ErrTooLarge = errors.New("call needs more KV tokens than any core holds")
)

type core struct {
	tree     prefixTree // cache-aware routing's memory of what this core served
	spec     CoreSpec
	inflight int
	tokens   int
	down     bool
	held     bool // its engine reports saturation: no new calls until it drains
	running  map[*Call]struct{}
}

func (c *core) room(call *Call) bool {
	max := c.spec.MaxInflight
	if max <= 0 {
		max = 1
	}
	if c.inflight >= max {
		return false
	}
	return c.spec.MaxTokens <= 0 || c.tokens+call.Tokens <= c.spec.MaxTokens
}

// load orders cores for least-loaded routing: fraction of sequence slots in use, then of
// tokens, so an idle core with more slots wins over a half-busy one.
func (c *core) load() float64 {
	max := c.spec.MaxInflight
	if max <= 0 {
		max = 1
	}
	l := float64(c.inflight) / float64(max)
	if c.spec.MaxTokens > 0 {
		l += float64(c.tokens) / float64(c.spec.MaxTokens) / 1024
	}
	return l
}

// CoreLoad is a snapshot of one core's occupancy.
type CoreLoad struct {
	Spec     CoreSpec
	Inflight int
	Tokens   int
	Down     bool
	Held     bool // new calls held back: its engine reports it saturated
}

// Scheduler holds one queue per module and the cores calls run on.
type Scheduler struct {
	// MaxBypass is how many later calls may pass a call that waits for room (0: strict
	// order within a model).
	MaxBypass int

	queues  [NumModules]Policy
	ws      *workingSet // program-level admission, when enabled
	routing RoutingConfig
	pinned  map[string]CoreID // affinity: a program's core
	rr      int
	cores   []*core // ordered by ID
	byID    map[CoreID]*core
	waiting [NumModules]map[string]int // queued calls per model, to know who waits for a core
	gates   [NumModules]func(*Call) bool
	seq     uint64
	// stopping are calls told to stop (Preemptions) that have not come back yet, and
	// parked those that have, held until the last of them is back (Requeue).
	stopping map[*Call]bool
	parked   []*Call
	// graph learns each class of program's steps from the calls and tools it sees.
	graph   *Graph
	submits int
}

// SetGate makes module m's calls need gate's consent as well as a free slot: a call
// whose resource (its Model, e.g. a tool with its own limit on parallel calls) is busy
// is passed over and later calls for free resources start instead, so one busy tool
// never holds up the others. gate is asked last, once a slot is found, and a true
// answer commits: the call starts.
func (s *Scheduler) SetGate(m Module, gate func(*Call) bool) { s.gates[m] = gate }

// Waiting is the number of module m's calls queued for model (or resource) name.
func (s *Scheduler) Waiting(m Module, name string) int { return s.waiting[m][name] }

// New builds a scheduler whose module m orders its queue with policy(m).
func New(policy func(Module) Policy) *Scheduler {
	s := &Scheduler{byID: make(map[CoreID]*core), graph: NewGraph()}
	for m := Module(0); m < NumModules; m++ {
		s.queues[m] = policy(m)
		s.waiting[m] = make(map[string]int)
	}
	return s
}

// Policy returns the policy ordering module m's queue.
func (s *Scheduler) Policy(m Module) Policy { return s.queues[m] }

// AddCore registers a core. IDs must be unique.
func (s *Scheduler) AddCore(spec CoreSpec) error {
	if _, ok := s.byID[spec.ID]; ok {
		return fmt.Errorf("core %d registered twice", spec.ID)
	}
	c := &core{spec: spec, running: make(map[*Call]struct{})}
	s.byID[spec.ID] = c
	s.cores = append(s.cores, c)
	sort.Slice(s.cores, func(i, j int) bool { return s.cores[i].spec.ID < s.cores[j].spec.ID })
	return nil
}

// SetDown takes a core out of (or back into) dispatch. Running calls are not touched.
func (s *Scheduler) SetDown(id CoreID, down bool) {
	if c, ok := s.byID[id]; ok {
		c.down = down
	}
}

// SetHeld holds new calls back from a core whose engine reports it is saturated (or
// releases them). Unlike SetDown it says nothing about the core's health.
func (s *Scheduler) SetHeld(id CoreID, held bool) {
	if c, ok := s.byID[id]; ok {
		c.held = held
	}
}

// Loads reports every core's occupancy.
func (s *Scheduler) Loads() []CoreLoad {
	out := make([]CoreLoad, len(s.cores))
	for i, c := range s.cores {
		out[i] = CoreLoad{Spec: c.spec, Inflight: c.inflight, Tokens: c.tokens, Down: c.down, Held: c.held}
	}
	return out
}

// Queued is the number of calls waiting in module m's queue.
func (s *Scheduler) Queued(m Module) int { return s.queues[m].Len() }

// Submit queues a new call. It fails when no registered core could ever run it.
func (s *Scheduler) Submit(c *Call, now time.Duration) error {
	served, fits := false, false
	for _, k := range s.cores {
		if k.spec.Module != c.Module || !k.spec.serves(c.Model) {
			continue
		}
		served = true
		if k.spec.MaxTokens <= 0 || c.Tokens <= k.spec.MaxTokens {
			fits = true
		}
	}
	switch {
	case !served:
		return ErrNoCore
	case !fits:
		return ErrTooLarge
	}
	c.Arrival = now
	c.State = Queued
	c.hidx = -1
	s.learnArrival(c, now)
	if s.ws != nil {
		s.ws.arrive(c, now)
	}
	s.enqueue(c, now)
	return nil
}

func (s *Scheduler) enqueue(c *Call, now time.Duration) {
	if s.ws != nil {
		s.ws.queued(c, 1, now)
	}
	s.seq++
	c.seq = s.seq
	c.enqueued = now
	c.State = Queued
	s.waiting[c.Module][c.Model]++
	s.queues[c.Module].Push(c, now)
}

func (s *Scheduler) dequeued(c *Call, now time.Duration) {
	if s.ws != nil {
		s.ws.queued(c, -1, now)
	}
	c.Waited += now - c.enqueued
	if s.waiting[c.Module][c.Model]--; s.waiting[c.Module][c.Model] == 0 {
		delete(s.waiting[c.Module], c.Model)
	}
}

// Dispatch returns every call that can start now and the core each goes to. Within a
// module, calls are taken in policy order. A call that fits no core blocks the calls of
// its model behind it, except that up to MaxBypass smaller ones that fit may pass it
// (backfilling, so a large call waiting for room does not idle the rest of the cache);
// then they wait too, so the large call is never starved. Other models are not blocked.
func (s *Scheduler) Dispatch(now time.Duration) []Assignment {
	var out []Assignment
	for m := Module(0); m < NumModules; m++ {
		q := s.queues[m]
		if q.Len() == 0 {
			continue
		}
		if s.ws != nil && m == LLM {
			s.ws.maintain(s, now)
		}
		heads := map[string]*Call{} // the first blocked call of each model
		closed := map[string]bool{} // models nothing more can start on this round
		for q.Len() > 0 && len(closed) < len(s.waiting[m]) {
			var target *core
			c := q.Pick(now, func(c *Call) Verdict {
				if len(closed) >= len(s.waiting[m]) {
					return Stop
				}
				if closed[c.Model] {
					return Skip
				}
				if s.ws != nil && !s.ws.admit(s, c, now) {
					// Its program waits outside the working set; calls of admitted programs
					// behind it go on.
					return Skip
				}
				h := heads[c.Model]
				target = s.route(c)
				if target != nil && s.gates[m] != nil && !s.gates[m](c) {
					return Skip // its resource is busy; calls for others go on
				}
				if target == nil {
					if h == nil {
						heads[c.Model] = c
						h = c
					}
					if h.bypassed >= s.MaxBypass || !s.slotFree(c) {
						closed[c.Model] = true
					}
					return Skip
				}
				if h != nil {
					if h.bypassed++; h.bypassed >= s.MaxBypass {
						closed[c.Model] = true
					}
				}
				return Take
			})
			if c == nil {
				break
			}
			s.dequeued(c, now)
			s.start(c, target, now)
			out = append(out, Assignment{Call: c, Core: target.spec.ID})
		}
	}
	return out
}

// slotFree reports whether some live core serving c has a sequence slot open, so a
// smaller call of its model could still start.
func (s *Scheduler) slotFree(c *Call) bool {
	for _, k := range s.cores {
		if !k.down && !k.held && k.spec.Module == c.Module && k.spec.serves(c.Model) && k.inflight < max(k.spec.MaxInflight, 1) {
			return true
		}
	}
	return false
}

func (s *Scheduler) start(c *Call, k *core, now time.Duration) {
	c.State = Running
	c.Core = k.spec.ID
	c.Started = now
	if !c.HasStarted {
		c.HasStarted = true
		c.FirstStart = now
	}
	c.Slices++
	c.bypassed = 0
	s.routed(c, k)
	if o, ok := s.queues[c.Module].(Observer); ok {
		o.Started(c, now)
	}
	k.inflight++
	k.tokens += c.Tokens
	k.running[c] = struct{}{}
}

func (s *Scheduler) release(c *Call, now time.Duration) {
	k := s.byID[c.Core]
	if _, ok := k.running[c]; !ok {
		return
	}
	delete(k.running, c)
	k.inflight--
	k.tokens -= c.Tokens
	c.Service += now - c.Started
}

// someoneWaits reports whether a queued call could use core k.
func (s *Scheduler) someoneWaits(k *core) bool {
	for model, n := range s.waiting[k.spec.Module] {
		if n > 0 && k.spec.serves(model) {
			return true
		}
	}
	return false
}

// residentOnPreempt says whether a call stopped on core k keeps its KV resident until
// it resumes, which is what makes preemption cheap: an engine resumes a stopped call by
// recomputing whatever of its context was evicted meanwhile. On an LLM core with a KV
// cache (MaxTokens known) that holds only under working-set admission, whose active
// programs' contexts all fit; without it, an overloaded engine evicts the stopped
// call's context, every resumption recomputes it, and rr and plas fell to a tenth of
// the throughput of no scheduling at all (docs/bench.md). So there, policies do not
// preempt. Cores with no KV capacity (services, API backends) preempt as the policy says.
func (s *Scheduler) residentOnPreempt(k *core) bool {
	return k.spec.Module != LLM || k.spec.MaxTokens <= 0 || s.ws != nil
}

// Preemptions returns running calls whose quantum has expired while another call waits
// for their core. Each is marked Preempting; the owner stops it and calls Requeue.
func (s *Scheduler) Preemptions(now time.Duration) []*Call {
	var out []*Call
	for _, k := range s.cores {
		if len(k.running) == 0 || !s.someoneWaits(k) || !s.residentOnPreempt(k) {
			continue
		}
		q := s.queues[k.spec.Module]
		for c := range k.running {
			if c.State != Running || c.NoPreempt {
				continue
			}
			if qt := q.Quantum(c); qt > 0 && now-c.Started >= qt {
				c.State = Preempting
				if c.Module == LLM {
					// Owners stop LLM slices; other modules' calls run to their end.
					if s.stopping == nil {
						s.stopping = map[*Call]bool{}
					}
					s.stopping[c] = true
				}
				out = append(out, c)
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// NextDeadline is the earliest time a running call's quantum expires or a policy's order
// changes on its own (Waker), so the owner knows when to call Preemptions and Dispatch
// again. ok is false when there is no such time.
func (s *Scheduler) NextDeadline() (at time.Duration, ok bool) {
	for _, q := range s.queues {
		if w, isW := q.(Waker); isW {
			if d, has := w.WakeAt(); has && (!ok || d < at) {
				at, ok = d, true
			}
		}
	}
	for _, k := range s.cores {
		// A quantum matters only while someone waits for the core; a new arrival makes
		// the owner call Preemptions anyway.
		if len(k.running) == 0 || !s.someoneWaits(k) || !s.residentOnPreempt(k) {
			continue
		}
		q := s.queues[k.spec.Module]
		for c := range k.running {
			if c.State != Running || c.NoPreempt {
				continue
			}
			if qt := q.Quantum(c); qt > 0 {
				if d := c.Started + qt; !ok || d < at {
					at, ok = d, true
				}
			}
		}
	}
	return at, ok
}

// Requeue puts a stopped (preempted) call back in its queue, freeing its core.
//
// LLM calls stopped together (by Preemptions) go back to the queue together, in call ID
// order, once the last of them is back: an owner whose slices stop asynchronously (the
// kernel) then frees their cores and orders them as one that stops them all at once
// (aios bench's virtual driver), whatever order they come back in; the slots they held
// are given out in one round.
func (s *Scheduler) Requeue(c *Call, now time.Duration) {
	if c.State != Running && c.State != Preempting {
		return
	}
	if s.stopping[c] {
		delete(s.stopping, c)
		// Its slice ran until now; the wait for the others is not service.
		c.Service += now - c.Started
		c.Started = now
		s.parked = append(s.parked, c)
		s.flushParked(now)
		return
	}
	s.requeue(c, now)
}

func (s *Scheduler) requeue(c *Call, now time.Duration) {
	s.release(c, now)
	if o, ok := s.queues[c.Module].(Observer); ok {
		o.Stopped(c, now, false)
	}
	s.enqueue(c, now)
}

// flushParked requeues the parked calls, by ID, once no stopped call is still out.
func (s *Scheduler) flushParked(now time.Duration) {
	if len(s.stopping) > 0 || len(s.parked) == 0 {
		return
	}
	parked := s.parked
	s.parked = nil
	sort.Slice(parked, func(i, j int) bool { return parked[i].ID < parked[j].ID })
	for _, c := range parked {
		c.Started = now
		s.requeue(c, now)
	}
}

// unstop forgets c as told to stop or parked: it ended instead of coming back.
func (s *Scheduler) unstop(c *Call, now time.Duration) {
	if s.stopping[c] {
		delete(s.stopping, c)
		defer s.flushParked(now)
	}
	for i, p := range s.parked {
		if p == c {
			s.parked = append(s.parked[:i], s.parked[i+1:]...)
			break
		}
	}
}

// Complete records that a running call ended, successfully or not, and frees its core.
func (s *Scheduler) Complete(c *Call, now time.Duration) {
	if c.State != Running && c.State != Preempting {
		return
	}
	if c.State == Preempting {
		s.unstop(c, now)
	}
	s.release(c, now)
	c.State = Finished
	s.learnEnd(c, now)
	if s.ws != nil {
		s.ws.leave(c, now)
	}
	if o, ok := s.queues[c.Module].(Observer); ok {
		o.Stopped(c, now, true)
	}
}

// Cancel removes a call wherever it is. It reports whether the call was still queued or
// running (false: already finished).
func (s *Scheduler) Cancel(c *Call, now time.Duration) bool {
	switch c.State {
	case Queued:
		if s.queues[c.Module].Remove(c) {
			s.dequeued(c, now)
		}
		c.State = Finished
		s.learnEnd(c, now)
		if s.ws != nil {
			s.ws.leave(c, now)
		}
		return true
	case Running, Preempting:
		s.Complete(c, now)
		return true
	}
	return false
}

// Round is one pass of a dispatcher: the kernel's, which runs it with real time, and
// aios bench's virtual driver, which runs it with virtual time, so both make the same
// decisions from the same state. Stop lists running calls whose quantum expired while
// others wait (marked Preempting: the owner stops each, then calls SliceEnded); Start,
// the calls that may start now and their cores; Next, when to run the next round even
// if nothing happens (HasNext false: only on events); Swaps, the moves of programs' KV
// caches to and from engines' CPU tiers that working-set admission asks for
// (WorkingSet.Swap), in the order asked, including those asked between rounds.
type Round struct {
	Stop    []*Call
	Start   []Assignment
	Next    time.Duration
	HasNext bool
	Swaps   []Swap
}

// Round computes one dispatcher pass at now (Preemptions, warm-ups, Dispatch,
// NextDeadline).
func (s *Scheduler) Round(now time.Duration) Round {
	r := Round{Stop: s.Preemptions(now)}
	if s.ws != nil {
		// Before Dispatch, so a program warmed now is not passed by one admitted now.
		s.ws.warm(s, now)
	}
	r.Start = s.Dispatch(now)
	r.Next, r.HasNext = s.NextDeadline()
	if s.ws != nil {
		if at, ok := s.ws.nextWarm(now); ok && (!r.HasNext || at < r.Next) {
			r.Next, r.HasNext = at, true
		}
		r.Swaps = s.ws.takeSwaps()
	}
	return r
}

// SliceEnded applies the end of a running call's slice, for every owner alike: a slice
// stopped for preemption puts the call back in its queue; otherwise the call is done,
// having produced output tokens in all (the policy learns from them).
func (s *Scheduler) SliceEnded(c *Call, preempted bool, output int, now time.Duration) {
	if preempted {
		s.Requeue(c, now)
		return
	}
	c.OutputTokens = output
	s.Complete(c, now)
}
