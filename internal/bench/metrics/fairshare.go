package metrics

import (
	"math"
	"slices"
)

// AgentShare is one agent's standing under Agent Fair Share (SAGA): its mean
// task-completion-time slowdown against the slowdown it is entitled to.
type AgentShare struct {
	Agent    string  `json:"agent"`
	Programs int     `json:"programs"` // completed programs with a known solo time
	Slowdown float64 `json:"slowdown"` // mean of its programs' TCT ÷ solo TCT
	// FairShare is the slowdown the agent is entitled to; Ratio is Slowdown over it. Both
	// are 0 for an agent held to no share (the heavy agent of an isolation run).
	FairShare float64 `json:"fair_share_slowdown,omitempty"`
	Ratio     float64 `json:"ratio,omitempty"`
}

// FairShare measures Agent Fair Share over agents' mean slowdowns (slow, by agent) and
// their program counts (n). An agent's fair-share slowdown is ref[agent] when ref is
// given: in an isolation run, its slowdown in the same run without the agent that sends
// past its share; agents missing from ref are reported but held to no share. With ref
// nil every agent is entitled to the same slowdown, the mean over agents (each counted
// once, however many programs it sent). Deviation is the largest |Ratio - 1| over the
// agents held to a share: SAGA's bounded deviation asks that it stay below a bound.
// Agents come sorted by name; deviation is 0 when no agent is held to a share.
func FairShare(slow map[string]float64, n map[string]int, ref map[string]float64) (shares []AgentShare, deviation float64) {
	agents := make([]string, 0, len(slow))
	for a := range slow {
		agents = append(agents, a)
	}
	slices.Sort(agents)
	equal := 0.0
	if ref == nil {
		for _, a := range agents {
			equal += slow[a]
		}
		equal /= float64(max(len(agents), 1))
	}
	for _, a := range agents {
		s := AgentShare{Agent: a, Programs: n[a], Slowdown: slow[a]}
		f, held := equal, ref == nil
		if !held {
			f, held = ref[a]
		}
		if held && f > 0 {
			s.FairShare, s.Ratio = f, slow[a]/f
			deviation = math.Max(deviation, math.Abs(s.Ratio-1))
		}
		shares = append(shares, s)
	}
	return shares, deviation
}
