package main

import (
	"fmt"
	"math"
	"os"
	"strconv"
	"strings"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"

	"github.com/aios-go/aios/internal/bench"
	"github.com/aios-go/aios/internal/bench/workload"
	"github.com/aios-go/aios/internal/llm/sim"
	"github.com/aios-go/aios/internal/sched"
)

func benchCmd() *cobra.Command {
	var o bench.Options
	var arms, mode, out string
	var sweep []float64
	var routing string
	var quiet, perAgent bool
	var scale bench.ScaleOptions
	var sloTCT string
	var weights map[string]string
	var burst string
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Run agents with and without the kernel on the same simulated engines",
		Long: `Run a workload of agent programs under several arms — agents calling the engines
directly, and agents calling the kernel under a scheduling policy — on the same
simulated engines, and compare task completion times, throughput, fairness and cache
hit rates. With no flags: the mixed workload, direct vs kernel:fifo vs kernel:rr, over
real HTTP with time accelerated. --virtual runs the kernel's scheduler and the engine
simulator in virtual time without HTTP, for large sweeps in seconds.`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if scale.Agents > 0 {
				if o.Belady {
					return fmt.Errorf("--belady compares arms' caches; --scale runs no arms")
				}
				scale.Profile, scale.Cores, scale.Speed = o.Profile, o.Cores, o.Speed
				rep, err := bench.RunScale(cmd.Context(), scale)
				if err != nil {
					return err
				}
				rep.Write(cmd.OutOrStdout())
				return nil
			}
			var err error
			if o.Arms, err = bench.ParseArms(arms); err != nil {
				return err
			}
			if err = o.SLO.ParseTCTObjective(sloTCT); err != nil {
				return err
			}
			if o.Policy.Weights, err = parseWeights(weights); err != nil {
				return err
			}
			o.WS.Weights = o.Policy.Weights
			if o.Burst, err = parseBurst(burst); err != nil {
				return err
			}
			if o.WS.FairHalfLife < 0 || o.WS.FairLight < 0 || o.WS.FairLight > 1 {
				return fmt.Errorf("--ws-fair-half-life must not be negative and --ws-fair-light must be within (0, 1]")
			}
			o.Mode = sim.Mode(mode)
			o.Sweep = sweep
			o.Routing = sched.Routing(routing)
			if o.MaxInflight < 0 {
				return fmt.Errorf("--max-inflight %d: give a positive cap, or 0 for the engine's max_num_seqs", o.MaxInflight)
			}
			if o.Rate < 0 || o.Load < 0 {
				return fmt.Errorf("--rate and --load must be positive")
			}
			if o.KVOffloadGiB < 0 || math.IsNaN(o.KVOffloadGiB) || math.IsInf(o.KVOffloadGiB, 0) {
				return fmt.Errorf("--kv-offload-gib %v: give the CPU tier's size in GiB, 0 for none", o.KVOffloadGiB)
			}
			if o.Mode != sim.ModeVLLM && o.Mode != sim.ModeNaive {
				return fmt.Errorf("--engine-mode %q: want vllm or naive", mode)
			}
			if o.Belady && !o.Virtual {
				return bench.ErrBeladyLive
			}
			if o.Belady && o.Mode != sim.ModeVLLM {
				return bench.ErrBeladyMode
			}
			if o.Workload == "trace" && o.Trace == "" {
				return fmt.Errorf("--workload trace needs --trace FILE")
			}
			if !quiet {
				var bar *progressbar.ProgressBar
				o.Progress = func(done, total int) {
					if bar == nil {
						bar = progressbar.NewOptions(total, progressbar.OptionSetWriter(os.Stderr),
							progressbar.OptionSetDescription("bench"), progressbar.OptionShowCount(),
							progressbar.OptionClearOnFinish())
					}
					_ = bar.Set(done)
				}
			}
			rep, err := bench.Run(cmd.Context(), o)
			if err != nil {
				return err
			}
			rep.WriteTable(cmd.OutOrStdout())
			if perAgent || o.Heavy > 1 || o.Isolation {
				rep.WriteAgents(cmd.OutOrStdout())
			}
			fmt.Fprintf(cmd.OutOrStdout(), "(%s wall)\n", rep.Wall.Round(1e7))
			if out != "" {
				if err := rep.WriteFiles(out); err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "wrote %s/results.json and %s/chart.svg\n", out, out)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&arms, "arms", "direct,kernel:fifo,kernel:rr", "comma-separated arms: direct, direct+affinity, kernel:<policy>[+ws[+afs][+swap]][+ttl][+aeg|+aeg-suspend] (+swap: virtual, with --kv-offload-gib; +aeg: virtual)")
	f.StringVar(&o.Workload, "workload", "mixed", "react, swe, chat, lats, mixed or trace")
	f.StringVar(&o.Trace, "trace", "", "JSONL trace file for --workload trace")
	f.IntVar(&o.Programs, "programs", 0, "programs to run (default 200; 24 in real mode)")
	f.IntVar(&o.Agents, "agents", 0, "closed loop: concurrent agents (default 16 when no --rate/--load)")
	f.Float64Var(&o.Rate, "rate", 0, "open loop: program arrivals per minute")
	f.Float64Var(&o.Load, "load", 0, "open loop at this multiple of the baseline arm's capacity, measured first (direct; direct+affinity with several --cores)")
	f.Float64SliceVar(&sweep, "sweep", nil, "also run every arm at these multiples of the baseline arm's capacity (virtual), e.g. 0.5,0.8,1,1.2,1.5")
	f.IntVar(&o.CapacityDraws, "capacity-draws", 3, "arrival draws the baseline's capacity is measured on (the run's own first; the spread is reported)")
	f.BoolVar(&o.FindCapacity, "find-capacity", false, "find each arm's capacity: highest rate with p99 TCT <= 3x solo p99")
	f.Float64Var(&o.Heavy, "heavy", 0, "agent-0 sends this many times the programs of each other agent")
	f.StringVar(&burst, "burst", "", "with --heavy and an open loop: agent-0 sends --heavy times its share only over this window of the run's programs, FROM:TO in fractions (0.25:0.75: the middle half), and arrivals speed up there by what it adds")
	f.IntVar(&o.AgentIDs, "agent-ids", 8, "open loop: agents the programs belong to")
	f.BoolVar(&o.Isolation, "isolation", false, "with --heavy and an open loop: also run every arm on the light agents' programs alone (same arrivals) and report their slowdown with the heavy agent against without")
	f.BoolVar(&perAgent, "per-agent", false, "print each agent's slowdown and its ratio to its fair share (implied by --heavy and --isolation; up to 16 agents)")
	f.BoolVar(&o.WS.FairShare, "ws-fair-share", false, "+ws arms: admit by agent, each entitled to an equal share of the working set (what +afs turns on for one arm)")
	f.BoolVar(&o.WS.FairLend, "ws-fair-lend", false, "fair-share admission: let agents past their share take the room light agents leave unused (work-conserving; off: that room is kept for them)")
	f.DurationVar(&o.WS.FairHalfLife, "ws-fair-half-life", 0, "fair-share admission: how fast an agent's record of program arrivals forgets (default 5m)")
	f.Float64Var(&o.WS.FairLight, "ws-fair-light", 0, "fair-share admission: an agent is light below this fraction of its weighted share of arrivals (default 0.8)")
	f.StringToStringVar(&weights, "weights", nil, "agents' weights, e.g. agent-0=4: their share under kernel:fair arms and fair-share admission (missing: 1)")
	f.StringVar(&o.Profile, "profile", "llama3-8b-h100", "engine profile: "+strings.Join(sim.ProfileNames(), ", "))
	f.IntVar(&o.Cores, "cores", 1, "engines")
	f.StringVar(&routing, "routing", string(sched.DefaultRouting), "kernel arms with several cores: least-loaded, round-robin, affinity, cache-aware")
	f.StringVar(&mode, "engine-mode", "vllm", "vllm or naive")
	f.Float64Var(&o.KVOffloadGiB, "kv-offload-gib", 0, "give each engine a CPU KV offload tier of this many GiB of host memory (vLLM's --kv-offloading-size); 0: none")
	f.Uint64Var(&o.Seed, "seed", 1, "workload seed")
	f.BoolVar(&o.Virtual, "virtual", false, "virtual time, no HTTP")
	f.Float64Var(&o.Speed, "speed", 10, "real mode: simulated seconds per wall second (higher is faster but multiplies the host's per-call CPU cost in simulated time)")
	f.DurationVar(&o.TimeSlice, "time-slice", 0, "time slice of kernel:rr (default 500ms)")
	f.IntVar(&o.MaxBypass, "max-bypass", 0, "kernel: later calls that may pass one waiting for room")
	f.IntVar(&o.MaxInflight, "max-inflight", 0, "kernel arms: calls run at once on each engine (llms.models[].max_inflight; 0: the engine's max_num_seqs)")
	f.Float64Var(&o.WS.High, "ws-high", 0, "+ws arms: admit programs while their contexts fit this fraction of the KV cache (0: 0.9, or 1.2 with --kv-offload-gib)")
	f.Float64Var(&o.WS.Suspend, "ws-suspend", 0, "+ws arms: suspend the newest programs past this fraction (0: 1.0, or 1.3 with --kv-offload-gib)")
	f.Float64Var(&o.WS.Beta, "ws-beta", 2, "+ws arms: a program waiting this many times its service (at least 1s) to be admitted is admitted before any other; +Inf: no bound")
	f.BoolVar(&o.WS.Evict, "ws-evict", false, "+ws arms: a starving program suspends programs between calls to fit at once (a hard bound)")
	f.IntVar(&o.Policy.Queues, "plas-queues", 0, "kernel:plas/atlas arms: levels K (default 4)")
	f.DurationVar(&o.Policy.QuantumBase, "plas-quantum-base", 0, "kernel:plas/atlas arms: top level's bound (default 2s)")
	f.Float64Var(&o.Policy.QuantumRatio, "plas-quantum-ratio", 0, "kernel:plas/atlas arms: growth of the bounds (default 4)")
	f.Float64Var(&o.Policy.Beta, "plas-beta", 0, "kernel:plas/atlas arms: starvation ratio β (default 2)")
	f.Float64Var(&o.Policy.InputWeight, "fair-input-weight", 0, "kernel:fair arms: counter cost of a prompt token (default 1)")
	f.Float64Var(&o.Policy.OutputWeight, "fair-output-weight", 0, "kernel:fair arms: counter cost of a generated token (default 2)")
	f.IntVar(&o.Retry.Attempts, "retries", 0, "direct agents: attempts per call before giving up (default 8, backoff 0.5s doubling to 8s)")
	f.IntVar(&scale.Agents, "scale", 0, "load test instead of arms: this many agents at once run multi-step programs on one in-process kernel (real time, --speed); prints completions, refusals, peak queue and peak RSS")
	f.IntVar(&scale.MaxQueued, "scale-max-queued", 1024, "--scale: the kernel's queue bound")
	f.IntVar(&scale.Steps, "scale-steps", 3, "--scale: LLM calls per program, a tool wait between each")
	f.StringVar(&out, "out", "", "write results.json and chart.svg into this directory")
	f.BoolVar(&o.Belady, "belady", false, "virtual: record each engine's prefix-cache block references and report every arm's misses and recomputed prefill tokens against Bélády's MIN on the same string")
	f.StringVar(&sloTCT, "slo-tct", "", "virtual: each program's TCT objective: a multiple of its solo time (4x), of the run's solo p99 (3xp99), or a duration; calls carry the deadline, every arm reports attainment")
	f.DurationVar(&o.SLO.TTFT, "slo-ttft", 0, "virtual: each call's TTFT objective; calls carry the deadline, every arm reports attainment")
	f.Float64Var(&o.Policy.SLOBound, "slo-bound", 0, "kernel:slo arms: counter lead within which a client's calls are ordered by deadline (default: twice the costliest queued call)")
	f.BoolVar(&quiet, "quiet", false, "no progress bar")
	return cmd
}

// parseWeights reads --weights: agent=weight pairs, each weight a positive number.
func parseWeights(kv map[string]string) (map[string]float64, error) {
	if len(kv) == 0 {
		return nil, nil
	}
	out := make(map[string]float64, len(kv))
	for agent, v := range kv {
		w, err := strconv.ParseFloat(v, 64)
		if err != nil || !(w > 0) || math.IsInf(w, 1) {
			return nil, fmt.Errorf("--weights %s=%s: want a positive number", agent, v)
		}
		out[agent] = w
	}
	return out, nil
}

// parseBurst reads --burst FROM:TO, fractions of the run's programs.
func parseBurst(v string) (*workload.Burst, error) {
	if v == "" {
		return nil, nil
	}
	from, to, ok := strings.Cut(v, ":")
	b := &workload.Burst{}
	var err1, err2 error
	b.From, err1 = strconv.ParseFloat(from, 64)
	b.To, err2 = strconv.ParseFloat(to, 64)
	if !ok || err1 != nil || err2 != nil || !b.Valid() {
		return nil, fmt.Errorf("--burst %q: want FROM:TO, fractions of the run's programs with 0 <= FROM < TO <= 1, e.g. 0.25:0.75", v)
	}
	return b, nil
}
