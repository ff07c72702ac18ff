package bench

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/aios-go/aios/internal/bench/metrics"
	"github.com/aios-go/aios/internal/bench/workload"
	"github.com/aios-go/aios/internal/llm/sim"
)

// Options describe one benchmark run: every arm runs the same programs on the same
// engines.
type Options struct {
	Setup
	Arms     []Arm
	Workload string // react, swe, chat, lats, mixed, or trace
	Trace    string // JSONL file for the trace workload
	Programs int
	Seed     uint64
	Heavy    float64 // agent-0 issues this many times the programs of each other agent
	AgentIDs int     // agents programs are attributed to (open loop)
	// Burst limits Heavy to a window of the run and raises the arrival rate there by
	// what agent-0 adds, so the other agents keep their rate (workload.BurstArrivals).
	Burst *workload.Burst
	// Isolation also runs every arm on the light agents' programs alone, at the same
	// arrival times, and reports how much the heavy agent slows them (isolation.go).
	Isolation bool

	Agents       int     // closed loop: concurrent agents
	Rate         float64 // open loop: programs per minute
	Load         float64 // open loop at Load × the baseline arm's capacity (Baseline)
	FindCapacity bool
	// CapacityDraws is how many Poisson arrival draws the baseline's capacity is
	// measured on (default 3): the run's own, then others, to report its spread.
	CapacityDraws int

	// Sweep, when set, also runs every arm open-loop at each of these multiples of the
	// baseline arm's capacity (virtual time), for throughput and latency against load.
	Sweep []float64

	Virtual bool
	Speed   float64 // real mode: simulated seconds per wall second

	// Progress, when set, hears how many of the run's units of work are done.
	Progress func(done, total int)
}

// Report is what a run measured.
type Report struct {
	Workload     string  `json:"workload"`
	Programs     int     `json:"programs"`
	Seed         uint64  `json:"seed"`
	Profile      string  `json:"profile"`
	Cores        int     `json:"cores"`
	EngineMode   string  `json:"engine_mode"`
	KVOffloadGiB float64 `json:"kv_offload_gib,omitempty"`
	Virtual      bool    `json:"virtual"`
	Loop         string  `json:"loop"` // closed (N agents) or open (rate)
	Agents       int     `json:"agents,omitempty"`
	RatePerMin   float64 `json:"rate_per_min,omitempty"`
	// Burst is the window agent-0 sent Heavy times its share in, and BurstRatePerMin
	// the arrival rate there.
	Burst           *workload.Burst `json:"burst,omitempty"`
	BurstRatePerMin float64         `json:"burst_rate_per_min,omitempty"`
	SoloP99S        float64         `json:"solo_tct_p99_s"`
	Baseline        string          `json:"baseline"` // the direct arm loads are relative to
	DirectCapacity  *float64        `json:"direct_capacity_per_min,omitempty"`
	// CapacityDraws is the baseline's capacity on each arrival draw, the run's own first.
	CapacityDraws []float64 `json:"direct_capacity_draws_per_min,omitempty"`
	// CeilingPerMin (open loop) is the programs/min of a system that ran every program
	// as fast as alone: programs over the span from the first arrival to the latest
	// arrival plus solo completion time. No arm's programs/min, measured over its span,
	// can exceed it.
	CeilingPerMin float64       `json:"ceiling_per_min,omitempty"`
	Arms          []metrics.Arm `json:"arms"`
	Sweep         []SweepPoint  `json:"sweep,omitempty"`
	// Isolation holds, with --isolation, each arm's light agents with the heavy agent
	// against without it.
	Isolation []IsolationArm `json:"isolation,omitempty"`
	Wall      time.Duration  `json:"-"`
}

// SweepPoint is one arm at one load.
type SweepPoint struct {
	Arm            string  `json:"arm"`
	Load           float64 `json:"load"`
	RatePerMin     float64 `json:"rate_per_min"`
	ProgramsPerMin float64 `json:"programs_per_min"`
	TCTMean        float64 `json:"tct_mean_s"`
	TCTP99         float64 `json:"tct_p99_s"`
	PrefixHitRate  float64 `json:"prefix_hit_rate"`
}

// Run executes the benchmark.
func Run(ctx context.Context, o Options) (*Report, error) {
	o.Setup.defaults()
	if o.Programs <= 0 {
		o.Programs = 24
		if o.Virtual {
			o.Programs = 200
		}
	}
	if o.Speed <= 0 {
		o.Speed = 10
	}
	// Only the arms' own runs record references: solo, capacity and sweep runs would
	// hold millions of them for nothing.
	armSetup := o.Setup
	o.Setup.Belady = false
	if armSetup.Belady && !o.Virtual {
		return nil, ErrBeladyLive
	}
	if armSetup.Belady && o.Mode != sim.ModeVLLM {
		return nil, ErrBeladyMode
	}
	if err := o.SLO.check(); err != nil {
		return nil, err
	}
	if o.SLO.enabled() && !o.Virtual {
		return nil, ErrSLOLive
	}
	if o.SLO.enabled() && o.Heavy > 1 && o.SLO.Burst == "" {
		o.SLO.Burst = heavyAgent
	}
	if err := checkSwapArms(o.Arms, o.Setup, o.Virtual); err != nil {
		return nil, err
	}
	if o.Isolation && (o.Heavy <= 1 || o.Rate <= 0 && o.Load <= 0 || o.Workload == "trace") {
		return nil, ErrIsolationSetup
	}
	if o.Burst != nil && (o.Heavy <= 1 || o.Rate <= 0 && o.Load <= 0 || o.Workload == "trace" || !o.Burst.Valid()) {
		return nil, ErrBurstSetup
	}
	start := time.Now()
	progs, err := o.programs()
	if err != nil {
		return nil, err
	}
	rep := &Report{Workload: o.Workload, Programs: len(progs), Seed: o.Seed, Profile: o.Profile,
		Cores: o.Cores, EngineMode: string(o.Mode), KVOffloadGiB: o.KVOffloadGiB, Virtual: o.Virtual, Baseline: Baseline(o.Cores).Name}

	units := len(o.Arms) + 1 + len(o.Sweep)
	if o.Isolation {
		units += len(o.Arms)
	}
	done := 0
	step := func() {
		done++
		if o.Progress != nil {
			o.Progress(done, units)
		}
	}
	solo, err := SoloTimes(o.Setup, progs)
	if err != nil {
		return nil, err
	}
	rep.SoloP99S = metrics.Percentile(seconds(solo), 0.99)
	o.SLO.Solo = solo
	o.SLO.SoloP99 = time.Duration(rep.SoloP99S * float64(time.Second))
	armSetup.SLO = o.SLO
	step()

	base := Baseline(o.Cores)
	// The run's arrivals are one Poisson draw, scaled to the rate: capacity is measured
	// on that very draw, so that a load below 1 is below the capacity of this run, and
	// on others, so that the report shows how much the draw moves it.
	arrivals := o.Seed ^ 0x5eed
	if o.FindCapacity || o.Load > 0 || len(o.Sweep) > 0 {
		draws := max(o.CapacityDraws, 1)
		if o.CapacityDraws == 0 {
			draws = 3
		}
		for d := 0; d < draws; d++ {
			c, err := Capacity(o.Setup, base, progs, solo, arrivals+uint64(d))
			if err != nil {
				return nil, err
			}
			rep.CapacityDraws = append(rep.CapacityDraws, c)
		}
		rep.DirectCapacity = &rep.CapacityDraws[0]
	}
	switch {
	case o.Load > 0:
		o.Rate = o.Load * *rep.DirectCapacity
		fallthrough
	case o.Rate > 0:
		rep.Loop, rep.RatePerMin = "open", o.Rate
		arr := o.arrivals(o.Rate, len(progs), arrivals)
		if o.Burst != nil {
			rep.Burst, rep.BurstRatePerMin = o.Burst, o.Rate*o.burstFactor()
		}
		for i := range progs {
			progs[i].Arrival = arr[i]
		}
		rep.CeilingPerMin = Ceiling(progs, solo)
	default:
		if o.Agents <= 0 {
			o.Agents = 16
		}
		rep.Loop, rep.Agents = "closed", o.Agents
	}
	agents := 0
	if rep.Loop == "closed" {
		agents = o.Agents
	}

	for _, arm := range o.Arms {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		var res Result
		if o.Virtual {
			res, err = RunVirtual(armSetup, arm, progs, agents)
		} else {
			res, err = RunLive(ctx, armSetup, arm, progs, agents, o.Speed)
		}
		if err != nil {
			return nil, fmt.Errorf("arm %s: %w", arm.Name, err)
		}
		for i := range res.Programs {
			res.Programs[i].Solo = solo[res.Programs[i].ID]
		}
		a := metrics.Summarize(arm.Name, res.Programs, res.Calls, res.Span)
		a.EngineBusy, a.BatchMean, a.KVOccupancy = res.Util.Busy, res.Util.Batch, res.Util.KV
		a.OffloadLoadedTokens, a.OffloadLoadS = res.Engine.ExternalHits, res.Engine.OffloadLoadTime.Seconds()
		a.Belady = res.Belady
		a.SLO = armSetup.SLO.attainment(res.Programs, res.Calls)
		a.Graph = res.Graph
		if o.FindCapacity {
			c := 0.0
			if arm.Name == base.Name && rep.DirectCapacity != nil {
				c = *rep.DirectCapacity
			} else if c, err = Capacity(o.Setup, arm, progs, solo, arrivals); err != nil {
				return nil, err
			}
			a.CapacityPerMin = &c
		}
		if o.Isolation {
			iso, err := runIsolation(ctx, o, o.Setup, arm, progs, solo, &a)
			if err != nil {
				return nil, err
			}
			rep.Isolation = append(rep.Isolation, iso)
			step()
		}
		rep.Arms = append(rep.Arms, a)
		step()
	}
	for _, load := range o.Sweep {
		rate := load * *rep.DirectCapacity
		ps := append([]workload.Program(nil), progs...)
		arr := o.arrivals(rate, len(ps), arrivals)
		for i := range ps {
			ps[i].Arrival = arr[i]
		}
		for _, arm := range o.Arms {
			res, err := RunVirtual(o.Setup, arm, ps, 0)
			if err != nil {
				return nil, fmt.Errorf("sweep %s at %.2f: %w", arm.Name, load, err)
			}
			a := metrics.Summarize(arm.Name, res.Programs, res.Calls, res.Span)
			rep.Sweep = append(rep.Sweep, SweepPoint{Arm: arm.Name, Load: load, RatePerMin: rate,
				ProgramsPerMin: a.ProgramsPerMin, TCTMean: a.TCTMean, TCTP99: a.TCTP99, PrefixHitRate: a.PrefixHitRate})
		}
		step()
	}
	rep.Wall = time.Since(start)
	return rep, nil
}

func (o *Options) programs() ([]workload.Program, error) {
	if o.Workload == "trace" {
		f, err := os.Open(o.Trace)
		if err != nil {
			return nil, fmt.Errorf("trace workload: %w", err)
		}
		defer f.Close()
		return workload.ReadTrace(f)
	}
	if o.Workload == "" {
		o.Workload = "mixed"
	}
	return workload.Generate(o.Workload, o.Programs, o.Seed, workload.Options{Agents: o.AgentIDs, Heavy: o.Heavy, Burst: o.Burst})
}

// ErrBurstSetup is returned for a --burst that cannot be run as asked.
var ErrBurstSetup = errors.New("--burst needs a heavy agent (--heavy above 1), an open loop (--rate or --load), a generated workload, and a window FROM:TO with 0 <= FROM < TO <= 1")

// arrivals is the run's open-loop schedule at rate: one Poisson draw from seed, with a
// burst's window at burstFactor times the rate.
func (o *Options) arrivals(rate float64, n int, seed uint64) []time.Duration {
	arr := workload.Poisson(rate, n, seed)
	if o.Burst != nil {
		arr = workload.BurstArrivals(arr, *o.Burst, o.burstFactor())
	}
	return arr
}

// burstFactor is how much faster programs arrive in the burst: agent-0 sends Heavy
// shares instead of one, the other agents as before.
func (o *Options) burstFactor() float64 {
	agents := o.AgentIDs
	if agents <= 0 {
		agents = workload.DefaultAgents
	}
	return (float64(agents-1) + o.Heavy) / float64(agents)
}

// Ceiling is the programs/min of an open-loop run if each program took its solo time:
// len(progs) over the span from the first arrival to the last solo finish.
func Ceiling(progs []workload.Program, solo map[int]time.Duration) float64 {
	if len(progs) == 0 {
		return 0
	}
	first, last := progs[0].Arrival, time.Duration(0)
	for _, p := range progs {
		first = min(first, p.Arrival)
		last = max(last, p.Arrival+solo[p.ID])
	}
	if last <= first {
		return 0
	}
	return float64(len(progs)) / (last - first).Minutes()
}

// SoloTimes is each program's completion time when run alone on an empty engine, keyed
// by program ID: the denominator of slowdown and the yardstick of capacity.
func SoloTimes(setup Setup, progs []workload.Program) (map[int]time.Duration, error) {
	out := make(map[int]time.Duration, len(progs))
	for _, p := range progs {
		p.Arrival = 0
		res, err := RunVirtual(setup, Arm{Name: "direct"}, []workload.Program{p}, 0)
		if err != nil {
			return nil, err
		}
		if len(res.Programs) != 1 || res.Programs[0].Failed {
			return nil, fmt.Errorf("program %d fails even alone on an empty engine", p.ID)
		}
		out[p.ID] = res.Programs[0].Finish - res.Programs[0].Arrival
	}
	return out, nil
}

// Capacity is the highest open-loop program arrival rate (per minute) at which arm keeps
// the p99 task completion time within 3× the programs' solo p99 (Autellix's "program
// throughput at equal latency"), found by doubling then bisection in virtual time, with
// Poisson arrivals drawn from seed (scaled to each rate tried).
func Capacity(setup Setup, arm Arm, progs []workload.Program, solo map[int]time.Duration, seed uint64) (float64, error) {
	var soloS []float64
	for _, p := range progs {
		soloS = append(soloS, solo[p.ID].Seconds())
	}
	limit := 3 * metrics.Percentile(soloS, 0.99)
	ok := func(rate float64) (bool, error) {
		ps := append([]workload.Program(nil), progs...)
		arr := workload.Poisson(rate, len(ps), seed)
		for i := range ps {
			ps[i].Arrival = arr[i]
		}
		res, err := RunVirtual(setup, arm, ps, 0)
		if err != nil {
			return false, err
		}
		var tct []float64
		for _, p := range res.Programs {
			if p.Failed {
				return false, nil
			}
			tct = append(tct, (p.Finish - p.Arrival).Seconds())
		}
		return metrics.Percentile(tct, 0.99) <= limit, nil
	}
	// Past this rate every program arrives within the TCT limit: a run of this many
	// programs cannot tell a higher capacity apart, so the search stops there.
	ceiling := float64(len(progs)) / (limit / 60)
	lo, hi := 0.0, 1.0
	for {
		good, err := ok(hi)
		if err != nil {
			return 0, err
		}
		if !good {
			break
		}
		if hi >= ceiling {
			return ceiling, nil
		}
		lo, hi = hi, min(hi*2, ceiling)
	}
	for i := 0; i < 10 && hi-lo > 0.01*hi; i++ {
		mid := (lo + hi) / 2
		good, err := ok(mid)
		if err != nil {
			return 0, err
		}
		if good {
			lo = mid
		} else {
			hi = mid
		}
	}
	return lo, nil
}

func seconds(m map[int]time.Duration) []float64 {
	out := make([]float64, 0, len(m))
	for _, d := range m {
		out = append(out, d.Seconds())
	}
	return out
}
