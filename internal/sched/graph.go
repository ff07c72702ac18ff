package sched

import (
	"sort"
	"strconv"
	"strings"
	"time"
)

// Graph learns Agent Execution Graphs (after SAGA): for each class of program (Call.Class,
// else the agent), the graph of its steps, LLM call → tool → LLM call → … → end, from
// the programs it watches. States are small on purpose, so a class is learned from a
// few dozen programs: an LLM step is named by its depth (bucketed) and the tool it
// follows, a tool step by the tool. Each state counts which state followed it (end
// included) and smooths how long it took and, for LLM steps, how much the context grew.
//
// From the graph it predicts, for a program between steps, when it will next reuse its
// KV cache (its next LLM call) and how likely it is to end instead: the input of
// Bélády-style eviction and suspension, which throw out what is needed furthest ahead.
//
// It is pure and bounded: at most MaxClasses classes of MaxStates states each (the
// least recently used class goes first), and programs not heard of for Idle are
// forgotten.
type Graph struct {
	MaxClasses int           // default 64
	MaxStates  int           // per class; default 64
	Idle       time.Duration // forget a silent program after this; default 10 min

	classes map[string]*graphClass
	progs   map[string]*graphProg
	tick    uint64

	// prediction accuracy: |predicted − actual| time to the next LLM call, summed
	errSum time.Duration
	errN   int
}

// Program steps in the graph's own terms.
const (
	stateEnd   = "end"
	stateStart = "start"
)

type graphClass struct {
	name     string
	states   map[string]*graphState
	programs int // programs seen to end
	used     uint64
}

type graphState struct {
	next   map[string]int
	total  int
	dur    time.Duration // smoothed: tool run time, or LLM call time
	durN   int
	growth float64 // smoothed prompt tokens added since the previous LLM call (LLM states)
	grownN int
}

type graphProg struct {
	class   string
	depth   int    // LLM calls so far
	after   string // tool the next LLM call follows (stateStart at first)
	cur     string // the state of the latest step still unfollowed ("": none)
	llm     int    // LLM calls running or queued
	tools   int    // tools running
	toolAt  time.Duration
	tool    string
	ended   time.Duration // end of its latest LLM call
	tokens  int           // prompt of its latest LLM call
	seen    time.Duration
	predAt  time.Duration // predicted next LLM call, for accuracy
	hasPred bool
}

// NewGraph returns an empty graph with the default bounds.
func NewGraph() *Graph {
	return &Graph{MaxClasses: 64, MaxStates: 64, Idle: 10 * time.Minute,
		classes: map[string]*graphClass{}, progs: map[string]*graphProg{}}
}

// depthBucket groups an LLM call's depth in its program: exact for the first few
// calls, where programs of one kind differ most, then by doubling.
func depthBucket(d int) string {
	switch {
	case d < 4:
		return strconv.Itoa(d)
	case d < 6:
		return "4-5"
	case d < 10:
		return "6-9"
	case d < 16:
		return "10-15"
	}
	return "16+"
}

func llmState(depth int, after string) string { return "llm#" + depthBucket(depth) + "@" + after }
func toolState(tool string) string            { return "tool:" + tool }

func (g *Graph) class(name string) *graphClass {
	g.tick++
	c := g.classes[name]
	if c == nil {
		if len(g.classes) >= g.MaxClasses {
			var lru *graphClass
			for _, k := range g.classes {
				if lru == nil || k.used < lru.used {
					lru = k
				}
			}
			delete(g.classes, lru.name)
		}
		c = &graphClass{name: name, states: map[string]*graphState{}}
		g.classes[name] = c
	}
	c.used = g.tick
	return c
}

// state returns the class's state, or nil when the class is full and it is new: a
// class with more distinct steps than the bound is not learned past it.
func (c *graphClass) state(key string, max int) *graphState {
	st := c.states[key]
	if st == nil && len(c.states) < max {
		st = &graphState{next: map[string]int{}}
		c.states[key] = st
	}
	return st
}

// follow records that the program's pending state was followed by next.
func (g *Graph) follow(p *graphProg, next string) {
	if p.cur == "" {
		return
	}
	if st := g.class(p.class).state(p.cur, g.MaxStates); st != nil {
		st.next[next]++
		st.total++
	}
	p.cur = ""
}

func ema(old time.Duration, n int, d time.Duration) time.Duration {
	if n == 0 {
		return d
	}
	return (3*old + d) / 4
}

func (g *Graph) prog(program string, now time.Duration) *graphProg {
	p := g.progs[program]
	if p != nil {
		p.seen = now
	}
	return p
}

// CallArrived notes an LLM call of program, of class class, with a prompt of tokens.
func (g *Graph) CallArrived(program, class string, tokens int, now time.Duration) {
	p := g.prog(program, now)
	if p == nil {
		p = &graphProg{class: class, after: stateStart, seen: now}
		g.progs[program] = p
	}
	if p.hasPred {
		g.errSum += absDur(now - p.predAt)
		g.errN++
		p.hasPred = false
	}
	key := llmState(p.depth, p.after)
	g.follow(p, key)
	if st := g.class(p.class).state(key, g.MaxStates); st != nil && p.depth > 0 {
		st.growth = emaF(st.growth, st.grownN, float64(tokens-p.tokens))
		st.grownN++
	}
	p.tokens = tokens
	p.depth++
	p.llm++
	p.cur = ""
}

// CallEnded notes that an LLM call of program ended after running for service.
func (g *Graph) CallEnded(program string, service, now time.Duration) {
	p := g.prog(program, now)
	if p == nil || p.llm == 0 {
		return
	}
	p.llm--
	key := llmState(p.depth-1, p.after)
	if st := g.class(p.class).state(key, g.MaxStates); st != nil {
		st.dur = ema(st.dur, st.durN, service)
		st.durN++
	}
	p.cur, p.ended = key, now
	if r, ok := g.predict(p, now); ok && r.PEnd < 0.5 {
		p.predAt, p.hasPred = r.At, true
	}
}

// ToolStarted notes that program started tool.
func (g *Graph) ToolStarted(program, tool string, now time.Duration) {
	p := g.prog(program, now)
	if p == nil {
		return
	}
	g.follow(p, toolState(tool))
	p.tools++
	p.tool, p.toolAt, p.after = tool, now, tool
	if r, ok := g.predict(p, now); ok {
		p.predAt, p.hasPred = r.At, true
	}
}

// ToolEnded notes that program's tool ended.
func (g *Graph) ToolEnded(program, tool string, now time.Duration) {
	p := g.prog(program, now)
	if p == nil || p.tools == 0 {
		return
	}
	p.tools--
	if st := g.class(p.class).state(toolState(tool), g.MaxStates); st != nil {
		st.dur = ema(st.dur, st.durN, now-p.toolAt)
		st.durN++
	}
	if p.tools == 0 {
		p.cur = toolState(tool)
	}
}

// ProgramEnded notes that program finished: its pending step led to the end.
func (g *Graph) ProgramEnded(program string) {
	p := g.progs[program]
	if p == nil {
		return
	}
	g.follow(p, stateEnd)
	g.class(p.class).programs++
	delete(g.progs, program)
}

// Forget drops programs not heard of for Idle (their owner never said they ended).
func (g *Graph) Forget(now time.Duration) {
	for k, p := range g.progs {
		if p.llm == 0 && p.tools == 0 && now-p.seen >= g.Idle {
			delete(g.progs, k)
		}
	}
}

// Reuse is a prediction of a program's next use of its KV cache.
type Reuse struct {
	At   time.Duration // expected start of its next LLM call, should it make one
	PEnd float64       // probability it ends instead
}

// Horizon is the prediction as one time to order programs by: the expected wait
// stretched by the odds of ending, gap ÷ (1 − PEnd), so a program that probably ends
// counts as reusing its cache far ahead (never, if it surely ends: an hour).
func (r Reuse) Horizon(now time.Duration) time.Duration {
	const never = time.Hour
	if r.PEnd >= 0.999 {
		return now + never
	}
	gap := max(r.At-now, 0)
	return now + min(time.Duration(float64(gap)/(1-r.PEnd)), never)
}

// Predict is when program is expected to make its next LLM call, from now; ok is false
// when the graph knows too little (an unknown program or a state never seen), or the
// program has a call queued or running (it uses its cache now).
func (g *Graph) Predict(program string, now time.Duration) (Reuse, bool) {
	p := g.progs[program]
	if p == nil || p.llm > 0 {
		return Reuse{}, false
	}
	return g.predict(p, now)
}

func (g *Graph) predict(p *graphProg, now time.Duration) (Reuse, bool) {
	c := g.classes[p.class]
	if c == nil {
		return Reuse{}, false
	}
	if p.tools > 0 {
		st := c.states[toolState(p.tool)]
		if st == nil || st.durN == 0 {
			return Reuse{}, false
		}
		// An overdue tool is presumed about to return.
		return Reuse{At: max(p.toolAt+st.dur, now), PEnd: st.pEnd()}, true
	}
	if p.cur == "" {
		return Reuse{}, false
	}
	gap, pEnd, ok := c.after(p.cur)
	if !ok {
		return Reuse{}, false
	}
	return Reuse{At: max(p.ended+gap, now), PEnd: pEnd}, true
}

// AfterCall predicts, for program's LLM call now running, how long after it ends the
// program will make its next one, and the probability it ends instead: the hint an
// engine can keep with the call's cached blocks.
func (g *Graph) AfterCall(program string) (gap time.Duration, pEnd float64, ok bool) {
	p := g.progs[program]
	if p == nil || p.depth == 0 {
		return 0, 0, false
	}
	c := g.classes[p.class]
	if c == nil {
		return 0, 0, false
	}
	return c.after(llmState(p.depth-1, p.after))
}

// after is the expected time from the end of LLM state key to the next LLM call, given
// one follows, and the probability none does.
func (c *graphClass) after(key string) (time.Duration, float64, bool) {
	st := c.states[key]
	if st == nil || st.total == 0 {
		return 0, 0, false
	}
	var sum float64
	var n int
	for next, cnt := range st.next {
		if next == stateEnd {
			continue
		}
		// An LLM step that follows at once (a parallel branch) reuses the cache now.
		var d time.Duration
		if strings.HasPrefix(next, "tool:") {
			t := c.states[next]
			if t == nil || t.durN == 0 {
				return 0, 0, false // a tool whose run time is not known yet
			}
			d = t.dur
		}
		sum += float64(d) * float64(cnt)
		n += cnt
	}
	pEnd := st.pEnd()
	if n == 0 {
		return 0, pEnd, true
	}
	return time.Duration(sum / float64(n)), pEnd, true
}

func (st *graphState) pEnd() float64 {
	if st.total == 0 {
		return 0
	}
	return float64(st.next[stateEnd]) / float64(st.total)
}

// Accuracy is the mean absolute error of the predictions made when a program went
// between steps, against when its next LLM call came, over n predictions.
func (g *Graph) Accuracy() (mae time.Duration, n int) {
	if g.errN == 0 {
		return 0, 0
	}
	return g.errSum / time.Duration(g.errN), g.errN
}

func absDur(d time.Duration) time.Duration {
	if d < 0 {
		return -d
	}
	return d
}

func emaF(old float64, n int, v float64) float64 {
	if n == 0 {
		return v
	}
	return (3*old + v) / 4
}

// GraphState is one learned step of a class, for reading (the admin API).
type GraphState struct {
	State string `json:"state"`
	// Next is the probability of each following state ("end": the program ends).
	Next map[string]float64 `json:"next"`
	// Seen is how many times the state was followed by another.
	Seen int `json:"seen"`
	// Duration is the smoothed run time: the tool's, or the LLM call's.
	DurationMS float64 `json:"duration_ms"`
	// Growth is the smoothed number of prompt tokens LLM calls in this state add to the
	// previous call's prompt.
	Growth float64 `json:"context_growth_tokens,omitempty"`
}

// GraphClass is what the graph learned about one class of program.
type GraphClass struct {
	Class    string       `json:"class"`
	Programs int          `json:"programs"`
	States   []GraphState `json:"states"`
}

// Snapshot is the whole graph, classes and states in name order.
func (g *Graph) Snapshot() []GraphClass {
	out := make([]GraphClass, 0, len(g.classes))
	for _, c := range g.classes {
		gc := GraphClass{Class: c.name, Programs: c.programs, States: make([]GraphState, 0, len(c.states))}
		for key, st := range c.states {
			gs := GraphState{State: key, Seen: st.total, Next: map[string]float64{},
				DurationMS: float64(st.dur) / float64(time.Millisecond), Growth: st.growth}
			for n, cnt := range st.next {
				gs.Next[n] = float64(cnt) / float64(st.total)
			}
			gc.States = append(gc.States, gs)
		}
		sort.Slice(gc.States, func(i, j int) bool { return gc.States[i].State < gc.States[j].State })
		out = append(out, gc)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Class < out[j].Class })
	return out
}
