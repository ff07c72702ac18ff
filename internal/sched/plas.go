package sched

import (
	"container/list"
	"math"
	"time"
)

// plas and atlas are Autellix's program-level least-attained-service policies (Luo et
// al., "Autellix: An Efficient Serving Engine for LLM Agents as General Programs",
// arXiv 2502.13965). A call inherits its program's priority: the engine time the
// program has already received. Programs that received little run first, so short
// agents finish without queueing behind long ones, and a long call cannot block the
// rest because it is demoted once it uses its level's quantum.
//
// Priorities are discretised into K levels with geometric bounds (Q0, Q0*r, Q0*r^2, ...),
// FCFS within a level. A queued call whose program has waited at least Beta times the
// service it received is promoted to the top level, so no program starves.
//
// plas counts the program's total service: the finished calls' service plus what the
// call itself received. atlas, for programs that run calls in parallel, counts the
// longest critical path instead. Autellix computes it on the program's call graph; we
// do not see the graph, so we approximate it by thread-free bookkeeping: each call
// records the program's critical path when it arrived (its chain so far), a finished
// call extends the path to (that start + its service), and the program's path is the
// longest such chain. A sequential program's path is its total service, as under plas;
// calls that ran side by side add the longest of them, not their sum.
type plas struct {
	name   string
	atlas  bool
	bounds []time.Duration // upper attained service of each level but the last
	slice  time.Duration   // the last level's round-robin slice
	beta   float64

	levels []list.List // of *Call, FCFS (ascending seq)
	n      int
	progs  map[groupKey]*program
	calls  map[*Call]*plasCall
	idle   idleSet[groupKey]
	now    time.Duration // latest time seen; Remove is not given one

	promotedAt time.Duration // promote scans once per instant, not once per Pick
	scanned    bool
}

type program struct {
	live    int           // calls queued or running
	service time.Duration // summed service of its finished calls
	waited  time.Duration // summed queueing of its finished calls
	path    time.Duration // atlas: longest chain of service over its finished calls
}

type plasCall struct {
	key    groupKey
	prog   *program
	start  time.Duration // atlas: the program's critical path when the call arrived
	level  int
	budget time.Duration // service it may receive before demotion, fixed at Push
	after  int           // the level it goes back to once the budget is used
	elem   *list.Element
}

func newPLAS(cfg Config, atlas bool) (Policy, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	p := &plas{
		name:  "plas",
		atlas: atlas,
		beta:  cfg.Beta,
		slice: geometric(cfg.QuantumBase, cfg.QuantumRatio, cfg.Queues-1),
		progs: make(map[groupKey]*program),
		calls: make(map[*Call]*plasCall),
		idle:  newIdleSet[groupKey](cfg.IdleTTL, cfg.MaxIdle),
	}
	if atlas {
		p.name = "atlas"
	}
	for i := 0; i < cfg.Queues-1; i++ {
		p.bounds = append(p.bounds, geometric(cfg.QuantumBase, cfg.QuantumRatio, i))
	}
	p.levels = make([]list.List, cfg.Queues)
	return p, nil
}

// geometric is base*ratio^i, saturating instead of overflowing.
func geometric(base time.Duration, ratio float64, i int) time.Duration {
	v := float64(base) * math.Pow(ratio, float64(i))
	if v >= math.MaxInt64 {
		return math.MaxInt64
	}
	return time.Duration(v)
}

func (p *plas) Name() string { return p.name }
func (p *plas) Len() int     { return p.n }

// attained is the service that places c: its program's, counted the policy's way.
func (p *plas) attained(c *Call, pc *plasCall) time.Duration {
	if p.atlas {
		return max(pc.prog.path, pc.start+c.Service)
	}
	return pc.prog.service + c.Service
}

func (p *plas) levelOf(a time.Duration) int {
	for i, b := range p.bounds {
		if a < b {
			return i
		}
	}
	return len(p.bounds)
}

// place sets the level c runs at and the service it may take there.
func (p *plas) place(c *Call, pc *plasCall, level int) {
	a := p.attained(c, pc)
	pc.level = level
	switch {
	case level == len(p.bounds):
		pc.budget = p.slice
	case level == p.levelOf(a):
		pc.budget = p.bounds[level] - a
	default: // promoted: a fresh top-level quantum, whatever the program received
		pc.budget = p.bounds[level]
	}
	pc.after = p.levelOf(a + pc.budget)
}

// starving reports whether c's program has waited Beta times the service it received.
func (p *plas) starving(c *Call, pc *plasCall, now time.Duration) bool {
	wait := pc.prog.waited + c.Waited + (now - c.enqueued)
	service := pc.prog.service + c.Service
	return float64(wait) >= p.beta*float64(service)
}

func (p *plas) Push(c *Call, now time.Duration) {
	p.tick(now)
	pc := p.calls[c]
	if pc == nil {
		key := programGroup(c)
		prog := p.progs[key]
		if prog == nil {
			prog = &program{}
			p.progs[key] = prog
		}
		if prog.live == 0 {
			p.idle.remove(key)
		}
		prog.live++
		pc = &plasCall{key: key, prog: prog, start: prog.path}
		p.calls[c] = pc
	}
	level := p.levelOf(p.attained(c, pc))
	if level > 0 && p.starving(c, pc, now) {
		level = 0
	}
	p.place(c, pc, level)
	if level == 0 {
		pc.elem = insertBySeq(&p.levels[0], c)
	} else {
		pc.elem = p.levels[level].PushBack(c)
	}
	p.n++
}

// insertBySeq keeps a level FCFS when a promoted call joins it out of turn.
func insertBySeq(l *list.List, c *Call) *list.Element {
	for e := l.Back(); e != nil; e = e.Prev() {
		if e.Value.(*Call).seq < c.seq {
			return l.InsertAfter(c, e)
		}
	}
	return l.PushFront(c)
}

// promote moves starving calls to the top level. Their ratio only grows while they
// wait, so a call promoted once stays there until it runs.
func (p *plas) promote(now time.Duration) {
	if p.scanned && now == p.promotedAt {
		return
	}
	p.scanned, p.promotedAt = true, now
	for i := 1; i < len(p.levels); i++ {
		l := &p.levels[i]
		for e := l.Front(); e != nil; {
			next := e.Next()
			c := e.Value.(*Call)
			if pc := p.calls[c]; p.starving(c, pc, now) {
				l.Remove(e)
				p.place(c, pc, 0)
				pc.elem = insertBySeq(&p.levels[0], c)
			}
			e = next
		}
	}
}

func (p *plas) Pick(now time.Duration, accept func(*Call) Verdict) *Call {
	p.tick(now)
	p.promote(now)
	for i := range p.levels {
		l := &p.levels[i]
		for e := l.Front(); e != nil; e = e.Next() {
			c := e.Value.(*Call)
			switch accept(c) {
			case Take:
				l.Remove(e)
				p.calls[c].elem = nil
				p.n--
				return c
			case Stop:
				return nil
			}
		}
	}
	return nil
}

func (p *plas) Remove(c *Call) bool {
	pc := p.calls[c]
	if pc == nil || pc.elem == nil {
		return false
	}
	p.levels[pc.level].Remove(pc.elem)
	pc.elem = nil
	p.n--
	p.finish(c, pc)
	return true
}

// Quantum is the service c may take at its level before it is demoted. It is 0 (keep
// running) while no queued call would go ahead of c once demoted: stopping it then
// costs a context switch and it would be picked again at once.
func (p *plas) Quantum(c *Call) time.Duration {
	pc := p.calls[c]
	if pc == nil || p.n == 0 {
		return 0
	}
	for i := 0; i <= pc.after && i < len(p.levels); i++ {
		if p.levels[i].Len() > 0 {
			return pc.budget
		}
	}
	return 0
}

func (p *plas) Started(_ *Call, now time.Duration) { p.tick(now) }

func (p *plas) Stopped(c *Call, now time.Duration, done bool) {
	p.tick(now)
	if pc := p.calls[c]; done && pc != nil {
		p.finish(c, pc)
	}
}

// finish folds a call that left for good into its program's history.
func (p *plas) finish(c *Call, pc *plasCall) {
	delete(p.calls, c)
	prog := pc.prog
	prog.service += c.Service
	prog.waited += c.Waited
	prog.path = max(prog.path, pc.start+c.Service)
	if prog.live--; prog.live > 0 {
		return
	}
	if pc.key.anonymous() {
		// A call without a program was its own program, and it has ended.
		delete(p.progs, pc.key)
		return
	}
	p.idle.add(pc.key, p.now)
	p.tick(p.now) // enforce MaxIdle now, not at the next event
}

func (p *plas) tick(now time.Duration) {
	p.now = max(p.now, now)
	p.idle.expire(p.now, func(k groupKey) { delete(p.progs, k) })
}

// live counts calls the policy holds state for, so tests can check none leaks.
func (p *plas) live() int { return len(p.calls) }

// Rank is the level c runs at (0 is the most urgent), for engines that order their own
// queues by priority: passed down, the engine serves new programs first too.
func (p *plas) Rank(c *Call) int {
	if pc := p.calls[c]; pc != nil {
		return pc.level
	}
	return 0
}
