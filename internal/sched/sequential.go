package sched

import (
	"container/list"
	"time"
)

// ordered is fixed-order scheduling at group granularity, the baseline AIOS compares
// FIFO against (seed 001: run agent A's steps to the end, then B's, A1→A2→A3→B1→B2):
// one group holds the cores at a time, groups take turns in the order they first
// arrived, and inside the group calls run FIFO. Other groups' calls wait even while
// cores are idle. It is a baseline for benchmarks, not a policy to run in production:
// every agent's tool time becomes everyone's waiting time.
//
//   - sequential: a group is a program (its session, else its agent), so one program's
//     calls run at a time.
//   - hybrid: a group is an agent; its programs' calls interleave FIFO, which is the
//     "fixed order between groups, FIFO inside a group" the seed suggests.
//
// The scheduler never learns that a program ended: between two calls an agent is busy
// with a tool. The head group therefore keeps the cores for Linger after its last call
// ended, so its next call finds them; after that the next group in arrival order takes
// over. A group that comes back keeps its place in the order (it first arrived earlier)
// until it has been idle for IdleTTL. A call with neither program nor agent is a group
// of its own that ends with it.
type ordered struct {
	name   string
	group  func(*Call) groupKey
	linger time.Duration

	groups map[groupKey]*group
	calls  map[*Call]*orderedCall
	head   *group
	arrive uint64 // numbers groups in first-arrival order
	n      int
	idle   idleSet[groupKey]
	now    time.Duration
}

type group struct {
	key   groupKey
	order uint64
	q     list.List // of *Call, FIFO
	live  int       // calls queued or running
	ended time.Duration
}

type orderedCall struct {
	g    *group
	elem *list.Element
}

func newOrdered(cfg Config, name string, by func(*Call) groupKey) (Policy, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	return &ordered{
		name:   name,
		group:  by,
		linger: max(cfg.Linger, 0),
		groups: make(map[groupKey]*group),
		calls:  make(map[*Call]*orderedCall),
		idle:   newIdleSet[groupKey](cfg.IdleTTL, cfg.MaxIdle),
	}, nil
}

func (o *ordered) Name() string                { return o.name }
func (o *ordered) Len() int                    { return o.n }
func (o *ordered) Quantum(*Call) time.Duration { return 0 }

func (o *ordered) Push(c *Call, now time.Duration) {
	o.tick(now)
	oc := o.calls[c]
	if oc == nil {
		key := o.group(c)
		g := o.groups[key]
		if g == nil {
			o.arrive++
			g = &group{key: key, order: o.arrive}
			o.groups[key] = g
		}
		if g.live == 0 {
			o.idle.remove(key)
		}
		g.live++
		oc = &orderedCall{g: g}
		o.calls[c] = oc
	}
	oc.elem = oc.g.q.PushBack(c)
	o.n++
}

// holds reports whether g still owns the cores: it has calls in flight, or its last
// one ended less than Linger ago.
func (o *ordered) holds(g *group, now time.Duration) bool {
	return g.live > 0 || (!g.key.anonymous() && now < g.ended+o.linger)
}

// current is the head group at now, choosing the next one in arrival order when the
// head let go.
func (o *ordered) current(now time.Duration) *group {
	if o.head != nil && o.holds(o.head, now) {
		return o.head
	}
	o.head = nil
	for _, g := range o.groups {
		if g.q.Len() > 0 && (o.head == nil || g.order < o.head.order) {
			o.head = g
		}
	}
	return o.head
}

func (o *ordered) Pick(now time.Duration, accept func(*Call) Verdict) *Call {
	o.tick(now)
	g := o.current(now)
	if g == nil {
		return nil
	}
	for e := g.q.Front(); e != nil; e = e.Next() {
		c := e.Value.(*Call)
		switch accept(c) {
		case Take:
			g.q.Remove(e)
			o.calls[c].elem = nil
			o.n--
			return c
		case Stop:
			return nil
		}
	}
	return nil
}

func (o *ordered) Remove(c *Call) bool {
	oc := o.calls[c]
	if oc == nil || oc.elem == nil {
		return false
	}
	oc.g.q.Remove(oc.elem)
	oc.elem = nil
	o.n--
	o.finish(c, oc)
	return true
}

func (o *ordered) Started(_ *Call, now time.Duration) { o.tick(now) }

func (o *ordered) Stopped(c *Call, now time.Duration, done bool) {
	o.tick(now)
	if oc := o.calls[c]; done && oc != nil {
		o.finish(c, oc)
	}
}

func (o *ordered) finish(c *Call, oc *orderedCall) {
	delete(o.calls, c)
	g := oc.g
	if g.live--; g.live > 0 {
		return
	}
	g.ended = o.now
	if g.key.anonymous() {
		o.forget(g.key)
		return
	}
	o.idle.add(g.key, o.now)
	o.tick(o.now)
}

func (o *ordered) forget(k groupKey) {
	if o.head != nil && o.head.key == k {
		o.head = nil
	}
	delete(o.groups, k)
}

func (o *ordered) tick(now time.Duration) {
	o.now = max(o.now, now)
	o.idle.expire(o.now, o.forget)
}

// WakeAt is when the lingering head group lets go while other groups wait: nothing
// else happens then, yet their calls become runnable.
func (o *ordered) WakeAt() (time.Duration, bool) {
	g := o.head
	if g == nil || g.live > 0 || g.key.anonymous() || o.n == 0 {
		return 0, false
	}
	return g.ended + o.linger, true
}

func (o *ordered) live() int { return len(o.calls) }
