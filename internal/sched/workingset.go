package sched

import (
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
	// High is the fraction of Capacity new programs are admitted up to (default 0.9).
	// Contexts are summed as if nothing were shared, while programs of one kind share a
	// cached system prompt, so the sum overstates the cache in use; 0.8 bound below the
	// direct arm's capacity in aios bench, 0.9 did not.
	High float64
	// Suspend is the fraction past which, as active contexts grow, the newest active
	// programs are suspended: their running calls finish, their next calls wait to be
	// admitted again (default 1.0).
	Suspend float64
	// Idle is how long an active program with no call queued or running stays active
	// before it is presumed finished (default 60s), for owners that do not call
	// EndProgram.
	Idle time.Duration
}

type wsProgram struct {
	key      string
	tokens   int // context of its latest call: what it holds in the cache
	active   bool
	admitted time.Duration
	order    uint64 // admission order, to suspend the newest first
	calls    int    // queued or running
	lastSeen time.Duration
}

type workingSet struct {
	cfg      WorkingSet
	progs    map[string]*wsProgram
	used     int // summed tokens of active programs
	seq      uint64
	admits   int
	suspends int
}

// EnableWorkingSet turns on program-level admission for the LLM module.
func (s *Scheduler) EnableWorkingSet(cfg WorkingSet) {
	if cfg.High <= 0 {
		cfg.High = 0.9
	}
	if cfg.Suspend <= 0 {
		cfg.Suspend = 1.0
	}
	if cfg.Idle <= 0 {
		cfg.Idle = 60 * time.Second
	}
	s.ws = &workingSet{cfg: cfg, progs: map[string]*wsProgram{}}
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
// working set at once.
func (s *Scheduler) EndProgram(program string) {
	if s.ws == nil {
		return
	}
	if p := s.ws.progs[program]; p != nil {
		s.ws.deactivate(p)
		delete(s.ws.progs, program)
	}
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
		p = &wsProgram{key: key}
		w.progs[key] = p
	}
	p.calls++
	p.lastSeen = now
	if p.active {
		w.used += c.Tokens - p.tokens
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
	}
}

func (w *workingSet) deactivate(p *wsProgram) {
	if p.active {
		p.active = false
		w.used -= p.tokens
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
	limit := int(w.cfg.High * float64(w.capacity(s)))
	// A program alone bigger than the limit is still admitted into an empty set, or it
	// would never run.
	if w.used+p.tokens > limit && w.used > 0 {
		return false
	}
	w.seq++
	p.active, p.admitted, p.order = true, now, w.seq
	w.used += p.tokens
	w.admits++
	return true
}

// maintain forgets idle programs and suspends the newest active ones while the active
// contexts exceed the suspension mark.
func (w *workingSet) maintain(s *Scheduler, now time.Duration) {
	for key, p := range w.progs {
		if p.calls <= 0 && now-p.lastSeen >= w.cfg.Idle {
			w.deactivate(p)
			delete(w.progs, key)
		}
	}
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
	sort.Slice(active, func(i, j int) bool { return active[i].order > active[j].order })
	for _, p := range active {
		if w.used <= limit || len(active) == 1 {
			break
		}
		w.deactivate(p)
		w.suspends++
		active = active[1:]
	}
}
