package sched

import (
	"container/list"
	"sort"
	"time"
)

// fair is the Virtual Token Counter (Sheng et al., "Fairness in Serving Large Language
// Models", OSDI 2024). Each client (by default an agent) has a counter of the service
// it received, in weighted tokens: InputWeight per prompt token, OutputWeight per
// generated token, divided by the client's weight. The backlogged client with the
// smallest counter goes next, FCFS within a client. A client that sent nothing for a
// while does not bank credit: when it comes back its counter is lifted to the smallest
// counter of the backlogged clients (or, with none, to that of the last client to
// leave the backlog), so it shares from now on instead of monopolising the engine.
//
// VTC charges output per decoded token. The scheduler hears of a call only when it
// starts and stops, so a call is charged when it first starts for its prompt and for
// the output its client's calls produced on average (VTC's variant with length
// prediction), and trued up when it stops with the OutputTokens its owner reported:
// more as soon as it is known, a refund only when the call is done. Without the advance
// charge, a client's calls in flight would cost it nothing until they end, and an engine
// running many sequences at once would keep picking the client that has most of them.
// The service gap between backlogged clients stays within VTC's bound of two calls'
// cost when outputs are near their client's mean (tests assert it under random lengths
// with 1 to 16 calls in flight); outputs far from the mean can add up to one call's cost
// per call in flight.
type fair struct {
	key     func(*Call) string
	win     float64
	wout    float64
	weights map[string]float64

	clients   map[string]*client
	backlog   map[*client]struct{} // clients with calls queued
	lastLeft  *client              // the last client to leave the backlog
	calls     map[*Call]*fairCall
	n         int
	idle      idleSet[string]
	now       time.Duration
	byCounter []*client // Pick's scratch space
}

type client struct {
	key     string
	weight  float64
	counter float64
	q       list.List // of *Call, FCFS
	live    int       // calls queued or running
	outMean float64   // mean output of its finished calls, the advance charge
	outN    int
}

type fairCall struct {
	cl       *client
	elem     *list.Element
	prompted bool    // its prompt has been charged
	charged  float64 // output tokens charged so far, in advance or as reported
}

func agentKey(c *Call) string { return c.Agent }

func newFair(cfg Config) (Policy, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	f := &fair{
		key:     cfg.FairKey,
		win:     cfg.InputWeight,
		wout:    cfg.OutputWeight,
		weights: cfg.Weights,
		clients: make(map[string]*client),
		backlog: make(map[*client]struct{}),
		calls:   make(map[*Call]*fairCall),
		idle:    newIdleSet[string](cfg.IdleTTL, cfg.MaxIdle),
	}
	if f.key == nil {
		f.key = agentKey
	}
	return f, nil
}

func (f *fair) Name() string                { return "fair" }
func (f *fair) Len() int                    { return f.n }
func (f *fair) Quantum(*Call) time.Duration { return 0 }

func (f *fair) Push(c *Call, now time.Duration) {
	f.tick(now)
	fc := f.calls[c]
	if fc == nil {
		key := f.key(c)
		cl := f.clients[key]
		if cl == nil {
			cl = &client{key: key, weight: 1}
			if w, ok := f.weights[key]; ok {
				cl.weight = w
			}
			f.clients[key] = cl
		}
		if cl.live == 0 {
			f.idle.remove(key)
		}
		cl.live++
		fc = &fairCall{cl: cl}
		f.calls[c] = fc
	}
	cl := fc.cl
	if cl.q.Len() == 0 {
		f.lift(cl)
		f.backlog[cl] = struct{}{}
	}
	fc.elem = cl.q.PushBack(c)
	f.n++
}

// lift is VTC's counter lift for a client joining the backlog.
func (f *fair) lift(cl *client) {
	if len(f.backlog) == 0 {
		if f.lastLeft != nil {
			cl.counter = max(cl.counter, f.lastLeft.counter)
		}
		return
	}
	first := true
	var low float64
	for b := range f.backlog {
		if first || b.counter < low {
			low, first = b.counter, false
		}
	}
	cl.counter = max(cl.counter, low)
}

func (f *fair) Pick(now time.Duration, accept func(*Call) Verdict) *Call {
	f.tick(now)
	order := f.byCounter[:0]
	for cl := range f.backlog {
		order = append(order, cl)
	}
	// Ties go to the client whose oldest call came first, so equal counters are FCFS.
	sort.Slice(order, func(i, j int) bool {
		a, b := order[i], order[j]
		if a.counter != b.counter {
			return a.counter < b.counter
		}
		return a.q.Front().Value.(*Call).seq < b.q.Front().Value.(*Call).seq
	})
	f.byCounter = order
	defer clear(order)
	for _, cl := range order {
		for e := cl.q.Front(); e != nil; e = e.Next() {
			c := e.Value.(*Call)
			switch accept(c) {
			case Take:
				f.unqueue(c, f.calls[c])
				return c
			case Stop:
				return nil
			}
		}
	}
	return nil
}

func (f *fair) unqueue(c *Call, fc *fairCall) {
	cl := fc.cl
	cl.q.Remove(fc.elem)
	fc.elem = nil
	f.n--
	if cl.q.Len() == 0 {
		delete(f.backlog, cl)
		f.lastLeft = cl
	}
}

func (f *fair) Remove(c *Call) bool {
	fc := f.calls[c]
	if fc == nil || fc.elem == nil {
		return false
	}
	f.unqueue(c, fc)
	f.finish(c, fc)
	return true
}

func (f *fair) charge(cl *client, tokens float64, weight float64) {
	cl.counter += tokens * weight / cl.weight
}

// Started charges the prompt and the expected output once: a resumed call is the same
// request, and its re-prefill is the kernel's cost of preempting, not the client's.
func (f *fair) Started(c *Call, now time.Duration) {
	f.tick(now)
	fc := f.calls[c]
	if fc == nil || fc.prompted {
		return
	}
	fc.prompted = true
	f.charge(fc.cl, float64(c.InputTokens), f.win)
	expect := fc.cl.outMean
	if c.MaxOutput > 0 {
		expect = min(expect, float64(c.MaxOutput))
	}
	f.charge(fc.cl, expect, f.wout)
	fc.charged = expect
}

// Stopped charges output beyond what was charged as soon as it is known, and refunds an
// overcharge once the call is done and its output final.
func (f *fair) Stopped(c *Call, now time.Duration, done bool) {
	f.tick(now)
	fc := f.calls[c]
	if fc == nil {
		return
	}
	out := float64(c.OutputTokens)
	if out > fc.charged || (done && fc.prompted) {
		f.charge(fc.cl, out-fc.charged, f.wout)
		fc.charged = out
	}
	if done {
		if cl := fc.cl; c.OutputTokens > 0 {
			cl.outN++
			cl.outMean += (out - cl.outMean) / float64(min(cl.outN, outMeanWindow))
		}
		f.finish(c, fc)
	}
}

// outMeanWindow makes a client's mean output a moving average over about its last 32
// calls, so it follows a client whose calls change.
const outMeanWindow = 32

func (f *fair) finish(c *Call, fc *fairCall) {
	delete(f.calls, c)
	if fc.cl.live--; fc.cl.live == 0 {
		f.idle.add(fc.cl.key, f.now)
		f.tick(f.now)
	}
}

func (f *fair) tick(now time.Duration) {
	f.now = max(f.now, now)
	f.idle.expire(f.now, func(k string) { delete(f.clients, k) })
}

func (f *fair) live() int { return len(f.calls) }
