package bench

import (
	"context"
	"fmt"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aios-go/aios/api"
	"github.com/aios-go/aios/internal/bench/workload"
	"github.com/aios-go/aios/internal/kernel"
	"github.com/aios-go/aios/internal/llm"
	"github.com/aios-go/aios/internal/llm/sim"
	"github.com/aios-go/aios/internal/sched"
)

// This file feeds one scripted event sequence (LLM calls arriving, running calls
// finishing) to the kernel's dispatcher and to the virtual bench's driver (vsim's
// submit, dispatch and callDone), and requires the same decisions from both after every
// event: the same calls started on the same cores, the same calls running and waiting,
// and the same tokens held on each core.

// diffCall is one LLM call of the script: its program (and agent), prompt and output
// sizes in tokens.
type diffCall struct {
	label  string
	agent  string
	prog   int
	prompt int
	output int
}

// diffEvent is a call arriving (submit names it), a running call finishing (the one
// that started first, oldest, or last, newest, ties broken by label), or the clock
// moving on by advance (time slices and quanta expire).
type diffEvent struct {
	submit  string
	finish  string // "oldest" or "newest"
	advance time.Duration
}

func (e diffEvent) String() string {
	switch {
	case e.submit != "":
		return "submit " + e.submit
	case e.advance > 0:
		return "advance " + e.advance.String()
	}
	return "finish " + e.finish
}

// diffScriptDef is a script: its calls and the events that drive them.
type diffScriptDef struct {
	calls  []diffCall
	events []diffEvent
}

// at is the script's clock at event i: a millisecond per event, plus the advances
// up to it.
func (sd diffScriptDef) at(i int) time.Duration {
	d := time.Duration(i) * time.Millisecond
	for _, ev := range sd.events[:i+1] {
		d += ev.advance
	}
	return d
}

// diffStep is what a driver decided after one event.
type diffStep struct {
	Event   string
	Started []string // label@core, sorted
	Running []string // label@core, sorted
	Waiting []string // sorted
	Tokens  []int    // tokens in flight per core
}

// diffScript: three agents' calls on two cores of two slots and 300 tokens each, so
// that the token budget, the slots and the routing all bind at some point.
var diffScript = diffScriptDef{
	calls: []diffCall{
		{"a1", "agent-a", 1, 100, 50},
		{"a2", "agent-a", 1, 100, 50},
		{"a3", "agent-a", 1, 60, 40},
		{"a4", "agent-a", 1, 80, 30},
		{"b1", "agent-b", 2, 200, 80},
		{"b2", "agent-b", 2, 40, 20},
		{"c1", "agent-c", 3, 120, 100},
		{"c2", "agent-c", 3, 30, 20},
	},
	events: []diffEvent{
		{submit: "a1"}, {submit: "a2"}, {submit: "a3"}, {submit: "a4"},
		{submit: "b1"}, {submit: "c1"}, {submit: "b2"},
		{finish: "oldest"},
		{submit: "c2"},
		{finish: "newest"},
		{finish: "oldest"},
		{finish: "oldest"},
		{finish: "newest"},
		{finish: "oldest"},
		{finish: "oldest"},
		{finish: "oldest"},
	},
}

// preemptScript: six one-call programs on the same cores; four run, two wait, and the
// clock moves past rr's time slice and PLAS's first quantum, so both preempt (under
// working-set admission, which keeps a stopped call's context resident), twice.
var preemptScript = diffScriptDef{
	calls: []diffCall{
		{"p1", "agent-p", 11, 100, 50},
		{"p2", "agent-q", 12, 100, 50},
		{"p3", "agent-r", 13, 100, 50},
		{"p4", "agent-s", 14, 100, 50},
		{"p5", "agent-t", 15, 100, 50},
		{"p6", "agent-u", 16, 60, 20},
	},
	events: []diffEvent{
		{submit: "p1"}, {submit: "p2"}, {submit: "p3"}, {submit: "p4"}, {submit: "p5"}, {submit: "p6"},
		{advance: 2500 * time.Millisecond},
		{finish: "oldest"},
		{advance: 2500 * time.Millisecond},
		{finish: "newest"},
		{finish: "oldest"},
		{advance: 2500 * time.Millisecond},
		{finish: "oldest"},
		{finish: "oldest"},
		{finish: "oldest"},
	},
}

// diffTCT are the TCT objectives of diffScript's programs (one per agent) under
// "+deadlines": the program that arrives last has the nearest deadline, so EDF
// reorders what fair would run.
var diffTCT = map[int]time.Duration{1: 10 * time.Second, 2: 3 * time.Second, 3: time.Second}

const (
	diffCores       = 2
	diffMaxInflight = 2
	diffMaxTokens   = 300
	// diffWSCapacity is the working set's KV capacity in the +ws case: less than the
	// cores', so that admission, not the cores' budgets, holds programs back.
	diffWSCapacity = 150
	// diffWSPreemptCapacity admits every program of preemptScript: the cores' slots,
	// not admission, make calls wait, and a stopped call's program stays admitted.
	diffWSPreemptCapacity = 2000
)

func diffCallByLabel(label string) diffCall {
	for _, c := range append(diffScript.calls, preemptScript.calls...) {
		if c.label == label {
			return c
		}
	}
	panic("no call " + label)
}

// running is one driver's record of a started call, for picking oldest and newest.
type running struct {
	label string
	core  int
	order int // the step it started in
}

// pick chooses the call a finish event ends among rs.
func pick(rs []running, which string) (running, error) {
	if len(rs) == 0 {
		return running{}, fmt.Errorf("finish %s: nothing is running", which)
	}
	s := append([]running(nil), rs...)
	sort.Slice(s, func(i, j int) bool {
		if s[i].order != s[j].order {
			return s[i].order < s[j].order
		}
		return s[i].label < s[j].label
	})
	if which == "newest" {
		return s[len(s)-1], nil
	}
	return s[0], nil
}

func labelsAt(rs []running) []string {
	out := []string{}
	for _, r := range rs {
		out = append(out, r.label+"@"+strconv.Itoa(r.core))
	}
	sort.Strings(out)
	return out
}

// waitingOf is submitted minus finished minus running, sorted.
func waitingOf(submitted []string, finished map[string]bool, rs []running) []string {
	run := map[string]bool{}
	for _, r := range rs {
		run[r.label] = true
	}
	out := []string{}
	for _, l := range submitted {
		if !finished[l] && !run[l] {
			out = append(out, l)
		}
	}
	sort.Strings(out)
	return out
}

// diffSetup is the bench setup both drivers are configured from.
func diffSetup() Setup {
	s := Setup{}
	s.defaults()
	return s
}

// virtualTrace runs the script through vsim's kernel glue: submit (sched.Submit and
// dispatch), and for a finish what stepEnded does for a finished engine request
// (callDone, then dispatch). The engines are the simulator's, but their steps are never
// run: the script, not the engine, says when calls end.
func virtualTrace(t *testing.T, sd diffScriptDef, policy string, wsCapacity int) []diffStep {
	t.Helper()
	setup := diffSetup()
	policy, slo := strings.CutSuffix(policy, "+deadlines")
	if slo {
		setup.SLO = SLOSpec{TCTSolo: 1, Solo: diffTCT}
	}
	policy, afs := strings.CutSuffix(policy, "+afs")
	policy, ws := strings.CutSuffix(policy, "+ws")
	arm := Arm{Name: "kernel:" + policy, Kernel: true, Policy: policy, WS: ws, AFS: afs}
	v := &vsim{setup: setup, arm: arm, byID: map[uint64]*vcall{}}
	p, err := sim.LookupProfile(setup.Profile)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < diffCores; i++ {
		e, err := sim.NewEngine(sim.EngineConfig{Profile: p, Mode: setup.Mode})
		if err != nil {
			t.Fatal(err)
		}
		v.engines = append(v.engines, &vengine{id: i, e: e})
	}
	// As RunVirtual builds it, with the script's core sizes instead of the profile's.
	if _, err := sched.NewPolicy(policyConfig(setup, arm)); err != nil {
		t.Fatal(err)
	}
	v.sched = sched.New(func(sched.Module) sched.Policy {
		pol, _ := sched.NewPolicy(policyConfig(setup, arm))
		return pol
	})
	v.sched.MaxBypass = setup.MaxBypass
	if err := v.sched.SetRouting(sched.RoutingConfig{Mode: setup.Routing}); err != nil {
		t.Fatal(err)
	}
	if arm.WS {
		cfg := wsConfig(setup, arm)
		cfg.Capacity = wsCapacity
		v.sched.EnableWorkingSet(cfg)
	}
	for i := range v.engines {
		if err := v.sched.AddCore(sched.CoreSpec{ID: sched.CoreID(i), Module: sched.LLM,
			MaxInflight: diffMaxInflight, MaxTokens: diffMaxTokens}); err != nil {
			t.Fatal(err)
		}
	}
	// One program per script program, with as many LLM steps as it has calls.
	progs := map[int]*vprog{}
	steps := map[int]int{}
	for _, c := range sd.calls {
		steps[c.prog]++
	}
	for _, c := range sd.calls {
		if progs[c.prog] != nil {
			continue
		}
		wp := &workload.Program{ID: c.prog, Agent: c.agent, Kind: "diff"}
		for range steps[c.prog] {
			wp.Steps = append(wp.Steps, workload.Step{Kind: workload.LLM, Parent: -1})
		}
		progs[c.prog] = newVProg(wp, len(progs))
	}
	next := map[int]int{} // next step per program
	calls := map[string]*vcall{}
	var rs []running
	var submitted []string
	finished := map[string]bool{}
	var trace []diffStep
	for i, ev := range sd.events {
		v.now = sd.at(i)
		before := map[string]bool{}
		for _, r := range rs {
			before[r.label] = true
		}
		if ev.advance > 0 {
			// What the driver's timer does when a quantum expires.
			v.dispatch()
		} else if ev.submit != "" {
			dc := diffCallByLabel(ev.submit)
			vp := progs[dc.prog]
			if next[dc.prog] == 0 {
				vp.arrival = v.now // the kernel starts a program's clock at its first call
			}
			v.nextID++
			c := &vcall{id: v.nextID, prog: vp, step: next[dc.prog], output: dc.output,
				prompt: tokenIDs(nil, hashKey("diff", dc.label), dc.prompt),
				seed:   hashKey("out", dc.label), submitted: v.now}
			next[dc.prog]++
			v.byID[c.id] = c
			calls[dc.label] = c
			submitted = append(submitted, dc.label)
			v.submit(c)
		} else {
			r, err := pick(rs, ev.finish)
			if err != nil {
				t.Fatalf("virtual, event %d (%v): %v", i, ev, err)
			}
			c := calls[r.label]
			g, req := c.eng, c.req
			g.e.Cancel(req, v.now)
			delete(g.calls, req)
			c.produced = c.output
			v.callDone(c)
			v.dispatch()
			finished[r.label] = true
		}
		// Read the decisions back from the calls handed to engines.
		rs = rs[:0]
		var started []running
		for _, l := range submitted {
			c := calls[l]
			if c.metrics.Retries > 0 || c.metrics.Failed {
				t.Fatalf("virtual: an engine refused %s", l)
			}
			if c.req == nil {
				continue
			}
			r := running{label: l, core: c.eng.id}
			r.order = startStep(trace, r, i)
			if !before[l] {
				r.order = i
				started = append(started, r)
			}
			rs = append(rs, r)
		}
		tokens := make([]int, diffCores)
		for _, l := range v.sched.Loads() {
			tokens[l.Spec.ID] = l.Tokens
		}
		step := diffStep{Event: ev.String(), Started: labelsAt(started), Running: labelsAt(rs),
			Waiting: waitingOf(submitted, finished, rs), Tokens: tokens}
		if q := v.sched.Queued(sched.LLM); q != len(step.Waiting) {
			t.Fatalf("virtual, event %d (%v): %d calls queued in the scheduler, want %d (%v)", i, ev, q, len(step.Waiting), step.Waiting)
		}
		trace = append(trace, step)
	}
	return trace
}

// startStep is the step in which r last started: the last step of trace whose Started
// names it (a preempted call starts again), or now when none does yet.
func startStep(trace []diffStep, r running, now int) int {
	name := r.label + "@" + strconv.Itoa(r.core)
	for i := len(trace) - 1; i >= 0; i-- {
		for _, x := range trace[i].Started {
			if x == name {
				return i
			}
		}
	}
	return now
}

// scriptCore is a kernel core that notes each call it runs (live, by label) and holds
// it until the test releases it or the kernel stops it.
type scriptCore struct {
	id      int
	mu      *sync.Mutex
	live    map[string]int // label -> core, while Generate runs
	release map[string]chan struct{}
}

func (s *scriptCore) Generate(ctx context.Context, req *llm.Request, emit func(llm.Delta)) (*llm.Result, error) {
	label, _, _ := strings.Cut(string(req.Messages[0].Content), "|")
	s.mu.Lock()
	ch := s.release[label]
	s.live[label] = s.id
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.live, label)
		s.mu.Unlock()
	}()
	select {
	case <-ch:
	case <-ctx.Done():
		return nil, context.Cause(ctx)
	}
	out := diffCallByLabel(label).output
	return &llm.Result{Text: "ok", FinishReason: "length", Usage: api.Usage{CompletionTokens: out}}, nil
}
func (s *scriptCore) Capabilities() llm.Capabilities { return llm.Capabilities{Resume: true} }
func (s *scriptCore) Capacity() llm.Capacity {
	return llm.Capacity{MaxInflight: diffMaxInflight, MaxTokens: diffMaxTokens}
}
func (s *scriptCore) Health(context.Context) error { return nil }
func (s *scriptCore) Close() error                 { return nil }

// diffMessage is a one-message prompt that the kernel estimates at n tokens, labelled.
func diffMessage(label string, n int) []api.Message {
	body := label + "|"
	body += strings.Repeat("x", 4*(n-4)-len(body))
	msgs := []api.Message{{Role: "user", Content: api.Content(body)}}
	if got := llm.EstimateTokens(msgs, nil); got != n {
		panic(fmt.Sprintf("prompt of %s estimates at %d tokens, want %d", label, got, n))
	}
	return msgs
}

// kernelTrace runs the script through a kernel over scripted cores, on a clock the
// script sets (kernel.Options.Clock). After each event it waits for the kernel to
// settle: a syscall of a separate module (memory) is submitted as a barrier, so that a
// dispatcher round runs after the event, until twice in a row no call is stopping and
// the calls the scheduler has running are exactly those the cores are running (a
// stopped slice has gone back to the queue, a started one has reached its core), with
// nothing changed in between.
func kernelTrace(t *testing.T, sd diffScriptDef, policy string, wsCapacity int) []diffStep {
	t.Helper()
	setup := diffSetup()
	var mu sync.Mutex
	live := map[string]int{}
	release := map[string]chan struct{}{}
	for _, c := range sd.calls {
		release[c.label] = make(chan struct{})
	}
	var cores []kernel.CoreConfig
	for i := 0; i < diffCores; i++ {
		cores = append(cores, kernel.CoreConfig{Model: "m", Backend: "script",
			Core: &scriptCore{id: i, mu: &mu, live: live, release: release}})
	}
	var clock atomic.Int64
	policy, slo := strings.CutSuffix(policy, "+deadlines")
	policy, afs := strings.CutSuffix(policy, "+afs")
	policy, ws := strings.CutSuffix(policy, "+ws")
	opts := kernel.Options{
		Policy: policy, TimeSlice: setup.TimeSlice, PolicyConfig: setup.Policy,
		MaxBypass: setup.MaxBypass, Routing: sched.RoutingConfig{Mode: setup.Routing},
		Services: map[sched.Module]kernel.Service{sched.Memory: kernel.ServiceFunc(
			func(context.Context, kernel.Request) (any, error) { return "ok", nil })},
		Clock: func() time.Duration { return time.Duration(clock.Load()) },
	}
	if ws {
		cfg := setup.WS
		cfg.Capacity = wsCapacity
		cfg.FairShare = afs
		opts.WorkingSet = &cfg
	}
	if slo {
		opts.SLO.Agents = map[string]sched.SLO{}
		for _, c := range sd.calls {
			opts.SLO.Agents[c.agent] = sched.SLO{TCT: diffTCT[c.prog]}
		}
	}
	k, err := kernel.New(opts, cores)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := k.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	}()
	ctx := context.Background()
	left := map[int]int{} // unfinished calls per program
	for _, c := range sd.calls {
		left[c.prog]++
	}
	sys := map[string]*kernel.Syscall{}
	byID := map[uint64]string{}
	var rs []running
	var submitted []string
	finished := map[string]bool{}
	var trace []diffStep
	// settle returns the running calls (label@core, sorted) once the kernel is still.
	settle := func(i int, ev diffEvent) []running {
		last, seen := "", false
		for try := 0; try < 500; try++ {
			if _, _, err := k.Do(ctx, kernel.Call{Agent: "barrier", Module: sched.Memory, Op: "barrier"}); err != nil {
				t.Fatalf("barrier: %v", err)
			}
			var sched []running
			stopping := false
			for _, v := range k.Snapshot().InFlight {
				if l, ok := byID[v.ID]; ok && v.State == "running" {
					sched = append(sched, running{label: l})
					stopping = stopping || v.Stopping
				}
			}
			mu.Lock()
			var onCores []running
			for l, c := range live {
				onCores = append(onCores, running{label: l, core: c})
			}
			same := !stopping && len(sched) == len(onCores)
			for _, r := range sched {
				if _, ok := live[r.label]; !ok {
					same = false
				}
			}
			mu.Unlock()
			if same {
				now := strings.Join(labelsAt(onCores), " ")
				if seen && now == last {
					return onCores
				}
				last, seen = now, true
				continue
			}
			seen = false
			time.Sleep(time.Millisecond)
		}
		t.Fatalf("kernel, event %d (%v): did not settle", i, ev)
		return nil
	}
	for i, ev := range sd.events {
		clock.Store(int64(sd.at(i)))
		before := map[string]bool{}
		for _, r := range rs {
			before[r.label] = true
		}
		switch {
		case ev.advance > 0:
			// The clock moved; the barrier's round sees it.
		case ev.submit != "":
			dc := diffCallByLabel(ev.submit)
			sc, err := k.SubmitLLM(ctx, kernel.LLMCall{Agent: dc.agent, Program: strconv.Itoa(dc.prog),
				Request: llm.Request{Messages: diffMessage(dc.label, dc.prompt), MaxTokens: dc.output}})
			if err != nil {
				t.Fatalf("kernel, event %d (%v): %v", i, ev, err)
			}
			sys[dc.label] = sc
			byID[sc.ID] = dc.label
			submitted = append(submitted, dc.label)
		default:
			r, err := pick(rs, ev.finish)
			if err != nil {
				t.Errorf("kernel, event %d (%v): %v", i, ev, err)
				return trace
			}
			close(release[r.label])
			if _, err := sys[r.label].Wait(ctx); err != nil {
				t.Fatalf("kernel: %s failed: %v", r.label, err)
			}
			finished[r.label] = true
			dc := diffCallByLabel(r.label)
			if left[dc.prog]--; left[dc.prog] == 0 {
				// vsim's callDone ends a program with its last step.
				k.EndProgram(strconv.Itoa(dc.prog))
			}
		}
		now := settle(i, ev)
		rs = rs[:0]
		var started []running
		for _, r := range now {
			r.order = startStep(trace, r, i)
			if !before[r.label] {
				r.order = i
				started = append(started, r)
			}
			rs = append(rs, r)
		}
		st := k.Status()
		tokens := make([]int, diffCores)
		for j, c := range st.LLMCores {
			tokens[j] = c.TokensInflight
		}
		step := diffStep{Event: ev.String(), Started: labelsAt(started), Running: labelsAt(rs),
			Waiting: waitingOf(submitted, finished, rs), Tokens: tokens}
		if q := st.Queued[sched.LLM.String()]; q != len(step.Waiting) {
			t.Fatalf("kernel, event %d (%v): %d calls queued, want %d (%v)", i, ev, q, len(step.Waiting), step.Waiting)
		}
		trace = append(trace, step)
	}
	// Release whatever the script left running, so that Shutdown returns.
	for _, r := range rs {
		close(release[r.label])
	}
	return trace
}

// TestKernelAndVirtualDriverDecideAlike feeds the kernel's dispatcher and the virtual
// bench's driver the same event script and requires the same decisions at every step,
// under fifo, fair, rr, plas, psjf, slo (with and without deadlines), and fifo, plas,
// psjf and slo with working-set admission (the kernel's default where the KV capacity
// is known), psjf with fair-share admission too. The script runs within the first time
// slice and quantum: it checks what rr and plas start, not their preemptions.
func TestKernelAndVirtualDriverDecideAlike(t *testing.T) {
	traces := map[string][]diffStep{}
	for _, policy := range []string{"fifo", "fair", "fifo+ws", "rr", "plas", "plas+ws", "psjf", "psjf+ws",
		"psjf+ws+afs", "slo", "slo+ws", "slo+deadlines", "slo+ws+deadlines"} {
		t.Run(policy, func(t *testing.T) {
			virt := virtualTrace(t, diffScript, policy, diffWSCapacity)
			kern := kernelTrace(t, diffScript, policy, diffWSCapacity)
			traces[policy] = virt
			compareTraces(t, virt, kern)
		})
	}
	// The script must be one on which the policy changes the decisions.
	if reflect.DeepEqual(traces["fifo"], traces["fair"]) {
		t.Errorf("fifo and fair decide alike on the script; it checks too little")
	}
	// Deadlines (the same objectives, given per program to the virtual driver and per
	// agent to the kernel) must change what slo decides.
	if reflect.DeepEqual(traces["slo"], traces["slo+deadlines"]) {
		t.Errorf("slo with and without deadlines decides alike on the script; it checks too little")
	}
	// And one on which working-set admission holds a program back.
	if reflect.DeepEqual(traces["fifo"], traces["fifo+ws"]) {
		t.Errorf("fifo with and without the working set decide alike on the script; it checks too little")
	}
}

// TestKernelAndVirtualDriverPreemptAlike: the same with time slices and quanta
// expiring, under rr and plas with working-set admission (where they preempt): both
// drivers must stop the same calls and start the same ones in their place.
func TestKernelAndVirtualDriverPreemptAlike(t *testing.T) {
	for _, policy := range []string{"rr+ws", "plas+ws"} {
		t.Run(policy, func(t *testing.T) {
			virt := virtualTrace(t, preemptScript, policy, diffWSPreemptCapacity)
			kern := kernelTrace(t, preemptScript, policy, diffWSPreemptCapacity)
			compareTraces(t, virt, kern)
			// The script must make the policy preempt: a call that ran stops before it
			// is finished and starts again later.
			stopped := false
			for i := 1; i < len(virt); i++ {
				if strings.HasPrefix(virt[i].Event, "advance") && len(virt[i].Started) > 0 {
					stopped = true
				}
			}
			if !stopped {
				t.Errorf("%s preempts nothing on the script; it checks too little", policy)
			}
		})
	}
}

func compareTraces(t *testing.T, virt, kern []diffStep) {
	t.Helper()
	for i := range max(len(virt), len(kern)) {
		var v, k diffStep
		if i < len(virt) {
			v = virt[i]
		}
		if i < len(kern) {
			k = kern[i]
		}
		if !reflect.DeepEqual(v, k) {
			t.Fatalf("step %d: the drivers decide differently\nvirtual: %+v\nkernel:  %+v", i, v, k)
		}
		t.Logf("step %2d %-14s started %v running %v waiting %v tokens %v", i, v.Event, v.Started, v.Running, v.Waiting, v.Tokens)
	}
}
