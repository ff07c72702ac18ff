package workload

import (
	"math"
	"math/rand/v2"
	"time"
)

// gen builds one program from one random stream.
type gen struct {
	r      *rand.Rand
	scale  float64 // Options.Scale, applied to every tool time
	system int
	steps  []Step
	last   int // the step a sequential program continues from; -1 at the start
}

// step appends s and returns its index.
func (g *gen) step(s Step) int {
	g.steps = append(g.steps, s)
	return len(g.steps) - 1
}

// after returns the Deps of a step that waits only for step i (none at the start).
func after(i int) []int {
	if i < 0 {
		return nil
	}
	return []int{i}
}

// llm appends an LLM step that continues the sequential chain.
func (g *gen) llm(in, out int) {
	g.last = g.step(Step{Kind: LLM, Input: in, Output: out, Parent: g.last, Deps: after(g.last)})
}

// tool appends a tool step that continues the sequential chain.
func (g *gen) tool(name string, d time.Duration) {
	g.last = g.step(Step{Kind: Tool, Tool: name, ToolTime: d, Parent: g.last, Deps: after(g.last)})
}

// intn draws uniformly from lo..hi inclusive.
func (g *gen) intn(lo, hi int) int { return lo + g.r.IntN(hi-lo+1) }

// tokens draws a lognormal token count with the given mean (before clipping) and log
// standard deviation sigma, clipped to lo..hi. Lognormals fit request and response
// lengths of real chat and agent traces: most are short, a few are very long.
func (g *gen) tokens(mean, sigma float64, lo, hi int) int {
	median := mean * math.Exp(-sigma*sigma/2)
	n := int(math.Round(median * math.Exp(sigma*g.r.NormFloat64())))
	return min(max(n, lo), hi)
}

// wait draws a lognormal duration with the given median, clipped to lo..hi, then
// multiplies it by the tool-time scale, up to maxTime so that a huge scale cannot overflow
// a Duration. Rounding to the microsecond keeps traces readable.
func (g *gen) wait(median time.Duration, sigma float64, lo, hi time.Duration) time.Duration {
	d := float64(median) * math.Exp(sigma*g.r.NormFloat64())
	d = min(min(max(d, float64(lo)), float64(hi))*g.scale, float64(maxTime))
	return time.Duration(math.Round(d/float64(time.Microsecond))) * time.Microsecond
}

// toolSpec is one tool of a generator: how often it is picked and how long it takes.
type toolSpec struct {
	name   string
	weight float64
	median time.Duration
}

// pick chooses a tool with probability proportional to its weight.
func (g *gen) pick(tools []toolSpec) toolSpec {
	total := 0.0
	for _, t := range tools {
		total += t.weight
	}
	x := g.r.Float64() * total
	for _, t := range tools {
		if x < t.weight {
			return t
		}
		x -= t.weight
	}
	return tools[len(tools)-1] // only reached through floating-point rounding
}

// react: BFCL-style ReAct agents. ReAct (Yao et al., ICLR 2023) interleaves a short
// thought+action from the model with an observation from a tool; the Berkeley
// Function-Calling Leaderboard's multi-turn category gives the shape of the calls: a
// shared system prompt with the function schemas (~500 tokens) plus a task (~200), so
// the first call's prompt is ~700 tokens; short outputs (a function call, ~35 tokens);
// compact JSON tool results (50-150 tokens); fast API tools (50-500 ms). About 10 calls.
const (
	reactSystem                    = 500 // system prompt + function schemas, shared by all react programs
	reactCallsMin, reactCallsMax   = 8, 12
	reactTaskMin, reactTaskMax     = 150, 250 // the first call's Input
	reactResultMin, reactResultMax = 50, 150  // each later call's Input: the tool result
	reactOutMean, reactOutSigma    = 35, 0.35
	reactOutMin, reactOutMax       = 15, 80
	reactToolMedian                = 150 * time.Millisecond
	reactToolSigma                 = 0.6
	reactToolMin, reactToolMax     = 50 * time.Millisecond, 500 * time.Millisecond
)

var reactTools = []toolSpec{
	{"search", 3, reactToolMedian},
	{"lookup", 2, reactToolMedian},
	{"calculator", 1, reactToolMedian},
	{"get_weather", 1, reactToolMedian},
	{"http_get", 1, reactToolMedian},
}

func genReact(g *gen) {
	g.system = reactSystem
	calls := g.intn(reactCallsMin, reactCallsMax)
	for c := range calls {
		in := g.intn(reactResultMin, reactResultMax)
		if c == 0 {
			in = g.intn(reactTaskMin, reactTaskMax)
		} else {
			t := g.pick(reactTools)
			g.tool(t.name, g.wait(t.median, reactToolSigma, reactToolMin, reactToolMax))
		}
		g.llm(in, g.tokens(reactOutMean, reactOutSigma, reactOutMin, reactOutMax))
	}
}

// swe: coding agents on SWE-bench (SWE-agent, Yang et al. 2024; OpenHands). A trajectory
// is 20-60 turns (LLM calls); each turn's thought and command is 100-200 tokens, and
// observations (file views, search hits, test logs) pile up in the context, which ends
// at 16k-32k tokens — the range SWE-agent trajectories reach before their context or cost
// limits. The final context is drawn first and observation sizes are cut to land on it
// exactly, with lognormal shares so a few observations (a long file, a test log) dominate
// as in real trajectories. Tool times are long-tailed, 0.5-20 s, and differ per tool:
// opening a file is fast, running the tests slow.
const (
	sweSystem                = 2000 // system prompt, command docs and demonstration
	sweCallsMin, sweCallsMax = 20, 60
	sweTaskMin, sweTaskMax   = 300, 1200 // the first call's Input: the issue text
	sweOutMin, sweOutMax     = 100, 200
	sweFinalMin, sweFinalMax = 16000, 32000 // ContextAt of the last call
	sweObsMin                = 8            // the smallest observation ("File updated.")
	sweObsSigma              = 0.7
	sweToolSigma             = 0.8
	sweToolMin, sweToolMax   = 500 * time.Millisecond, 20 * time.Second
)

// The final context must leave room for sweObsMin per observation even in the worst draw
// (shortest final context, longest task, most calls, longest outputs). A negative constant
// does not convert to uint, so this line fails to compile if the constants above break it.
const _ = uint(sweFinalMin - sweSystem - sweTaskMax - (sweCallsMax-1)*(sweOutMax+sweObsMin))

var sweTools = []toolSpec{
	{"open", 3, 800 * time.Millisecond},
	{"edit", 3, time.Second},
	{"search", 2, 1500 * time.Millisecond},
	{"bash", 2, 3 * time.Second},
	{"run_tests", 1.5, 8 * time.Second},
}

func genSWE(g *gen) {
	g.system = sweSystem
	calls := g.intn(sweCallsMin, sweCallsMax)
	task := g.intn(sweTaskMin, sweTaskMax)
	outs := make([]int, calls)
	spent := 0 // outputs that end up in the final context: all but the last call's
	for c := range outs {
		outs[c] = g.intn(sweOutMin, sweOutMax)
		if c < calls-1 {
			spent += outs[c]
		}
	}
	final := g.intn(sweFinalMin, sweFinalMax)
	// Observations get what is left of the final context, at least sweObsMin each; the
	// constant assertion above proves extra >= 0 for every draw.
	nobs := calls - 1
	extra := final - sweSystem - task - spent - nobs*sweObsMin
	weights := make([]float64, nobs)
	total := 0.0
	for j := range weights {
		weights[j] = math.Exp(sweObsSigma * g.r.NormFloat64())
		total += weights[j]
	}
	// Cutting at floors of the cumulative share makes the observations sum to extra
	// exactly, whatever the rounding of each.
	obs := make([]int, nobs)
	cum, prev := 0.0, 0
	for j := range obs {
		cum += weights[j]
		cut := int(math.Floor(float64(extra) * cum / total))
		if j == nobs-1 {
			cut = extra
		}
		cut = min(max(cut, prev), extra)
		obs[j] = sweObsMin + cut - prev
		prev = cut
	}
	for c := range calls {
		in := task
		if c > 0 {
			t := g.pick(sweTools)
			g.tool(t.name, g.wait(t.median, sweToolSigma, sweToolMin, sweToolMax))
			in = obs[c-1]
		}
		g.llm(in, outs[c])
	}
}

// chat: ShareGPT-like conversations, the standard chat workload of serving papers
// (vLLM, Splitwise, DistServe). The ShareGPT figures: ~7 turns, ~256 new prompt
// tokens and ~277 output tokens per turn, both lognormal with long tails. The user's
// think time between turns (reading the answer, typing the next message) is a tool step
// named "user" of a few seconds. A short system prompt is shared by all conversations.
const (
	chatSystem                 = 100
	chatTurnsMin, chatTurnsMax = 3, 11 // uniform, mean 7
	chatInMean, chatInSigma    = 256, 0.8
	chatOutMean, chatOutSigma  = 277, 0.8
	chatTokMin, chatTokMax     = 8, 2048 // both Input and Output
	chatThinkMedian            = 3 * time.Second
	chatThinkSigma             = 0.6
	chatThinkMin, chatThinkMax = time.Second, 20 * time.Second
)

func genChat(g *gen) {
	g.system = chatSystem
	turns := g.intn(chatTurnsMin, chatTurnsMax)
	for t := range turns {
		if t > 0 {
			g.tool("user", g.wait(chatThinkMedian, chatThinkSigma, chatThinkMin, chatThinkMax))
		}
		g.llm(g.tokens(chatInMean, chatInSigma, chatTokMin, chatTokMax), g.tokens(chatOutMean, chatOutSigma, chatTokMin, chatTokMax))
	}
}

// lats: Language Agent Tree Search (Zhou et al., ICML 2024), a DAG. A root call reads the
// task. Then, per level of the tree, the chosen node is expanded into k candidate actions
// sampled in parallel (k LLM calls with the same Parent, so they share its whole prefix);
// a join — the environment executing the chosen candidate, a short tool step with Deps on
// all k — waits for every candidate and extends the chosen one (its Parent); an LLM call
// reads the observation and evaluates/reflects, becoming the next level's chosen node.
// The last level's evaluation is the answer. Outputs ~100 tokens (a thought and action).
// Steps: 1 + levels*(k+2), 21 to 43.
const (
	latsSystem                   = 1000 // instructions and few-shot trajectories
	latsTaskMin, latsTaskMax     = 100, 300
	latsLevelsMin, latsLevelsMax = 4, 6
	latsKMin, latsKMax           = 3, 5  // candidates per level, drawn per level
	latsHintMin, latsHintMax     = 8, 32 // a candidate's own Input: which sample it is
	latsObsMin, latsObsMax       = 50, 200
	latsOutMean, latsOutSigma    = 100, 0.4
	latsOutMin, latsOutMax       = 30, 300
	latsToolMedian               = 300 * time.Millisecond
	latsToolSigma                = 0.6
	latsToolMin, latsToolMax     = 50 * time.Millisecond, 2 * time.Second
)

func genLATS(g *gen) {
	g.system = latsSystem
	out := func() int { return g.tokens(latsOutMean, latsOutSigma, latsOutMin, latsOutMax) }
	g.llm(g.intn(latsTaskMin, latsTaskMax), out())
	levels := g.intn(latsLevelsMin, latsLevelsMax)
	for range levels {
		node := g.last
		k := g.intn(latsKMin, latsKMax)
		siblings := make([]int, k)
		for j := range siblings {
			siblings[j] = g.step(Step{Kind: LLM, Input: g.intn(latsHintMin, latsHintMax), Output: out(), Parent: node, Deps: []int{node}})
		}
		chosen := siblings[g.r.IntN(k)]
		g.last = g.step(Step{
			Kind: Tool, Tool: "env",
			ToolTime: g.wait(latsToolMedian, latsToolSigma, latsToolMin, latsToolMax),
			Parent:   chosen, Deps: siblings,
		})
		g.llm(g.intn(latsObsMin, latsObsMax), out())
	}
}
