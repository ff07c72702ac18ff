package sched

import (
	"container/heap"
	"time"
)

// psjf is shortest-remaining-job-first over whole programs. Agents' programs differ in
// size by an order of magnitude (a chat turn against a software-engineering task of
// dozens of steps), and programs of one kind are alike: the same system prompt, the
// same loop. So a program's size is predicted from the programs of its class
// (Call.Class: the kernel names it by the program's system prompt) that have ended, as
// the engine time they received in all, and each call is ordered by what its program
// is predicted to need still: the prediction less the engine time the program has had,
// never below 0. Under working-set admission, which admits programs in policy order,
// that admits small programs first and lets nearly finished ones finish: the classic
// way to cut mean completion time when sizes vary (SRPT, Schrage 1968; at program
// level, Autellix's PLAS approximates it without a prediction, by attained service).
//
// Aging bounds the wait, as in sjf: the order is by predicted remaining size +
// ProgramAging × the call's arrival, a constant per call, so a call whose program is
// predicted to need S more waits at most for calls that arrived before it or within
// S/ProgramAging after it and were predicted to need less. The arrival is the call's,
// not its program's: a program that never ends (an agent whose calls name no session)
// does not keep the head of the queue for ever.
type psjf struct {
	aging   float64
	idle    time.Duration // a program with no call for this long is presumed over
	maxCls  int           // classes kept; past it the least learned of a few goes
	h       sjfHeap
	calls   map[*Call]*sjfCall
	progs   map[string]*psjfProg
	classes map[string]*psjfClass
	all     psjfClass // every class together: the prediction for a class not seen yet
	pushes  int
}

type psjfProg struct {
	class   string
	service time.Duration // engine time of its finished calls
	calls   int           // calls queued or running
	last    time.Duration // when a call of it was last pushed or ended
}

// psjfClass is the mean size of a class's finished programs, in seconds of engine
// time: a plain mean of the first psjfWindow, then an exponential average over about
// that many, so a class whose programs change is followed.
type psjfClass struct {
	mean float64
	n    int
}

const (
	psjfWindow = 16
	// psjfSweep is how often (in pushes) programs with no call for Config.IdleTTL are
	// looked for, for owners that do not call EndProgram.
	psjfSweep = 1024
)

func (c *psjfClass) add(x float64) {
	c.n++
	c.mean += (x - c.mean) / float64(min(c.n, psjfWindow))
}

func newPSJF(cfg Config) (Policy, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	return &psjf{aging: cfg.ProgramAging, idle: cfg.IdleTTL, maxCls: cfg.MaxIdle, calls: map[*Call]*sjfCall{}, progs: map[string]*psjfProg{},
		classes: map[string]*psjfClass{}}, nil
}

func (s *psjf) Name() string                { return "psjf" }
func (s *psjf) Len() int                    { return len(s.h) }
func (s *psjf) Quantum(*Call) time.Duration { return 0 }

// classOf names what c's program is like: its Class, else its agent.
func classOf(c *Call) string {
	if c.Class != "" {
		return c.Class
	}
	return c.Agent
}

// predict is the expected size of a program of class.
func (s *psjf) predict(class string) time.Duration {
	c := s.classes[class]
	if c == nil || c.n == 0 {
		c = &s.all
	}
	return time.Duration(c.mean * float64(time.Second))
}

func (s *psjf) Push(c *Call, now time.Duration) {
	sc := s.calls[c]
	if sc == nil {
		key := programKey(c)
		p := s.progs[key]
		if p == nil {
			p = &psjfProg{class: classOf(c)}
			s.progs[key] = p
		}
		p.calls++
		p.last = now
		left := max(s.predict(p.class)-p.service, 0)
		sc = &sjfCall{c: c, key: left + time.Duration(s.aging*float64(c.Arrival))}
		s.calls[c] = sc
		if s.pushes++; s.pushes%psjfSweep == 0 {
			s.sweep(now)
		}
	}
	heap.Push(&s.h, sc)
}

func (s *psjf) Pick(_ time.Duration, accept func(*Call) Verdict) *Call { return s.h.pick(accept) }

// Remove takes a queued call out for good (it was cancelled).
func (s *psjf) Remove(c *Call) bool {
	sc := s.calls[c]
	if sc == nil || sc.idx < 0 {
		return false
	}
	heap.Remove(&s.h, sc.idx)
	s.ended(c, 0)
	return true
}

func (s *psjf) Started(*Call, time.Duration) {}

// Stopped adds a finished call's engine time to its program's.
func (s *psjf) Stopped(c *Call, now time.Duration, done bool) {
	if done && s.calls[c] != nil {
		s.ended(c, now)
	}
}

func (s *psjf) ended(c *Call, now time.Duration) {
	delete(s.calls, c)
	if p := s.progs[programKey(c)]; p != nil {
		p.calls--
		p.service += c.Service
		p.last = max(p.last, now)
	}
}

// ProgramEnded learns the size of a program that is over.
func (s *psjf) ProgramEnded(program string) {
	if p := s.progs[program]; p != nil {
		s.learn(p)
		delete(s.progs, program)
	}
}

func (s *psjf) learn(p *psjfProg) {
	if p.service <= 0 {
		return // it never ran: it says nothing of its class's size
	}
	c := s.classes[p.class]
	if c == nil {
		if len(s.classes) >= s.maxCls {
			s.dropClass()
		}
		c = &psjfClass{}
		s.classes[p.class] = c
	}
	c.add(p.service.Seconds())
	s.all.add(p.service.Seconds())
}

// dropClass forgets the least learned of a few classes (map order is random), so that
// system prompts that differ per program (a date, a user's name in them) cannot grow
// the map without bound.
func (s *psjf) dropClass() {
	var victim string
	least, looked := 0, 0
	for name, c := range s.classes {
		if victim == "" || c.n < least {
			victim, least = name, c.n
		}
		if looked++; looked == 8 {
			break
		}
	}
	delete(s.classes, victim)
}

// sweep ends the programs that have had no call for the idle time.
func (s *psjf) sweep(now time.Duration) {
	for key, p := range s.progs {
		if p.calls <= 0 && now-p.last >= s.idle {
			s.learn(p)
			delete(s.progs, key)
		}
	}
}
