package sched

import (
	"container/heap"
	"container/list"
	"fmt"
	"sort"
	"time"
)

// Verdict is what the scheduler says of a candidate during Pick.
type Verdict uint8

const (
	Take Verdict = iota // run this one
	Skip                // leave it queued, look further
	Stop                // leave it queued, look no further
)

// Policy orders one module's queue.
type Policy interface {
	Name() string
	Push(c *Call, now time.Duration)
	// Pick removes and returns the first call in policy order that accept takes, or nil.
	Pick(now time.Duration, accept func(*Call) Verdict) *Call
	Remove(c *Call) bool
	Len() int
	// Quantum is how long c may hold a core while others wait; 0 means until it ends.
	Quantum(c *Call) time.Duration
}

// Observer is implemented by policies that learn from what runs: attained service,
// virtual token counters, output lengths. The scheduler calls it as calls start and stop.
type Observer interface {
	// Started: c was given a core.
	Started(c *Call, now time.Duration)
	// Stopped: c left its core, preempted (done false, it will be pushed again) or for
	// good (done true; c.OutputTokens holds what it produced when the owner set it).
	Stopped(c *Call, now time.Duration, done bool)
}

// Config parameterises a policy; each policy reads the fields it needs.
type Config struct {
	Name  string
	Slice time.Duration // rr's time slice
}

// policies maps a name to its constructor. Policies in other files register here.
var policies = map[string]func(Config) (Policy, error){
	"fifo": func(Config) (Policy, error) { return &fifo{name: "fifo"}, nil },
	"rr": func(c Config) (Policy, error) {
		if c.Slice <= 0 {
			return nil, fmt.Errorf("rr needs a positive time slice, got %v", c.Slice)
		}
		return &fifo{name: "rr", slice: c.Slice}, nil
	},
	"priority": func(Config) (Policy, error) { return &priority{}, nil },
}

// PolicyNames lists the policies NewPolicy accepts, sorted.
func PolicyNames() []string {
	out := make([]string, 0, len(policies))
	for n := range policies {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// NewPolicy builds the policy cfg names ("" is fifo).
func NewPolicy(cfg Config) (Policy, error) {
	if cfg.Name == "" {
		cfg.Name = "fifo"
	}
	mk, ok := policies[cfg.Name]
	if !ok {
		return nil, fmt.Errorf("unknown scheduling policy %q (known: %v)", cfg.Name, PolicyNames())
	}
	return mk(cfg)
}

// fifo serves calls in the order they (re-)entered the queue. With a slice it is round
// robin: a call that used up its slice while others waited goes to the back.
type fifo struct {
	name  string
	slice time.Duration
	q     list.List
}

func (f *fifo) Name() string { return f.name }
func (f *fifo) Len() int     { return f.q.Len() }

func (f *fifo) Push(c *Call, _ time.Duration) { c.elem = f.q.PushBack(c) }

func (f *fifo) Pick(_ time.Duration, accept func(*Call) Verdict) *Call {
	for e := f.q.Front(); e != nil; e = e.Next() {
		c := e.Value.(*Call)
		switch accept(c) {
		case Take:
			f.q.Remove(e)
			c.elem = nil
			return c
		case Stop:
			return nil
		}
	}
	return nil
}

func (f *fifo) Remove(c *Call) bool {
	if c.elem == nil {
		return false
	}
	f.q.Remove(c.elem)
	c.elem = nil
	return true
}

func (f *fifo) Quantum(*Call) time.Duration { return f.slice }

// priority serves the highest Priority first, FIFO among equals.
type priority struct{ h callHeap }

func (p *priority) Name() string                { return "priority" }
func (p *priority) Len() int                    { return len(p.h) }
func (p *priority) Quantum(*Call) time.Duration { return 0 }
func (p *priority) Push(c *Call, _ time.Duration) {
	heap.Push(&p.h, c)
}

func (p *priority) Pick(_ time.Duration, accept func(*Call) Verdict) *Call {
	var skipped []*Call
	var got *Call
	for len(p.h) > 0 {
		c := heap.Pop(&p.h).(*Call)
		v := accept(c)
		if v == Take {
			got = c
			break
		}
		skipped = append(skipped, c)
		if v == Stop {
			break
		}
	}
	for _, c := range skipped {
		heap.Push(&p.h, c)
	}
	return got
}

func (p *priority) Remove(c *Call) bool {
	if c.hidx < 0 || c.hidx >= len(p.h) || p.h[c.hidx] != c {
		return false
	}
	heap.Remove(&p.h, c.hidx)
	return true
}

type callHeap []*Call

func (h callHeap) Len() int { return len(h) }
func (h callHeap) Less(i, j int) bool {
	if h[i].Priority != h[j].Priority {
		return h[i].Priority > h[j].Priority
	}
	return h[i].seq < h[j].seq
}
func (h callHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].hidx = i
	h[j].hidx = j
}
func (h *callHeap) Push(x any) {
	c := x.(*Call)
	c.hidx = len(*h)
	*h = append(*h, c)
}
func (h *callHeap) Pop() any {
	old := *h
	n := len(old)
	c := old[n-1]
	old[n-1] = nil
	c.hidx = -1
	*h = old[:n-1]
	return c
}
