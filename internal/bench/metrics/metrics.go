// Package metrics computes the statistics `aios bench` reports per arm: task completion
// times, per-call latencies, where programs spend their time, fairness (slowdown and
// Jain's index) and prefix-cache reuse. It is pure: no goroutines, no clock, no I/O; the
// harness records what happened and hands it over.
package metrics

import (
	"math"
	"slices"
	"time"
)

// Percentile returns the q-quantile of xs (q in [0,1]) by linear interpolation between
// the closest ranks: with xs sorted, h = (n-1)q and the result is x[⌊h⌋] + (h-⌊h⌋)
// (x[⌊h⌋+1]-x[⌊h⌋]). This is Hyndman and Fan's definition 7, the default of numpy, R and
// Excel, so reported numbers can be checked with any of them. It returns NaN for an empty
// xs or a q outside [0,1], and does not modify xs. xs should not contain NaN.
func Percentile(xs []float64, q float64) float64 {
	if len(xs) == 0 || !(q >= 0 && q <= 1) {
		return math.NaN()
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	h := float64(len(s)-1) * q
	lo := int(math.Floor(h))
	if lo >= len(s)-1 {
		return s[len(s)-1]
	}
	return s[lo] + (h-float64(lo))*(s[lo+1]-s[lo])
}

// Mean returns the arithmetic mean of xs, NaN if xs is empty.
func Mean(xs []float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	sum := 0.0
	for _, x := range xs {
		sum += x
	}
	return sum / float64(len(xs))
}

// GeoMean returns the geometric mean of xs, the average SAGA reports task completion
// time by: one very slow program moves it less than it moves the mean. NaN if xs is
// empty or holds a value that is not positive.
func GeoMean(xs []float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	sum := 0.0
	for _, x := range xs {
		if x <= 0 {
			return math.NaN()
		}
		sum += math.Log(x)
	}
	return math.Exp(sum / float64(len(xs)))
}

// Jain returns Jain's fairness index (Σx)² / (n·Σx²) (Jain, Chiu and Hawe, 1984): 1 when
// all values are equal, 1/n when one value holds everything. NaN for an empty xs; 1 when
// every value is 0, since all are then equal.
func Jain(xs []float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	sum, sq := 0.0, 0.0
	for _, x := range xs {
		sum += x
		sq += x * x
	}
	if sq == 0 {
		return 1
	}
	return sum * sum / (float64(len(xs)) * sq)
}

// Program is what the harness recorded about one agent program.
type Program struct {
	ID    int
	Agent string
	// Arrival is when the program was issued, Finish when its last step ended.
	Arrival, Finish time.Duration
	// Queued, Executing and InTools split the program's time: waiting for an engine or
	// the kernel's scheduler, running on an engine, and waiting on tools (or a user).
	Queued, Executing, InTools time.Duration
	// Solo is the program's completion time when run alone on an empty engine; 0 if
	// unknown, in which case it has no slowdown.
	Solo   time.Duration
	Failed bool
}

// Call is what the harness recorded about one LLM call.
type Call struct {
	Program int
	Agent   string
	// TTFT is time to first token; Latency the whole call; Queued the part of it spent
	// waiting before the engine started on it.
	TTFT, Latency, Queued                    time.Duration
	PromptTokens, CachedTokens, OutputTokens int
	Preemptions, Retries                     int
	Failed                                   bool
}

// Arm is one row of the benchmark's results: one arm (direct, kernel:fifo, ...) on one
// workload. Times are in seconds. The JSON names are the ones the issue requires of
// results.json, so runs can be compared by tools. A statistic with no samples (no
// completed program, no call, no known solo time) is 0, because JSON has no NaN.
type Arm struct {
	Arm            string  `json:"arm"`
	Programs       int     `json:"programs"`
	Failed         int     `json:"failed_programs"`
	ProgramsPerMin float64 `json:"programs_per_min"`

	TCTMean float64 `json:"tct_mean_s"`
	// TCTGeoMean is the geometric mean of the programs' TCTs.
	TCTGeoMean float64 `json:"tct_geomean_s"`
	TCTP50     float64 `json:"tct_p50_s"`
	TCTP99     float64 `json:"tct_p99_s"`

	TTFTP50 float64 `json:"ttft_p50_s"`
	TTFTP99 float64 `json:"ttft_p99_s"`
	LatP50  float64 `json:"call_latency_p50_s"`
	LatP99  float64 `json:"call_latency_p99_s"`

	QueuedFrac float64 `json:"time_queued_frac"`
	ExecFrac   float64 `json:"time_executing_frac"`
	ToolFrac   float64 `json:"time_in_tools_frac"`

	SlowdownMean   float64 `json:"slowdown_mean"`
	JainSlowdown   float64 `json:"jain_slowdown"`
	SlowdownMaxMin float64 `json:"slowdown_max_min"`
	// WaitServiceMax is the largest ratio of a program's queued time to its executing
	// time: the bound plas/atlas's anti-starvation (β) is meant to keep.
	WaitServiceMax   float64            `json:"wait_service_max"`
	PerAgentSlowdown map[string]float64 `json:"per_agent_slowdown"`
	// AgentShares and AFSDeviation are Agent Fair Share (FairShare): by default every
	// agent is entitled to the mean of the per-agent slowdowns; an isolation run
	// replaces the light agents' entitlement with their slowdown without the heavy one.
	AgentShares  []AgentShare `json:"agent_fair_share"`
	AFSDeviation float64      `json:"afs_max_deviation"`

	PrefixHitRate float64 `json:"prefix_hit_rate"`
	// Engine utilisation (virtual mode; set by the harness): fraction of the span the
	// engines were stepping, mean sequences per step while they were, mean KV-cache
	// occupancy over the span.
	EngineBusy  float64 `json:"engine_busy"`
	BatchMean   float64 `json:"batch_mean"`
	KVOccupancy float64 `json:"kv_occupancy"`
	Preemptions int     `json:"preemptions"`
	// With a CPU KV offload tier (set by the harness): prompt tokens loaded back from it
	// instead of computed (they count in PrefixHitRate too), and the step time spent
	// waiting for those copies, summed over engines.
	OffloadLoadedTokens int64   `json:"offload_loaded_tokens,omitempty"`
	OffloadLoadS        float64 `json:"offload_load_s,omitempty"`
	FailedCalls         int     `json:"failed_calls"`
	Retries             int     `json:"retries"`

	// CapacityPerMin is set by the harness with --find-capacity, and omitted otherwise.
	CapacityPerMin *float64 `json:"capacity_per_min,omitempty"`
	// Belady is set by the harness with --belady, and omitted otherwise.
	Belady *Belady `json:"belady,omitempty"`
	// SLO is set by the harness with --slo-tct or --slo-ttft, and omitted otherwise.
	SLO *SLO `json:"slo,omitempty"`
	// Graph is how well the kernel's execution graphs predicted programs' next LLM
	// calls (+aeg arms).
	Graph *GraphAccuracy `json:"graph,omitempty"`
}

// Belady sets an arm's prefix-cache misses against Bélády's MIN on the arm's own block
// reference string, summed over engines (MIN runs on each engine's string with that
// engine's capacity). Recomputed tokens are misses on blocks referenced before, times
// the block size: prefill done, evicted and done again. MIN ignores what binds the
// engine (see docs/bench.md), so it is a lower bound, not an attainable target.
type Belady struct {
	Refs          int64 `json:"block_refs"`
	Misses        int64 `json:"block_misses"`
	MINMisses     int64 `json:"min_block_misses"`
	Compulsory    int64 `json:"compulsory_misses"` // first references: both miss them
	Recomputed    int64 `json:"recomputed_prefill_tokens"`
	MINRecomputed int64 `json:"min_recomputed_prefill_tokens"`
	// Ratio is Recomputed over MINRecomputed; absent when MIN recomputes nothing.
	Ratio *float64 `json:"recomputed_vs_min,omitempty"`
}

// Add sums another engine's figures into b and recomputes the ratio.
func (b *Belady) Add(o Belady) {
	b.Refs += o.Refs
	b.Misses += o.Misses
	b.MINMisses += o.MINMisses
	b.Compulsory += o.Compulsory
	b.Recomputed += o.Recomputed
	b.MINRecomputed += o.MINRecomputed
	b.Ratio = nil
	if b.MINRecomputed > 0 {
		r := float64(b.Recomputed) / float64(b.MINRecomputed)
		b.Ratio = &r
	}
}

// Summarize computes an arm's row.
//
//   - Programs counts every program, Failed the failed ones. ProgramsPerMin is completed
//     (not failed) programs over span, the measurement window, in minutes: pass the
//     programs that finished within the window.
//   - TCT (task completion time, Finish-Arrival) statistics cover completed programs only:
//     a failed program's time says nothing about how fast work gets done.
//   - TTFT and call latency cover calls that did not fail.
//   - The time split is the completed programs' summed Queued, Executing and InTools,
//     each over their total, so the three add up to 1 even when a program's parallel
//     calls overlap in wall time.
//   - Slowdown is (Finish-Arrival)/Solo for each completed program with Solo > 0.
//     SlowdownMean averages programs; PerAgentSlowdown averages each agent's programs;
//     JainSlowdown is Jain's index over the per-agent means, and SlowdownMaxMin their
//     largest over smallest: both measure how evenly agents are slowed, so a heavy agent
//     with many programs counts once.
//   - PrefixHitRate is cached over prompt tokens, summed over calls that did not fail.
//     Preemptions and Retries sum over all calls; FailedCalls counts failed calls.
func Summarize(arm string, progs []Program, calls []Call, span time.Duration) Arm {
	a := Arm{Arm: arm, Programs: len(progs), PerAgentSlowdown: map[string]float64{}}

	var tct, slow []float64
	var queued, exec, tools time.Duration
	agentSlow := map[string][]float64{}
	for _, p := range progs {
		if p.Failed {
			a.Failed++
			continue
		}
		t := p.Finish - p.Arrival
		tct = append(tct, t.Seconds())
		queued += p.Queued
		exec += p.Executing
		tools += p.InTools
		if p.Executing > 0 {
			a.WaitServiceMax = max(a.WaitServiceMax, float64(p.Queued)/float64(p.Executing))
		}
		if p.Solo > 0 {
			s := float64(t) / float64(p.Solo)
			slow = append(slow, s)
			agentSlow[p.Agent] = append(agentSlow[p.Agent], s)
		}
	}
	if span > 0 {
		a.ProgramsPerMin = float64(len(tct)) / span.Minutes()
	}
	a.TCTMean = orZero(Mean(tct))
	a.TCTGeoMean = orZero(GeoMean(tct))
	a.TCTP50 = orZero(Percentile(tct, 0.50))
	a.TCTP99 = orZero(Percentile(tct, 0.99))
	if total := queued + exec + tools; total > 0 {
		a.QueuedFrac = float64(queued) / float64(total)
		a.ExecFrac = float64(exec) / float64(total)
		a.ToolFrac = float64(tools) / float64(total)
	}

	a.SlowdownMean = orZero(Mean(slow))
	// Agents in sorted order: map iteration is random, and float sums in a different
	// order differ in the last bits, which would make same-seed runs differ.
	agents := make([]string, 0, len(agentSlow))
	for ag := range agentSlow {
		agents = append(agents, ag)
	}
	slices.Sort(agents)
	perAgent := make([]float64, len(agents))
	counts := map[string]int{}
	for k, ag := range agents {
		perAgent[k] = Mean(agentSlow[ag])
		a.PerAgentSlowdown[ag] = perAgent[k]
		counts[ag] = len(agentSlow[ag])
	}
	a.AgentShares, a.AFSDeviation = FairShare(a.PerAgentSlowdown, counts, nil)
	a.JainSlowdown = orZero(Jain(perAgent))
	// A zero minimum (a program that took no time) would give +Inf, which JSON cannot hold.
	if len(perAgent) > 0 && slices.Min(perAgent) > 0 {
		a.SlowdownMaxMin = slices.Max(perAgent) / slices.Min(perAgent)
	}

	var ttft, lat []float64
	var prompt, cached int
	for _, c := range calls {
		a.Preemptions += c.Preemptions
		a.Retries += c.Retries
		if c.Failed {
			a.FailedCalls++
			continue
		}
		ttft = append(ttft, c.TTFT.Seconds())
		lat = append(lat, c.Latency.Seconds())
		prompt += c.PromptTokens
		cached += c.CachedTokens
	}
	a.TTFTP50 = orZero(Percentile(ttft, 0.50))
	a.TTFTP99 = orZero(Percentile(ttft, 0.99))
	a.LatP50 = orZero(Percentile(lat, 0.50))
	a.LatP99 = orZero(Percentile(lat, 0.99))
	if prompt > 0 {
		a.PrefixHitRate = float64(cached) / float64(prompt)
	}
	return a
}

// orZero maps NaN (no samples) to 0, since encoding/json refuses NaN.
func orZero(x float64) float64 {
	if math.IsNaN(x) {
		return 0
	}
	return x
}

// GraphAccuracy is the mean absolute error between when a program waiting between
// steps was predicted to make its next LLM call and when it did, over Predictions.
type GraphAccuracy struct {
	MAES        float64 `json:"mae_s"`
	Predictions int     `json:"predictions"`
}
