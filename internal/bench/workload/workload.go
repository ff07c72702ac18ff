// Package workload describes agent programs for the benchmark: sequences or DAGs of LLM
// calls and tool calls, where each LLM call's prompt extends the context of an earlier
// step, so prefix reuse across a program's calls is real and measurable.
//
// Programs come from built-in generators (react, swe, chat, lats, mixed; see Generate)
// or from a JSONL trace (ReadTrace). The package is pure: no goroutines, no clock, no I/O
// beyond the io.Reader and io.Writer it is handed, and every random choice comes from a
// PCG generator seeded explicitly, so the same seed always gives the same programs.
package workload

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"time"
)

// Kind says what a step does.
type Kind uint8

// The zero Kind is deliberately invalid, so a Step built without a Kind fails Validate
// instead of silently becoming an LLM call.
const (
	LLM  Kind = iota + 1 // an LLM call: Input new prompt tokens, Output generated tokens
	Tool                 // a tool call (or a user's think time): ToolTime of waiting
)

// String returns the name used in traces: "llm" or "tool".
func (k Kind) String() string {
	switch k {
	case LLM:
		return "llm"
	case Tool:
		return "tool"
	}
	return fmt.Sprintf("Kind(%d)", uint8(k))
}

// Step is one node of a program.
type Step struct {
	Kind Kind
	// Input is, for an LLM step, the new prompt tokens this step appends to its parent's
	// context (the user message or the tool result). Zero for tool steps.
	Input int
	// Output is, for an LLM step, the exact number of tokens to generate (the harness
	// sets ignore_eos). At least 1 for LLM steps, zero for tool steps.
	Output int
	// Tool names the tool ("search", "run_tests", "user" for think time), so that tool
	// durations can be reported per tool. Empty for LLM steps.
	Tool string
	// ToolTime is how long the tool runs. Zero for LLM steps.
	ToolTime time.Duration
	// Parent is the step whose end state this step's context extends; -1 is the program's
	// start (system prompt only). A sequential program has Parent = i-1. An LLM step's
	// prompt is the system prompt, every Input and Output along the Parent chain, and its
	// own Input (see ContextAt).
	Parent int
	// Deps are the steps that must finish before this one starts: [i-1] in a sequential
	// program, several for a join. Parent is always among Deps or their ancestors.
	Deps []int
}

// Program is one agent task: the unit the harness times (task completion time).
type Program struct {
	ID int
	// Agent is who issues the program ("agent-3"); the harness and the fairness metrics
	// group programs by it.
	Agent string
	// Kind is the generator name (react, swe, chat, lats) or, for a trace, the trace's
	// prefix label ("trace" unless the trace names one). Programs of one Kind have the
	// same system prompt, so they share a cached prefix across programs.
	Kind string
	// System is the system-prompt length in tokens; identical for all generated programs
	// of one Kind.
	System int
	Steps  []Step
	// Arrival is the open-loop arrival time; 0 for closed loop.
	Arrival time.Duration
}

// ContextAt returns the prompt tokens of step i: the system prompt, every Input and
// Output along its Parent chain, and its own Input. For a tool step (Input 0) it is the
// context the program has reached when the tool runs. It panics if i is out of range or
// the Parent chain does not point strictly backwards (a program that fails Validate).
func (p Program) ContextAt(i int) int {
	n := p.System + p.Steps[i].Input
	for j := p.Steps[i].Parent; j >= 0; {
		// Checked here as well as in Validate: a parent that does not point backwards
		// would make this loop run forever.
		if j >= i {
			panic(fmt.Sprintf("workload: program %d step %d: parent %d does not point backwards", p.ID, i, j))
		}
		n += p.Steps[j].Input + p.Steps[j].Output
		i, j = j, p.Steps[j].Parent
	}
	return n
}

// Limits on a single value, so that sums over a program (ContextAt, total tool time)
// cannot overflow and a corrupt trace fails loudly instead of producing absurd runs.
const (
	maxTokens = 1 << 24                // tokens in one Input, Output or System (16.7M)
	maxTime   = 1e9 * time.Millisecond // one tool time or arrival (about 11.6 days)
	maxSteps  = 1 << 20                // steps in one program
)

// Validate checks that p can be run: at least one step; every dep and parent points to an
// earlier step (so the graph has no cycles); a step's parent is among its deps or their
// ancestors (its context exists when it starts); LLM steps generate at least one token
// and carry no tool fields; tool steps carry no tokens; no value is negative or absurd.
func (p Program) Validate() error {
	if len(p.Steps) == 0 {
		return fmt.Errorf("program %d: no steps", p.ID)
	}
	if len(p.Steps) > maxSteps {
		return fmt.Errorf("program %d: %d steps, more than the limit of %d", p.ID, len(p.Steps), maxSteps)
	}
	if p.System < 0 || p.System > maxTokens {
		return fmt.Errorf("program %d: system prompt of %d tokens, want 0..%d", p.ID, p.System, maxTokens)
	}
	if p.Arrival < 0 || p.Arrival > maxTime {
		return fmt.Errorf("program %d: arrival %v, want 0..%v", p.ID, p.Arrival, maxTime)
	}
	for i := range p.Steps {
		if err := checkStep(p.Steps, i); err != nil {
			return fmt.Errorf("program %d step %d: %w", p.ID, i, err)
		}
	}
	return nil
}

// checkStep validates steps[i] against steps[:i]. ReadTrace calls it as each line arrives,
// so a trace error names its line; Validate calls it for every step.
func checkStep(steps []Step, i int) error {
	s := steps[i]
	switch s.Kind {
	case LLM:
		if s.Output < 1 || s.Output > maxTokens {
			return fmt.Errorf("llm step generates %d tokens, want 1..%d", s.Output, maxTokens)
		}
		if s.Input < 0 || s.Input > maxTokens {
			return fmt.Errorf("llm step appends %d input tokens, want 0..%d", s.Input, maxTokens)
		}
		if s.Tool != "" || s.ToolTime != 0 {
			return fmt.Errorf("llm step has tool fields (tool %q, time %v)", s.Tool, s.ToolTime)
		}
	case Tool:
		if s.Input != 0 || s.Output != 0 {
			return fmt.Errorf("tool step has tokens (input %d, output %d); a tool's result is the next llm step's input", s.Input, s.Output)
		}
		if s.ToolTime < 0 || s.ToolTime > maxTime {
			return fmt.Errorf("tool time %v, want 0..%v", s.ToolTime, maxTime)
		}
	default:
		return fmt.Errorf("invalid step kind %v", s.Kind)
	}
	if s.Parent < -1 || s.Parent >= i {
		return fmt.Errorf("parent %d is not an earlier step (want -1..%d)", s.Parent, i-1)
	}
	for k, d := range s.Deps {
		if d < 0 || d >= i {
			return fmt.Errorf("dep %d is not an earlier step (want 0..%d)", d, i-1)
		}
		if slices.Contains(s.Deps[:k], d) {
			return fmt.Errorf("dep %d listed twice", d)
		}
	}
	if s.Parent >= 0 && !reaches(steps, i, s.Parent) {
		return fmt.Errorf("parent %d is not among the deps %v or their ancestors, so its context may not exist when the step starts", s.Parent, s.Deps)
	}
	return nil
}

// reaches reports whether target is an ancestor of step from through Deps. Deps point
// backwards, so the search never descends below target.
func reaches(steps []Step, from, target int) bool {
	if slices.Contains(steps[from].Deps, target) {
		return true // the common case (sequential programs, lats siblings) costs no allocation
	}
	seen := make(map[int]bool)
	stack := slices.Clone(steps[from].Deps)
	for len(stack) > 0 {
		d := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if d == target {
			return true
		}
		if d < target || seen[d] {
			continue
		}
		seen[d] = true
		stack = append(stack, steps[d].Deps...)
	}
	return false
}

// Options tune Generate. The zero value is the default.
type Options struct {
	// Agents is how many agents issue the programs, named "agent-0".."agent-N-1" and
	// assigned round-robin. 0 means 8.
	Agents int
	// Heavy, if above 1, makes agent-0 issue Heavy times as many programs as each other
	// agent (`aios bench --heavy 4`), interleaved evenly, for fairness experiments.
	// Values up to 1 mean every agent issues the same number.
	Heavy float64
	// Burst, when set, limits Heavy to the programs whose index falls in that fraction of
	// the run ([From, To) of n): agent-0 bursts there and sends as much as the others
	// elsewhere. BurstArrivals raises the arrival rate over the same programs, so the
	// burst adds load instead of taking it from the other agents.
	Burst *Burst
	// Scale multiplies every tool time (and chat think time); 0 means 1. Lower values
	// make the engine, rather than the tools, the bottleneck.
	Scale float64
}

// Burst is a window of a run, in fractions of its programs by index: 0.25 to 0.75 is the
// middle half.
type Burst struct{ From, To float64 }

// Valid reports whether b is a non-empty window within [0, 1].
func (b Burst) Valid() bool { return b.From >= 0 && b.From < b.To && b.To <= 1 }

// span is the window's programs of n: indices lo to hi-1.
func (b Burst) span(n int) (lo, hi int) {
	return int(math.Round(b.From * float64(n))), int(math.Round(b.To * float64(n)))
}

// BurstArrivals returns arrivals (one schedule, ascending) with the gaps before the
// window's programs shortened by factor, and every later arrival moved up by what that
// saved: the rate over the window is factor times the rest's. With agents equal agents
// and agent-0 at heavy times its share in the window, factor (agents-1+heavy)/agents
// keeps every other agent's rate what it is outside the window.
func BurstArrivals(arrivals []time.Duration, b Burst, factor float64) []time.Duration {
	out := make([]time.Duration, len(arrivals))
	lo, hi := b.span(len(arrivals))
	var saved time.Duration
	for i, t := range arrivals {
		if i >= lo && i < hi {
			prev := time.Duration(0)
			if i > 0 {
				prev = arrivals[i-1]
			}
			gap := t - prev
			saved += gap - time.Duration(float64(gap)/factor)
		}
		out[i] = t - saved
	}
	return out
}

// DefaultAgents is the number of agents when Options.Agents is 0.
const DefaultAgents = 8

// maxAgents bounds Options.Agents: assignment keeps a counter per agent, and no benchmark
// runs more agents than this.
const maxAgents = 1 << 20

// Kinds lists the generator names Generate accepts.
func Kinds() []string { return []string{"react", "swe", "chat", "lats", "mixed"} }

type generator struct {
	name string
	gen  func(g *gen)
}

// generators maps a kind to its function, in the order mixed interleaves them. The index
// is also part of each program's random stream, so kinds never share random draws.
var generators = []generator{
	{"react", genReact},
	{"swe", genSWE},
	{"chat", genChat},
	{"lats", genLATS},
}

// Generate returns n programs of the given kind (react, swe, chat, lats or mixed), with
// IDs 0..n-1, agents assigned per opt, and Arrival 0 (set arrivals with Poisson for an
// open loop). Each program draws from its own random stream, seeded by (seed, kind,
// index), so program i is the same whatever n is, and the same seed always gives the same
// programs. mixed interleaves the four kinds in blocks of four, each block a seeded
// permutation, so counts differ by at most one and no agent is tied to one kind.
func Generate(kind string, n int, seed uint64, opt Options) ([]Program, error) {
	if n < 0 {
		return nil, fmt.Errorf("workload: %d programs requested, want 0 or more", n)
	}
	agents := opt.Agents
	if agents == 0 {
		agents = DefaultAgents
	}
	if agents < 0 || agents > maxAgents {
		return nil, fmt.Errorf("workload: %d agents, want 1..%d (0 for the default %d)", agents, maxAgents, DefaultAgents)
	}
	if math.IsNaN(opt.Heavy) || math.IsInf(opt.Heavy, 0) || opt.Heavy < 0 {
		return nil, fmt.Errorf("workload: heavy factor %v, want a finite value >= 0 (above 1 to weight agent-0)", opt.Heavy)
	}
	if opt.Burst != nil && !opt.Burst.Valid() {
		return nil, fmt.Errorf("workload: burst %v to %v, want a window within 0 to 1 with from below to", opt.Burst.From, opt.Burst.To)
	}
	scale := opt.Scale
	if scale == 0 {
		scale = 1
	}
	if math.IsNaN(scale) || math.IsInf(scale, 0) || scale < 0 {
		return nil, fmt.Errorf("workload: tool-time scale %v, want a finite value > 0", opt.Scale)
	}

	kinds := make([]int, n) // index into generators, per program
	switch kind {
	case "mixed":
		m := len(generators)
		for b := 0; b*m < n; b++ {
			perm := rand.New(rand.NewPCG(seed, stream(streamMixed, uint64(b)))).Perm(m)
			for j := 0; j < m && b*m+j < n; j++ {
				kinds[b*m+j] = perm[j]
			}
		}
	case "trace":
		return nil, fmt.Errorf("workload: the trace workload is read from a file; use ReadTrace")
	default:
		k := slices.IndexFunc(generators, func(g generator) bool { return g.name == kind })
		if k < 0 {
			return nil, fmt.Errorf("workload: unknown workload %q (want one of %v)", kind, Kinds())
		}
		for i := range kinds {
			kinds[i] = k
		}
	}

	owner := assignAgents(n, agents, opt.Heavy, opt.Burst)
	progs := make([]Program, n)
	for i := range progs {
		k := kinds[i]
		g := &gen{
			r:     rand.New(rand.NewPCG(seed, stream(uint64(k), uint64(i)))),
			scale: scale,
			last:  -1,
		}
		generators[k].gen(g)
		progs[i] = Program{
			ID:     i,
			Agent:  fmt.Sprintf("agent-%d", owner[i]),
			Kind:   generators[k].name,
			System: g.system,
			Steps:  g.steps,
		}
	}
	return progs, nil
}

// assignAgents gives program i to agent owner[i] by smooth weighted round-robin (nginx's
// algorithm): agent-0 has weight max(heavy, 1), the others 1. With equal weights this is
// plain round-robin; with heavy 4 and 8 agents each run of 11 programs has four of
// agent-0's, spread out rather than bunched, so the heavy agent competes all along.
// With a burst, agent-0 has its weight only within the window and 1 outside it.
func assignAgents(n, agents int, heavy float64, burst *Burst) []int {
	w := make([]float64, agents)
	for a := range w {
		w[a] = 1
	}
	lo, hi := 0, n
	if burst != nil {
		lo, hi = burst.span(n)
	}
	cur := make([]float64, agents)
	owner := make([]int, n)
	for i := range owner {
		w[0] = 1
		if i >= lo && i < hi {
			w[0] = max(heavy, 1)
		}
		total := float64(agents-1) + w[0]
		best := 0
		for a := range cur {
			cur[a] += w[a]
			if cur[a] > cur[best] {
				best = a
			}
		}
		cur[best] -= total
		owner[i] = best
	}
	return owner
}

// Stream identifiers beyond the generator indices, so no two uses share random draws.
const (
	streamMixed   = 0xfe
	streamPoisson = 0xff
)

// stream derives the second PCG seed from a purpose and an index. SplitMix64 scrambles it
// so that neighbouring indices start far apart in PCG's state space.
func stream(purpose, index uint64) uint64 {
	z := purpose<<56 ^ index + 0x9e3779b97f4a7c15
	z = (z ^ z>>30) * 0xbf58476d1ce4e5b9
	z = (z ^ z>>27) * 0x94d049bb133111eb
	return z ^ z>>31
}

// Poisson returns the arrival times of n programs arriving as a Poisson process of
// ratePerMin programs per minute, starting at 0: gaps are exponential with mean
// 60/ratePerMin seconds, so the first arrival is one gap after 0. An infinite rate puts
// every arrival at 0. It panics if ratePerMin is not positive, since no schedule exists.
func Poisson(ratePerMin float64, n int, seed uint64) []time.Duration {
	if !(ratePerMin > 0) {
		panic(fmt.Sprintf("workload: Poisson rate %v programs/min, want > 0", ratePerMin))
	}
	if n <= 0 {
		return nil
	}
	r := rand.New(rand.NewPCG(seed, stream(streamPoisson, 0)))
	mean := 60 / ratePerMin // seconds
	out := make([]time.Duration, n)
	t := 0.0
	for i := range out {
		// Summing in float seconds and converting each time keeps rounding from
		// accumulating over long schedules.
		t += r.ExpFloat64() * mean
		out[i] = time.Duration(t * float64(time.Second))
	}
	return out
}
