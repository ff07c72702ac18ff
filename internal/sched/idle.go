package sched

import (
	"container/list"
	"time"
)

// groupKey names the unit a policy keeps state for: a program, an agent. A call with no
// name at all is a group of its own (call set), so anonymous traffic is neither lumped
// into one giant program nor able to collide with a real name.
type groupKey struct {
	name string
	call uint64
}

func (k groupKey) anonymous() bool { return k.name == "" }

// programGroup is the program a call belongs to: its session, else its agent.
func programGroup(c *Call) groupKey {
	switch {
	case c.Program != "":
		return groupKey{name: c.Program}
	case c.Agent != "":
		return groupKey{name: c.Agent}
	}
	return groupKey{call: c.ID}
}

// agentGroup is the agent a call belongs to, else its program.
func agentGroup(c *Call) groupKey {
	switch {
	case c.Agent != "":
		return groupKey{name: c.Agent}
	case c.Program != "":
		return groupKey{name: c.Program}
	}
	return groupKey{call: c.ID}
}

// idleSet remembers since when keyed state has had no call, so that policies can forget
// programs and clients that went away. The scheduler never learns that a program ended
// (an agent between two calls looks the same as one that quit), so forgetting after a
// quiet period is the only way to keep memory bounded.
type idleSet[K comparable] struct {
	ttl   time.Duration
	max   int
	order list.List // *idleEntry[K], oldest first (time only moves forward)
	pos   map[K]*list.Element
}

type idleEntry[K comparable] struct {
	key   K
	since time.Duration
}

func newIdleSet[K comparable](ttl time.Duration, max int) idleSet[K] {
	return idleSet[K]{ttl: ttl, max: max, pos: make(map[K]*list.Element)}
}

// add marks k idle from now on.
func (s *idleSet[K]) add(k K, now time.Duration) {
	s.remove(k)
	s.pos[k] = s.order.PushBack(&idleEntry[K]{key: k, since: now})
}

// remove marks k busy again.
func (s *idleSet[K]) remove(k K) {
	if e, ok := s.pos[k]; ok {
		s.order.Remove(e)
		delete(s.pos, k)
	}
}

// expire hands to forget every key idle for at least ttl, and the oldest beyond max.
func (s *idleSet[K]) expire(now time.Duration, forget func(K)) {
	for e := s.order.Front(); e != nil; e = s.order.Front() {
		ie := e.Value.(*idleEntry[K])
		if now-ie.since < s.ttl && s.order.Len() <= s.max {
			return
		}
		s.order.Remove(e)
		delete(s.pos, ie.key)
		forget(ie.key)
	}
}

func (s *idleSet[K]) len() int { return s.order.Len() }
