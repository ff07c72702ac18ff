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

// ProgramEnder is implemented by policies that learn from whole programs: the
// scheduler tells them when one is over (Scheduler.EndProgram).
type ProgramEnder interface {
	ProgramEnded(program string)
}

// Waker is implemented by policies whose order changes with time alone, with no event
// to trigger a Dispatch (a group's hold on the cores lapsing): WakeAt is the next such
// time, ok false when there is none.
type Waker interface {
	WakeAt() (at time.Duration, ok bool)
}

// Ranker is implemented by policies whose order can be passed down to an engine that
// schedules by priority (vLLM's priority field, the simulator's priority mode): Rank 0
// is the most urgent.
type Ranker interface {
	Rank(c *Call) int
}

// Rank is the priority policy's order: the call's own priority, most urgent lowest.
func (p *priority) Rank(c *Call) int { return -c.Priority }

// Config parameterises a policy; each policy reads the fields it needs. A zero field
// takes the default written beside it, so Config{Name: "plas"} is a working setup.
type Config struct {
	Name  string
	Slice time.Duration // rr's time slice

	// plas / atlas: Queues levels; level i < Queues-1 holds programs whose attained
	// service is below QuantumBase*QuantumRatio^i, the last level the rest.
	Queues       int           // default 4
	QuantumBase  time.Duration // default 2s
	QuantumRatio float64       // default 4; must be > 1
	// Beta promotes a call to the top level once (program wait + call wait) /
	// (program service + call service) >= Beta. Default 2; +Inf turns promotion off.
	Beta float64

	// fair (VTC): the client a call is charged to (default: its agent), what a token
	// costs, and per-client weights (a client of weight 2 gets twice the tokens).
	FairKey      func(*Call) string
	InputWeight  float64            // default 1
	OutputWeight float64            // default 2
	Weights      map[string]float64 // by FairKey; missing means 1
	// slo: how far, in counter units, a client may be ahead of the least served
	// backlogged one and still have its calls ordered by deadline (0: twice the
	// costliest queued call, VTC's own bound).
	SLOBound float64

	// sjf: output length is predicted from the Neighbors most similar of the last
	// History finished calls; a call's predicted time is InputTokens*PrefillTime +
	// output*DecodeTime, and it runs in order of predicted time - Aging*time waited.
	Neighbors     int           // default 5
	History       int           // default 512
	PrefillTime   time.Duration // per input token; default 50µs
	DecodeTime    time.Duration // per output token; default 10ms
	Aging         float64       // default 1
	DefaultOutput int           // tokens assumed with no history and no MaxOutput; default 256

	// psjf: a call runs in order of its program's predicted remaining size (engine
	// time) + ProgramAging × the call's arrival. Default 0.3: in aios bench
	// (docs/bench.md) 1 left most of the gain on the table and 0.1 let a few large
	// programs wait too long.
	ProgramAging float64

	// sequential / hybrid: how long the group at the head keeps the cores after its last
	// call ends, waiting for its next one (an agent's tool call sits in between).
	// Default 5s; negative means no wait.
	Linger time.Duration

	// Per-program and per-client state is forgotten once it has had no call for
	// IdleTTL (default 10m), or beyond the MaxIdle (default 65536) longest idle.
	IdleTTL time.Duration
	MaxIdle int
}

// withDefaults fills the zero fields and rejects values no policy can use.
func (c Config) withDefaults() (Config, error) {
	orDefault(&c.Queues, 4)
	orDefault(&c.QuantumBase, 2*time.Second)
	orDefault(&c.QuantumRatio, 4)
	orDefault(&c.Beta, 2)
	orDefault(&c.InputWeight, 1)
	orDefault(&c.OutputWeight, 2)
	orDefault(&c.Neighbors, 5)
	orDefault(&c.History, 512)
	orDefault(&c.PrefillTime, 50*time.Microsecond)
	orDefault(&c.DecodeTime, 10*time.Millisecond)
	orDefault(&c.Aging, 1)
	orDefault(&c.ProgramAging, 0.3)
	orDefault(&c.DefaultOutput, 256)
	orDefault(&c.Linger, 5*time.Second)
	orDefault(&c.IdleTTL, 10*time.Minute)
	orDefault(&c.MaxIdle, 1<<16)
	switch {
	case c.Queues < 1:
		return c, fmt.Errorf("scheduler needs at least one queue, got %d", c.Queues)
	case c.QuantumBase < 0:
		return c, fmt.Errorf("quantum base must be positive, got %v", c.QuantumBase)
	case !(c.QuantumRatio > 1):
		return c, fmt.Errorf("quantum ratio must be above 1, got %v", c.QuantumRatio)
	case !(c.Beta > 0):
		return c, fmt.Errorf("beta must be positive, got %v", c.Beta)
	case !(c.SLOBound >= 0):
		return c, fmt.Errorf("slo's fairness bound must not be negative, got %v", c.SLOBound)
	case c.InputWeight < 0 || c.OutputWeight < 0:
		return c, fmt.Errorf("token weights must not be negative, got %v and %v", c.InputWeight, c.OutputWeight)
	case c.Neighbors < 1 || c.History < 1:
		return c, fmt.Errorf("sjf needs at least one neighbour and one call of history, got %d and %d", c.Neighbors, c.History)
	case c.PrefillTime < 0 || c.DecodeTime < 0 || c.Aging < 0 || c.ProgramAging < 0:
		return c, fmt.Errorf("sjf costs and aging must not be negative")
	case c.IdleTTL < 0 || c.MaxIdle < 0:
		return c, fmt.Errorf("idle TTL and limit must not be negative")
	}
	for k, w := range c.Weights {
		if !(w > 0) {
			return c, fmt.Errorf("weight of %q must be positive, got %v", k, w)
		}
	}
	return c, nil
}

func orDefault[T comparable](v *T, d T) {
	var zero T
	if *v == zero {
		*v = d
	}
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
	"priority":   func(Config) (Policy, error) { return &priority{}, nil },
	"plas":       func(c Config) (Policy, error) { return newPLAS(c, false) },
	"atlas":      func(c Config) (Policy, error) { return newPLAS(c, true) },
	"fair":       newFair,
	"slo":        newSLOFair,
	"sjf":        newSJF,
	"psjf":       newPSJF,
	"sequential": func(c Config) (Policy, error) { return newOrdered(c, "sequential", programGroup) },
	"hybrid":     func(c Config) (Policy, error) { return newOrdered(c, "hybrid", agentGroup) },
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
// DefaultPolicy orders the LLM module when the configuration names no policy. psjf
// with working-set admission had the lowest mean TCT at overload and tied the others
// below capacity in aios bench (docs/bench.md); it needs no tuning and learns from the
// programs it serves.
const DefaultPolicy = "psjf"

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
