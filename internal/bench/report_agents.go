package bench

import (
	"fmt"
	"io"
	"text/tabwriter"
)

// maxAgentRows bounds the per-agent table: past it, one row per agent says less than
// the arm's Jain index and deviation (results.json still holds every agent).
const maxAgentRows = 16

// WriteAgents prints, when the run has few agents, each agent's slowdown per arm with
// its ratio to its fair share (Agent Fair Share) and each arm's largest deviation; with
// isolation runs, each arm's light agents with the heavy agent against without.
func (r *Report) WriteAgents(w io.Writer) {
	if len(r.Arms) == 0 {
		return
	}
	var agents []string
	seen := map[string]bool{}
	for _, a := range r.Arms {
		for _, s := range a.AgentShares {
			if !seen[s.Agent] {
				seen[s.Agent] = true
				agents = append(agents, s.Agent)
			}
		}
	}
	if len(agents) == 0 || len(agents) > maxAgentRows {
		return
	}
	ref := "the mean over agents"
	if len(r.Isolation) > 0 {
		ref = "its slowdown without " + HeavyAgent
	}
	fmt.Fprintf(w, "\nper-agent slowdown (× fair share: %s)\n", ref)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	head := "agent\tprograms\t"
	for _, a := range r.Arms {
		head += a.Arm + "\t"
	}
	fmt.Fprintln(tw, head)
	for _, ag := range agents {
		row, n := "", 0
		for _, a := range r.Arms {
			cell := "-"
			for _, s := range a.AgentShares {
				if s.Agent != ag {
					continue
				}
				n = max(n, s.Programs)
				cell = fmt.Sprintf("%.2f", s.Slowdown)
				if s.FairShare > 0 {
					cell += fmt.Sprintf(" (%.2f×)", s.Ratio)
				}
			}
			row += cell + "\t"
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\n", ag, n, row)
	}
	row := "max |× - 1|\t\t"
	for _, a := range r.Arms {
		row += fmt.Sprintf("%.2f\t", a.AFSDeviation)
	}
	fmt.Fprintln(tw, row)
	tw.Flush()
	if len(r.Isolation) == 0 {
		return
	}
	fmt.Fprintf(w, "\nisolation: light agents' mean slowdown with %s against without it (same programs, same arrivals)\n", HeavyAgent)
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "arm\theavy\tlight\tlight alone\tratio\tmax agent ratio\talone prog/min\t")
	for _, i := range r.Isolation {
		fmt.Fprintf(tw, "%s\t%.2f\t%.2f\t%.2f\t%.2f×\t%.2f×\t%.1f\t\n", i.Arm, i.HeavySlowdown, i.LightSlowdown,
			i.LightAloneSlowdown, i.Ratio, i.MaxAgentRatio, i.AloneProgramsPerMin)
	}
	tw.Flush()
}
