package sched

import (
	"container/list"
	"fmt"
)

// Routing names how a call is placed among the cores that could run it.
type Routing string

const (
	// LeastLoaded: the core with the smallest share of its sequence slots in use.
	LeastLoaded Routing = "least-loaded"
	// RoundRobin: cores in turn, skipping full ones; the baseline a plain load balancer
	// gives.
	RoundRobin Routing = "round-robin"
	// Affinity (Autellix): calls of at most AffinityTokens go to the least-loaded core;
	// longer ones to their program's core, where its long context is cached, unless that
	// core is full and another is idle, which then takes the call (work stealing).
	Affinity Routing = "affinity"
	// CacheAware (SGLang's router): each core keeps an approximate prefix tree learned
	// from the calls routed to it; the core with the longest match wins when the match
	// covers at least CacheThreshold of the prompt, unless the cores' loads are
	// imbalanced beyond BalanceAbs calls and BalanceRel times, when least-loaded wins.
	CacheAware Routing = "cache-aware"
)

// DefaultRouting places LLM calls when the configuration names no routing. With several
// engines, least-loaded and round-robin routing spread each program's calls over all
// of them, so every engine holds every program's context and the prefix cache thrashes:
// in aios bench on 4 engines at 1.2× load, the default configuration completed 42
// programs/min under least-loaded routing against 86 under affinity, below agents that
// keep their sessions on one engine themselves (54; docs/bench.md).
const DefaultRouting = Affinity

// Routings lists the routing modes.
func Routings() []Routing { return []Routing{LeastLoaded, RoundRobin, Affinity, CacheAware} }

// RoutingConfig parameterises routing; zero fields take defaults.
type RoutingConfig struct {
	Mode           Routing
	AffinityTokens int     // Autellix's 2048
	CacheThreshold float64 // sgl-router's cache_threshold, 0.5
	BalanceAbs     int     // sgl-router's balance_abs_threshold, 32
	BalanceRel     float64 // sgl-router's balance_rel_threshold, 1.5 here
	TreeSize       int     // prefix hashes remembered per core, 1<<16
}

// SetRouting chooses how calls are placed; an empty Mode is DefaultRouting. A scheduler
// on which it is never called routes least-loaded.
func (s *Scheduler) SetRouting(cfg RoutingConfig) error {
	if cfg.Mode == "" {
		cfg.Mode = DefaultRouting
	}
	switch cfg.Mode {
	case LeastLoaded, RoundRobin, Affinity, CacheAware:
	default:
		return fmt.Errorf("unknown routing %q (known: %v)", cfg.Mode, Routings())
	}
	if cfg.AffinityTokens <= 0 {
		cfg.AffinityTokens = 2048
	}
	if cfg.CacheThreshold <= 0 {
		cfg.CacheThreshold = 0.5
	}
	if cfg.BalanceAbs <= 0 {
		cfg.BalanceAbs = 32
	}
	if cfg.BalanceRel <= 0 {
		cfg.BalanceRel = 1.5
	}
	if cfg.TreeSize <= 0 {
		cfg.TreeSize = 1 << 16
	}
	s.routing = cfg
	s.pinned = map[string]CoreID{}
	return nil
}

// prefixTree is a core's approximate memory of the prefixes it has served: the chained
// block hashes of prompts routed to it, least recently used forgotten first. Chained
// hashes make a set enough: a hash names its whole prefix, so the match length is the
// number of leading hashes present.
type prefixTree struct {
	max   int
	lru   list.List
	nodes map[uint64]*list.Element
}

func (t *prefixTree) match(prefix []uint64) int {
	n := 0
	for _, h := range prefix {
		if _, ok := t.nodes[h]; !ok {
			break
		}
		n++
	}
	return n
}

func (t *prefixTree) insert(prefix []uint64) {
	if t.nodes == nil {
		t.nodes = map[uint64]*list.Element{}
	}
	for _, h := range prefix {
		if e, ok := t.nodes[h]; ok {
			t.lru.MoveToFront(e)
			continue
		}
		t.nodes[h] = t.lru.PushFront(h)
		if t.lru.Len() > t.max {
			old := t.lru.Back()
			t.lru.Remove(old)
			delete(t.nodes, old.Value.(uint64))
		}
	}
}

func (s *Scheduler) eligible(c *Call) []*core {
	var out []*core
	for _, k := range s.cores {
		if !k.down && !k.held && k.spec.Module == c.Module && k.spec.serves(c.Model) {
			out = append(out, k)
		}
	}
	return out
}

// route picks the core c goes to under the routing mode, or nil when it must wait.
func (s *Scheduler) route(c *Call) *core {
	ks := s.eligible(c)
	least := func() *core {
		var best *core
		for _, k := range ks {
			if k.room(c) && (best == nil || k.load() < best.load()) {
				best = k
			}
		}
		return best
	}
	if c.Module != LLM || len(ks) < 2 {
		return least()
	}
	switch s.routing.Mode {
	case RoundRobin:
		for i := range ks {
			k := ks[(s.rr+i)%len(ks)]
			if k.room(c) {
				s.rr = (s.rr + i + 1) % len(ks)
				return k
			}
		}
		return nil
	case Affinity:
		if c.Tokens <= s.routing.AffinityTokens {
			return least()
		}
		id, ok := s.pinned[programKey(c)]
		if !ok {
			return least()
		}
		for _, k := range ks {
			if k.spec.ID == id && k.room(c) {
				return k
			}
		}
		// Its core is full (or gone): an idle core steals the call rather than idle.
		for _, k := range ks {
			if k.inflight == 0 && k.room(c) {
				return k
			}
		}
		for _, k := range ks {
			if k.spec.ID == id {
				return nil // wait for its own core
			}
		}
		return least()
	case CacheAware:
		lo, hi := -1, 0
		for _, k := range ks {
			if lo < 0 || k.inflight < lo {
				lo = k.inflight
			}
			hi = max(hi, k.inflight)
		}
		imbalanced := hi-lo > s.routing.BalanceAbs && float64(hi) > s.routing.BalanceRel*float64(lo)
		if imbalanced || len(c.Prefix) == 0 {
			return least()
		}
		var best *core
		bestN := 0
		for _, k := range ks {
			if !k.room(c) {
				continue
			}
			if n := k.tree.match(c.Prefix); best == nil || n > bestN || n == bestN && k.load() < best.load() {
				best, bestN = k, n
			}
		}
		if best != nil && float64(bestN) >= s.routing.CacheThreshold*float64(len(c.Prefix)) {
			return best
		}
		return least()
	}
	return least()
}

// routed records where c went, for affinity and the cores' prefix trees.
func (s *Scheduler) routed(c *Call, k *core) {
	if c.Module != LLM {
		return
	}
	switch s.routing.Mode {
	case Affinity:
		if c.Tokens > s.routing.AffinityTokens {
			s.pinned[programKey(c)] = k.spec.ID
		}
	case CacheAware:
		k.tree.max = s.routing.TreeSize
		k.tree.insert(c.Prefix)
	}
}
