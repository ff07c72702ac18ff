package sched

import (
	"sort"
	"time"
)

// sloFair is earliest-deadline-first inside VTC's fair share. fair decides who is owed
// service: its counters, lift and charging are used as they are (the policy embeds it).
// What changes is the order of the queue: every backlogged client whose counter is
// within Bound of the smallest is within its fair share, and the calls of those clients
// run earliest Call.Deadline first (EDF: Liu and Layland, 1973), whoever sent them;
// calls with no deadline come after, in VTC order, and so do calls whose deadline has
// passed: under overload, EDF that keeps serving the already late makes every later
// call late too (the domino effect), while the late have nothing more to gain. Clients past the bound, which have
// received more than their share, run only when nothing within it can, in VTC order,
// each client's own calls earliest deadline first.
//
// So a tenant that bursts beyond its share cannot take the others' deadlines down: its
// counter climbs past the bound and its calls no longer compete with theirs, however
// near their deadlines. Below the bound EDF is free to reorder, which is what meets
// deadlines when the load within the share is feasible.
type sloFair struct {
	*fair
	bound float64
	cands []sloCand // Pick's scratch space
}

type sloCand struct {
	c        *Call
	fair     bool // its client is within the bound
	counter  float64
	deadline time.Duration // the call's, 0 when it has none or has missed it
}

func newSLOFair(cfg Config) (Policy, error) {
	p, err := newFair(cfg)
	if err != nil {
		return nil, err
	}
	return &sloFair{fair: p.(*fair), bound: cfg.SLOBound}, nil
}

func (s *sloFair) Name() string { return "slo" }

// limit is the counter up to which a client is within its share. With no bound
// configured it is VTC's own: twice the costliest call at the head of a backlogged
// client, the gap VTC allows between backlogged clients anyway.
func (s *sloFair) limit() float64 {
	low, first, costliest := 0.0, true, 0.0
	for cl := range s.backlog {
		if first || cl.counter < low {
			low, first = cl.counter, false
		}
		head := cl.q.Front().Value.(*Call)
		out := cl.outMean
		if head.MaxOutput > 0 {
			out = min(out, float64(head.MaxOutput))
		}
		costliest = max(costliest, (float64(head.InputTokens)*s.win+out*s.wout)/cl.weight)
	}
	if s.bound > 0 {
		return low + s.bound
	}
	return low + 2*costliest
}

func (s *sloFair) Pick(now time.Duration, accept func(*Call) Verdict) *Call {
	s.tick(now)
	limit := s.limit()
	cands := s.cands[:0]
	for cl := range s.backlog {
		within := cl.counter <= limit
		for e := cl.q.Front(); e != nil; e = e.Next() {
			c := e.Value.(*Call)
			d := c.Deadline
			if d <= now {
				d = 0
			}
			cands = append(cands, sloCand{c: c, fair: within, counter: cl.counter, deadline: d})
		}
	}
	sort.Slice(cands, func(i, j int) bool { return sloBefore(cands[i], cands[j]) })
	s.cands = cands
	defer clear(cands)
	for _, k := range cands {
		switch accept(k.c) {
		case Take:
			s.unqueue(k.c, s.calls[k.c])
			return k.c
		case Stop:
			return nil
		}
	}
	return nil
}

// sloBefore is the policy's order: within the share before past it; within it, by
// deadline, then VTC's order; past it, VTC's order, then by deadline.
func sloBefore(a, b sloCand) bool {
	if a.fair != b.fair {
		return a.fair
	}
	if a.fair {
		if x := deadlineOrder(a.deadline, b.deadline); x != 0 {
			return x < 0
		}
		if a.counter != b.counter {
			return a.counter < b.counter
		}
		return a.c.seq < b.c.seq
	}
	if a.counter != b.counter {
		return a.counter < b.counter
	}
	if x := deadlineOrder(a.deadline, b.deadline); x != 0 {
		return x < 0
	}
	return a.c.seq < b.c.seq
}

// deadlineOrder compares deadlines, none (0) after any.
func deadlineOrder(a, b time.Duration) int {
	switch {
	case a == b:
		return 0
	case a == 0:
		return 1
	case b == 0:
		return -1
	case a < b:
		return -1
	}
	return 1
}
