package bench

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/aios-go/aios/internal/bench/metrics"
	"github.com/aios-go/aios/internal/bench/workload"
)

// HeavyAgent is the agent --heavy weights.
const HeavyAgent = "agent-0"

// ErrIsolationSetup is returned when --isolation is asked of a run that has no heavy
// agent to isolate from, or no arrival times to keep.
var ErrIsolationSetup = errors.New("--isolation needs a heavy agent (--heavy above 1) and an open loop (--rate or --load)")

// IsolationArm is one arm's isolation: how much the heavy agent slows the light ones.
// The light agents run twice on the same programs at the same arrival times, with the
// heavy agent's programs and without them; without them they send only their own share
// of the load.
type IsolationArm struct {
	Arm string `json:"arm"`
	// LightSlowdown and LightAloneSlowdown are the mean over light agents of each one's
	// mean slowdown, with the heavy agent and without; Ratio is the first over the
	// second (the isolation target bounds it), MaxAgentRatio the largest light agent's
	// own ratio.
	LightSlowdown      float64 `json:"light_slowdown"`
	LightAloneSlowdown float64 `json:"light_alone_slowdown"`
	Ratio              float64 `json:"ratio"`
	MaxAgentRatio      float64 `json:"max_agent_ratio"`
	HeavySlowdown      float64 `json:"heavy_slowdown"`
	// AloneProgramsPerMin is the light-only run's throughput, for its load.
	AloneProgramsPerMin float64 `json:"alone_programs_per_min"`
}

// lightOnly is progs without the heavy agent's, arrivals kept.
func lightOnly(progs []workload.Program) []workload.Program {
	var out []workload.Program
	for _, p := range progs {
		if p.Agent != HeavyAgent {
			out = append(out, p)
		}
	}
	return out
}

// runIsolation runs arm on the light agents' programs alone, then holds each light
// agent of the arm's row a (measured with the heavy agent) to its slowdown alone as
// its fair share, and returns the arm's isolation figures.
func runIsolation(ctx context.Context, o Options, setup Setup, arm Arm, progs []workload.Program, solo map[int]time.Duration, a *metrics.Arm) (IsolationArm, error) {
	light := lightOnly(progs)
	var res Result
	var err error
	if o.Virtual {
		res, err = RunVirtual(setup, arm, light, 0)
	} else {
		res, err = RunLive(ctx, setup, arm, light, 0, o.Speed)
	}
	if err != nil {
		return IsolationArm{}, fmt.Errorf("arm %s without the heavy agent: %w", arm.Name, err)
	}
	for i := range res.Programs {
		res.Programs[i].Solo = solo[res.Programs[i].ID]
	}
	alone := metrics.Summarize(arm.Name, res.Programs, res.Calls, res.Span)
	counts := map[string]int{}
	for _, s := range a.AgentShares {
		counts[s.Agent] = s.Programs
	}
	a.AgentShares, a.AFSDeviation = metrics.FairShare(a.PerAgentSlowdown, counts, alone.PerAgentSlowdown)
	iso := IsolationArm{Arm: arm.Name, HeavySlowdown: a.PerAgentSlowdown[HeavyAgent], AloneProgramsPerMin: alone.ProgramsPerMin}
	var with, without []float64
	for _, s := range a.AgentShares {
		if s.Agent == HeavyAgent || s.FairShare == 0 {
			continue
		}
		with = append(with, s.Slowdown)
		without = append(without, s.FairShare)
		iso.MaxAgentRatio = max(iso.MaxAgentRatio, s.Ratio)
	}
	if len(with) > 0 {
		iso.LightSlowdown, iso.LightAloneSlowdown = metrics.Mean(with), metrics.Mean(without)
		iso.Ratio = iso.LightSlowdown / iso.LightAloneSlowdown
	}
	return iso, nil
}
