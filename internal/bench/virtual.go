package bench

import (
	"container/heap"
	"errors"
	"fmt"
	"hash/fnv"
	"strconv"
	"time"

	"github.com/aios-go/aios/internal/bench/metrics"
	"github.com/aios-go/aios/internal/bench/workload"
	"github.com/aios-go/aios/internal/llm/sim"
	"github.com/aios-go/aios/internal/sched"
)

// Result is what one arm produced on one workload.
type Result struct {
	Programs []metrics.Program
	Calls    []metrics.Call
	Span     time.Duration          // first arrival to last finish
	Engine   sim.Stats              // summed over engines
	Util     Utilisation            // virtual mode only
	Belady   *metrics.Belady        // with Setup.Belady
	Graph    *metrics.GraphAccuracy // +aeg arms
}

// Utilisation is how the engines were used over a run, averaged over engines: the
// fraction of the span they were stepping, the mean batch (sequences per step, weighted
// by step time) while they were, and the mean KV-cache occupancy over the span (blocks
// held by requests; cached-but-free blocks count as free, as in vLLM's gauge).
type Utilisation struct {
	Busy  float64
	Batch float64
	KV    float64
}

// RunVirtual runs progs under arm on fresh simulated engines in virtual time. With
// agents > 0 it is a closed loop: that many agents each start the next program when
// theirs ends; otherwise programs arrive at their Arrival times (open loop).
func RunVirtual(setup Setup, arm Arm, progs []workload.Program, agents int) (Result, error) {
	setup.defaults()
	if setup.Belady && setup.Mode != sim.ModeVLLM {
		return Result{}, ErrBeladyMode
	}
	v := &vsim{setup: setup, arm: arm, byID: map[uint64]*vcall{}}
	p, err := sim.LookupProfile(setup.Profile)
	if err != nil {
		return Result{}, err
	}
	for i := 0; i < setup.Cores; i++ {
		e, err := sim.NewEngine(sim.EngineConfig{Profile: p, Mode: setup.Mode, OffloadBytes: sim.GiBBytes(setup.KVOffloadGiB), RecordRefs: setup.Belady})
		if err != nil {
			return Result{}, err
		}
		v.engines = append(v.engines, &vengine{id: i, e: e})
	}
	if arm.Kernel {
		if _, err := sched.NewPolicy(policyConfig(setup, arm)); err != nil {
			return Result{}, err
		}
		v.sched = sched.New(func(sched.Module) sched.Policy {
			pol, _ := sched.NewPolicy(policyConfig(setup, arm))
			return pol
		})
		v.sched.MaxBypass = setup.MaxBypass
		if err := v.sched.SetRouting(sched.RoutingConfig{Mode: setup.Routing}); err != nil {
			return Result{}, err
		}
		if arm.WS {
			ws, err := swapConfig(setup, arm, p)
			if err != nil {
				return Result{}, err
			}
			v.sched.EnableWorkingSet(ws)
			v.swap.on = ws.Swap
		}
		for i := range v.engines {
			// The kernel keeps each engine within its sequence slots and its KV cache.
			if err := v.sched.AddCore(sched.CoreSpec{ID: sched.CoreID(i), Module: sched.LLM,
				MaxInflight: v.setup.maxInflight(p), MaxTokens: p.NumBlocks() * p.BlockSize}); err != nil {
				return Result{}, err
			}
		}
	}
	if arm.TTL {
		v.keep = sched.NewRetention()
		v.kvCap = p.NumBlocks() * p.BlockSize
	}
	v.est = v.keep
	if v.est == nil {
		v.est = sched.NewRetention()
	}
	v.progs = make([]*vprog, len(progs))
	for i := range progs {
		v.progs[i] = newVProg(&progs[i], i)
	}
	if agents > 0 {
		v.closed = true
		for a := 0; a < min(agents, len(progs)); a++ {
			v.nextClosed(a, 0)
		}
	} else {
		for _, vp := range v.progs {
			vp := vp
			v.at(vp.p.Arrival, func() { v.startProgram(vp) })
		}
	}
	for v.events.Len() > 0 {
		ev := heap.Pop(&v.events).(*event)
		v.now = ev.at
		ev.fn()
	}
	return v.result()
}

type event struct {
	at  time.Duration
	seq uint64
	fn  func()
}

type eventHeap []*event

func (h eventHeap) Len() int { return len(h) }
func (h eventHeap) Less(i, j int) bool {
	if h[i].at != h[j].at {
		return h[i].at < h[j].at
	}
	return h[i].seq < h[j].seq
}
func (h eventHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *eventHeap) Push(x any)   { *h = append(*h, x.(*event)) }
func (h *eventHeap) Pop() any {
	old := *h
	n := len(old)
	e := old[n-1]
	old[n-1] = nil
	*h = old[:n-1]
	return e
}

type vengine struct {
	id    int
	e     *sim.Engine
	busy  bool
	calls map[*sim.Request]*vcall
	// utilisation: time stepping, and sequences and KV occupancy integrated over it
	busyTime time.Duration
	seqSec   float64
	kvSec    float64
}

type vprog struct {
	p        *workload.Program
	idx      int
	agent    string
	arrival  time.Duration
	started  bool
	ctx      [][]uint32 // context at the end of each step
	children []int      // how many steps extend each step's context
	pending  []int      // unfinished deps per step
	done     int
	failed   bool
	finish   time.Duration
	queued   time.Duration
	exec     time.Duration
	tools    time.Duration
	slot     int      // closed loop: the agent slot running it
	eng      *vengine // of its latest call
}

type vcall struct {
	id        uint64
	prog      *vprog
	step      int
	prompt    []uint32
	seed      uint64
	output    int
	produced  int
	submitted time.Duration // first submission
	sliceAt   time.Duration // current slice's submission to the engine
	req       *sim.Request
	eng       *vengine
	sc        *sched.Call
	first     time.Duration
	hasFirst  bool
	metrics   metrics.Call
	attempts  int
}

type vsim struct {
	setup   Setup
	arm     Arm
	now     time.Duration
	events  eventHeap
	seq     uint64
	engines []*vengine
	rr      int
	sched   *sched.Scheduler
	byID    map[uint64]*vcall
	nextID  uint64
	progs   []*vprog
	calls   []metrics.Call
	closed  bool
	queue   int // closed loop: next program to start
	timerAt time.Duration
	timerOn bool
	keep    *sched.Retention // tool-aware KV retention (+ttl arms)
	kvCap   int
	est     *sched.Retention // tool durations learned, for the kernel's expectations
	swap    vswap
}

func (v *vsim) at(t time.Duration, fn func()) {
	v.seq++
	heap.Push(&v.events, &event{at: max(t, v.now), seq: v.seq, fn: fn})
}

func newVProg(p *workload.Program, idx int) *vprog {
	vp := &vprog{p: p, idx: idx, agent: p.Agent, arrival: p.Arrival,
		ctx: make([][]uint32, len(p.Steps)), children: make([]int, len(p.Steps)), pending: make([]int, len(p.Steps))}
	for i, s := range p.Steps {
		if s.Parent >= 0 {
			vp.children[s.Parent]++
		}
		vp.pending[i] = len(s.Deps)
	}
	return vp
}

// nextClosed starts the next unstarted program on agent slot a.
func (v *vsim) nextClosed(slot int, at time.Duration) {
	if v.queue >= len(v.progs) {
		return
	}
	vp := v.progs[v.queue]
	v.queue++
	vp.slot = slot
	vp.agent = "agent-" + strconv.Itoa(slot)
	vp.arrival = at
	v.at(at, func() { v.startProgram(vp) })
}

func (v *vsim) startProgram(vp *vprog) {
	vp.started = true
	vp.arrival = v.now
	for i := range vp.p.Steps {
		if vp.pending[i] == 0 {
			v.startStep(vp, i)
		}
	}
}

// tokenIDs are deterministic ids for a text of n tokens named by key.
func tokenIDs(dst []uint32, key uint64, n int) []uint32 {
	for i := 0; i < n; i++ {
		dst = append(dst, uint32(mix(key, i)%100000)+1000)
	}
	return dst
}

// mix is the i-th value of a splitmix64-style sequence named by key.
func mix(key uint64, i int) uint64 {
	x := key ^ uint64(i+1)*0x9e3779b97f4a7c15
	x ^= x >> 31
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 29
	return x
}

func hashKey(parts ...string) uint64 {
	h := fnv.New64a()
	for _, p := range parts {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	return h.Sum64()
}

// parentCtx is the context a step extends, cut to its own length when several steps
// extend it, so appending for one never writes into another's.
func (vp *vprog) parentCtx(step int) []uint32 {
	par := vp.p.Steps[step].Parent
	if par < 0 {
		return tokenIDs(make([]uint32, 0, vp.p.System+1024), hashKey("system", vp.p.Kind), vp.p.System)
	}
	c := vp.ctx[par]
	if vp.children[par] > 1 {
		return c[:len(c):len(c)]
	}
	return c
}

func (v *vsim) startStep(vp *vprog, i int) {
	s := vp.p.Steps[i]
	base := vp.parentCtx(i)
	switch s.Kind {
	case workload.Tool:
		vp.ctx[i] = base
		vp.tools += s.ToolTime
		v.toolStarted(vp, s.Tool)
		v.at(v.now+s.ToolTime, func() {
			v.est.Observe(s.Tool, s.ToolTime) // v.keep too: with +ttl it is v.est
			v.toolEnded(vp, s.Tool)
			v.stepDone(vp, i)
		})
	default:
		prompt := tokenIDs(base, hashKey("input", strconv.Itoa(vp.p.ID), strconv.Itoa(i)), s.Input)
		v.nextID++
		c := &vcall{id: v.nextID, prog: vp, step: i, prompt: prompt, output: max(s.Output, 1),
			seed: hashKey("out", strconv.Itoa(vp.p.ID), strconv.Itoa(i)), submitted: v.now}
		c.metrics = metrics.Call{Program: vp.p.ID, Agent: vp.agent}
		v.byID[c.id] = c
		v.submit(c)
	}
}

func (v *vsim) stepDone(vp *vprog, i int) {
	if vp.failed {
		return
	}
	vp.done++
	for j, s := range vp.p.Steps {
		for _, d := range s.Deps {
			if d == i {
				if vp.pending[j]--; vp.pending[j] == 0 && !vp.failed {
					v.startStep(vp, j)
				}
			}
		}
	}
	if vp.done == len(vp.p.Steps) {
		v.endProgram(vp)
	}
}

func (v *vsim) endProgram(vp *vprog) {
	vp.finish = v.now
	v.forget(vp)
	vp.ctx = nil
	v.swap.forget(vp)
	if v.sched != nil {
		v.sched.EndProgram(strconv.Itoa(vp.p.ID))
	}
	if v.closed {
		v.nextClosed(vp.slot, v.now)
	}
}

// request builds the engine request for c's next slice: a continuation of what it has
// produced so far, as the kernel resumes a preempted call.
func (v *vsim) request(c *vcall) *sim.Request {
	prompt := c.prompt
	if c.produced > 0 {
		prompt = prompt[:len(prompt):len(prompt)]
		for j := 0; j < c.produced; j++ {
			prompt = append(prompt, sim.OutputToken(c.seed, j))
		}
	}
	r := &sim.Request{ID: c.id<<8 | uint64(c.attempts&0xff), Prompt: prompt, MaxTokens: c.output - c.produced,
		EOSAt: -1, Seed: c.seed, Offset: c.produced}
	if v.keep != nil {
		if tool, ok := c.prog.nextTool(c.step); ok {
			r.KVTTL = v.keep.TTL(tool, len(prompt)+r.MaxTokens, v.kvCap)
		}
	}
	if v.arm.AEG {
		r.ReuseAfter = v.reuseHint(c.prog)
	}
	return r
}

// class names the program by its system prompt, as the kernel does (programClass):
// programs of one kind share it.
func (vp *vprog) class() string {
	if vp.p.System == 0 {
		return ""
	}
	return "system:" + strconv.FormatUint(hashKey("system", vp.p.Kind), 16)
}

// nextTool names the tool step that continues from LLM step i, if one does: the call
// ends in a tool call and the program will be back when the tool returns.
func (vp *vprog) nextTool(i int) (string, bool) {
	for _, s := range vp.p.Steps {
		if s.Kind == workload.Tool && s.Parent == i {
			return s.Tool, true
		}
	}
	return "", false
}

func (v *vsim) submit(c *vcall) {
	if v.arm.Kernel {
		c.sc = &sched.Call{ID: c.id, Agent: c.prog.agent, Program: strconv.Itoa(c.prog.p.ID), Module: sched.LLM,
			Tokens: len(c.prompt) + c.output, InputTokens: len(c.prompt), MaxOutput: c.output,
			Class: c.prog.class()}
		if v.setup.SLO.enabled() {
			c.sc.Deadline = v.setup.SLO.objective(c.prog.p).Deadline(c.prog.arrival, v.now)
		}
		if v.setup.Routing == sched.CacheAware {
			c.sc.Prefix = blockHashes(c.prompt)
		}
		if err := v.sched.Submit(c.sc, v.now); err != nil {
			v.failCall(c)
			return
		}
		v.dispatch()
		return
	}
	g := v.engines[engineFor(v.arm, strconv.Itoa(c.prog.p.ID), v.rr, len(v.engines))]
	v.rr++
	v.toEngine(c, g)
}

// toEngine hands c's next slice to engine g; a refusal (naive mode's out-of-memory) is
// retried with backoff as an agent framework would.
func (v *vsim) toEngine(c *vcall, g *vengine) bool {
	r := v.request(c)
	c.sliceAt = v.now
	if err := g.e.Submit(r, v.now); err != nil {
		c.metrics.Retries++
		c.attempts++
		retry := agentRetry(v.setup, v.arm)
		if c.attempts >= retry.Attempts {
			v.failCall(c)
			return false
		}
		v.at(v.now+retry.delay(c.attempts-1), func() {
			if v.arm.Kernel {
				v.submit(c)
			} else {
				v.toEngine(c, g)
			}
		})
		return false
	}
	c.req, c.eng = r, g
	c.prog.eng = g
	if g.calls == nil {
		g.calls = map[*sim.Request]*vcall{}
	}
	g.calls[r] = c
	v.kick(g)
	return true
}

func (v *vsim) kick(g *vengine) {
	if g.busy || g.e.Idle() {
		return
	}
	g.busy = true
	res := g.e.Step(v.now)
	d := res.End - res.Start
	g.busyTime += d
	g.seqSec += float64(res.NumSeqs) * d.Seconds()
	g.kvSec += g.e.Stats().KVUsage * d.Seconds()
	// The engine reuses the result's slices on its next step, which handling this one
	// can start; keep copies.
	res.Emitted = append([]*sim.Request(nil), res.Emitted...)
	res.Finished = append([]*sim.Request(nil), res.Finished...)
	// The step's outcome is known now but takes effect at its end: a call that finishes
	// in it is past preempting.
	for _, r := range res.Finished {
		if c := g.calls[r]; c != nil && c.sc != nil {
			c.sc.NoPreempt = true
		}
	}
	v.at(res.End, func() {
		g.busy = false
		v.stepEnded(g, res)
		v.kick(g)
	})
}

func (v *vsim) stepEnded(g *vengine, res sim.StepResult) {
	for _, r := range res.Emitted {
		if c := g.calls[r]; c != nil && !c.hasFirst {
			c.hasFirst, c.first = true, r.FirstToken
		}
	}
	for _, r := range res.Finished {
		c := g.calls[r]
		if c == nil {
			continue
		}
		delete(g.calls, r)
		v.sliceStats(c, r)
		c.produced += r.NumOutput
		v.swap.lastRequest(c.prog, r, g)
		v.callDone(c)
	}
	if v.arm.Kernel {
		v.dispatch()
	}
}

// sliceStats adds one engine request's figures to its call.
func (v *vsim) sliceStats(c *vcall, r *sim.Request) {
	c.metrics.PromptTokens += len(r.Prompt)
	c.metrics.CachedTokens += r.NumCached
	c.metrics.Preemptions += r.Preemptions
	c.metrics.Queued += r.Scheduled - c.sliceAt
}

func (v *vsim) callDone(c *vcall) {
	c.req, c.eng = nil, nil
	vp := c.prog
	m := &c.metrics
	m.OutputTokens = c.produced
	m.Latency = v.now - c.submitted
	if c.hasFirst {
		m.TTFT = c.first - c.submitted
	}
	// Kernel queueing counts as queued time too: everything before the engine ran it.
	m.Queued = max(m.Queued, 0)
	if v.arm.Kernel && c.sc != nil {
		m.Queued += c.sc.Waited
		v.sched.SliceEnded(c.sc, false, c.produced, v.now)
	}
	vp.queued += m.Queued
	vp.exec += m.Latency - m.Queued
	v.calls = append(v.calls, *m)
	delete(v.byID, c.id)
	if vp.failed {
		return // a sibling call failed the program; nothing more runs for it
	}
	ctx := c.prompt
	for j := 0; j < c.produced; j++ {
		ctx = append(ctx, sim.OutputToken(c.seed, j))
	}
	vp.ctx[c.step] = ctx
	v.stepDone(vp, c.step)
}

func (v *vsim) failCall(c *vcall) {
	c.metrics.Failed = true
	c.metrics.Latency = v.now - c.submitted
	v.calls = append(v.calls, c.metrics)
	delete(v.byID, c.id)
	vp := c.prog
	if !vp.failed {
		vp.failed = true
		vp.finish = v.now
		vp.ctx = nil
		if v.closed {
			v.nextClosed(vp.slot, v.now)
		}
	}
}

// dispatch applies the kernel's decisions: stop calls whose quantum expired, start the
// calls that now fit, and wake up again at the next quantum expiry.
func (v *vsim) dispatch() {
	// The same round the kernel's dispatcher runs (sched.Round).
	round := v.sched.Round(v.now)
	v.applySwaps(round.Swaps)
	for _, sc := range round.Stop {
		c := v.byID[sc.ID]
		if c == nil || c.req == nil {
			v.sched.SliceEnded(sc, true, 0, v.now)
			continue
		}
		g, r := c.eng, c.req
		g.e.Cancel(r, v.now)
		delete(g.calls, r)
		v.sliceStats(c, r)
		c.produced += r.NumOutput
		c.req, c.eng = nil, nil
		v.sched.SliceEnded(sc, true, 0, v.now)
	}
	for _, a := range round.Start {
		c := v.byID[a.Call.ID]
		if !v.toEngine(c, v.engines[a.Core]) {
			// Refused by the engine: free the slot; toEngine scheduled the retry.
			v.sched.Complete(c.sc, v.now)
		}
	}
	if len(round.Stop) > 0 {
		// As the kernel does once a stopped slice is back in its queue: a new round,
		// now, in which the slots the stopped calls freed are given out.
		v.dispatch()
		return
	}
	// A deadline not after now was just handled by this very dispatch.
	if at, ok := round.Next, round.HasNext; ok && at > v.now && (!v.timerOn || at < v.timerAt) {
		v.timerOn, v.timerAt = true, at
		v.at(at, func() {
			if v.timerAt == at {
				v.timerOn = false
			}
			v.dispatch()
		})
	}
}

func (v *vsim) result() (Result, error) {
	var res Result
	var first, last time.Duration
	seen := false
	for _, vp := range v.progs {
		if !vp.started {
			continue
		}
		if vp.finish == 0 && !vp.failed {
			return Result{}, fmt.Errorf("program %d never finished: the simulation stalled (%d of %d steps done, %d calls in flight)", vp.p.ID, vp.done, len(vp.p.Steps), len(v.byID))
		}
		if !seen || vp.arrival < first {
			first, seen = vp.arrival, true
		}
		last = max(last, vp.finish)
		res.Programs = append(res.Programs, metrics.Program{ID: vp.p.ID, Agent: vp.agent, Arrival: vp.arrival,
			Finish: vp.finish, Queued: vp.queued, Executing: vp.exec, InTools: vp.tools, Failed: vp.failed})
	}
	res.Calls = v.calls
	if v.arm.AEG {
		mae, n := v.sched.Graph().Accuracy()
		res.Graph = &metrics.GraphAccuracy{MAES: mae.Seconds(), Predictions: n}
	}
	res.Span = last - first
	var busy time.Duration
	var seqSec, kvSec float64
	if v.setup.Belady {
		res.Belady = &metrics.Belady{}
	}
	for _, g := range v.engines {
		res.addEngine(g.e.Stats())
		if res.Belady != nil {
			res.Belady.Add(beladyOf(g.e))
		}
		busy += g.busyTime
		seqSec += g.seqSec
		kvSec += g.kvSec
	}
	if n := float64(len(v.engines)); res.Span > 0 && busy > 0 {
		res.Util = Utilisation{Busy: busy.Seconds() / n / res.Span.Seconds(), Batch: seqSec / busy.Seconds(),
			KV: kvSec / n / res.Span.Seconds()}
	}
	return res, nil
}

// addEngine sums one engine's counters into the result's.
func (r *Result) addEngine(st sim.Stats) {
	r.Engine.Preemptions += st.Preemptions
	r.Engine.Pins += st.Pins
	r.Engine.PrefixQueries += st.PrefixQueries
	r.Engine.PrefixHits += st.PrefixHits
	r.Engine.PromptTokens += st.PromptTokens
	r.Engine.GenerationTokens += st.GenerationTokens
	r.Engine.Steps += st.Steps
	r.Engine.OffloadStoredBlocks += st.OffloadStoredBlocks
	r.Engine.OffloadLoadedBlocks += st.OffloadLoadedBlocks
	r.Engine.OffloadLoadTime += st.OffloadLoadTime
	r.Engine.ExternalQueries += st.ExternalQueries
	r.Engine.ExternalHits += st.ExternalHits
}

// blockHashes names a prompt's 16-token blocks by hashes chained from its start, as the
// engine's prefix cache does, for cache-aware routing.
func blockHashes(ids []uint32) []uint64 {
	out := make([]uint64, 0, len(ids)/16)
	h := uint64(14695981039346656037)
	for i, id := range ids {
		h ^= uint64(id)
		h *= 1099511628211
		if (i+1)%16 == 0 {
			out = append(out, h)
		}
	}
	return out
}

// ErrBeladyLive and ErrBeladyMode refuse a MIN comparison the run cannot make.
var (
	ErrBeladyLive = errors.New("--belady needs --virtual: over HTTP the engines' prefix caches are out of the harness's reach, so there is no reference string to replay")
	ErrBeladyMode = errors.New("--belady needs --engine-mode vllm: the naive engine has no prefix cache")
)

// beladyOf replays one engine's reference string under MIN with the engine's own
// capacity, and counts the engine's own misses on the same string.
func beladyOf(e *sim.Engine) metrics.Belady {
	refs := e.Refs()
	bs := int64(e.Profile().BlockSize)
	misses, repeated := refs.Misses()
	m := sim.MIN(refs.Hashes(), e.Stats().NumBlocks)
	return metrics.Belady{
		Refs: int64(refs.Len()), Misses: int64(misses), MINMisses: int64(m.Misses), Compulsory: int64(m.Compulsory),
		Recomputed: int64(repeated) * bs, MINRecomputed: int64(m.Misses-m.Compulsory) * bs,
	}
}
