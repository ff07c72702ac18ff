package metrics

import (
	"slices"
	"time"
)

// Attainment is the share of programs (or calls) that met their service-level
// objective, overall and per agent. A failed program or call missed it. Met and Total
// count them; the shares are 0 when there is nothing to count.
type Attainment struct {
	Overall  float64            `json:"overall"`
	Met      int                `json:"met"`
	Total    int                `json:"total"`
	PerAgent map[string]float64 `json:"per_agent"`
	// Worst is the agent with the lowest share (ties to the first by name).
	Worst      string  `json:"worst_agent"`
	WorstShare float64 `json:"worst_share"`
}

// SLO is an arm's attainment of its TCT and TTFT objectives, nil where none is set,
// and the same over every agent but Burst (the tenant sending beyond its share), so the
// others' can be read apart from it.
type SLO struct {
	TCT        *Attainment `json:"tct,omitempty"`
	TTFT       *Attainment `json:"ttft,omitempty"`
	Burst      string      `json:"burst_agent,omitempty"`
	OthersTCT  *Attainment `json:"others_tct,omitempty"`
	OthersTTFT *Attainment `json:"others_ttft,omitempty"`
}

// TCTAttainment counts the programs whose completion time (Finish − Arrival) is within
// objective(p); programs for which objective returns 0 have none and are not counted.
func TCTAttainment(progs []Program, objective func(Program) time.Duration) *Attainment {
	var t tally
	for _, p := range progs {
		obj := objective(p)
		if obj <= 0 {
			continue
		}
		t.add(p.Agent, !p.Failed && p.Finish-p.Arrival <= obj)
	}
	return t.attainment()
}

// TTFTAttainment counts the calls whose time to first token is within objective.
func TTFTAttainment(calls []Call, objective time.Duration) *Attainment {
	var t tally
	for _, c := range calls {
		t.add(c.Agent, !c.Failed && c.TTFT <= objective)
	}
	return t.attainment()
}

type tally struct {
	met, total map[string]int
}

func (t *tally) add(agent string, met bool) {
	if t.total == nil {
		t.met, t.total = map[string]int{}, map[string]int{}
	}
	t.total[agent]++
	if met {
		t.met[agent]++
	}
}

func (t *tally) attainment() *Attainment {
	a := &Attainment{PerAgent: map[string]float64{}}
	agents := make([]string, 0, len(t.total))
	for ag := range t.total {
		agents = append(agents, ag)
	}
	slices.Sort(agents)
	for _, ag := range agents {
		share := float64(t.met[ag]) / float64(t.total[ag])
		a.PerAgent[ag] = share
		a.Met += t.met[ag]
		a.Total += t.total[ag]
		if a.Worst == "" || share < a.WorstShare {
			a.Worst, a.WorstShare = ag, share
		}
	}
	if a.Total > 0 {
		a.Overall = float64(a.Met) / float64(a.Total)
	}
	return a
}
