package bench

import (
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/aios-go/aios/internal/bench/metrics"
	"github.com/aios-go/aios/internal/bench/workload"
	"github.com/aios-go/aios/internal/sched"
)

// SLOSpec is the service-level objectives of a run (--slo-tct, --slo-ttft): every
// program's calls carry the deadline they set (sched.SLO.Deadline, as in the kernel),
// which the slo policy orders by, and every arm reports its attainment.
type SLOSpec struct {
	// TCT is one objective for every program; TCTSolo instead sets each program's to
	// that multiple of its solo completion time, since programs of the mixed workload
	// differ in size by two orders of magnitude and one duration would be either
	// trivial for chats or impossible for software-engineering tasks.
	TCT     time.Duration
	TCTSolo float64
	// TCTSoloP99 sets every program's to that multiple of the run's solo p99: the
	// capacity criterion (p99 TCT within 3× solo p99) made an objective, which a tenant
	// whose own load is below capacity meets by definition.
	TCTSoloP99 float64
	TTFT       time.Duration
	// Solo is each program's solo completion time, by ID, and SoloP99 their p99 (Run
	// sets them).
	Solo    map[int]time.Duration
	SoloP99 time.Duration
	// Burst is the agent whose attainment is reported apart from the others'.
	Burst string
}

// ErrSLOLive is returned for SLOs over real HTTP: the kernel there derives deadlines
// from its own configuration (scheduler.slo), per agent, not per program.
var ErrSLOLive = errors.New("--slo-tct and --slo-ttft need --virtual: over HTTP the kernel takes its objectives from scheduler.slo")

// heavyAgent is the agent --heavy weights (workload.Options.Heavy): the bursting tenant.
const heavyAgent = "agent-0"

func (s SLOSpec) enabled() bool {
	return s.TCT > 0 || s.TCTSolo > 0 || s.TCTSoloP99 > 0 || s.TTFT > 0
}

func (s SLOSpec) check() error {
	if s.TCT < 0 || s.TCTSolo < 0 || s.TCTSoloP99 < 0 || s.TTFT < 0 {
		return fmt.Errorf("SLO objectives must be positive")
	}
	n := 0
	for _, set := range []bool{s.TCT > 0, s.TCTSolo > 0, s.TCTSoloP99 > 0} {
		if set {
			n++
		}
	}
	if n > 1 {
		return fmt.Errorf("give one TCT objective: a duration, a multiple of solo time or of solo p99")
	}
	return nil
}

// ParseTCTObjective sets the TCT objective from --slo-tct: "4x" (four times each
// program's solo time), "3xp99" (three times the run's solo p99, for every program) or
// a duration ("300s").
func (s *SLOSpec) ParseTCTObjective(v string) error {
	s.TCT, s.TCTSolo, s.TCTSoloP99 = 0, 0, 0
	if v == "" {
		return nil
	}
	bad := fmt.Errorf("--slo-tct %q: want a multiple of each program's solo time (4x), of the run's solo p99 (3xp99), or a duration (300s), all positive", v)
	for _, form := range []struct {
		suffix string
		to     *float64
	}{{"xp99", &s.TCTSoloP99}, {"x", &s.TCTSolo}} {
		if f, ok := strings.CutSuffix(v, form.suffix); ok {
			k, err := strconv.ParseFloat(f, 64)
			if err != nil || !(k > 0) || math.IsInf(k, 0) {
				return bad
			}
			*form.to = k
			return nil
		}
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		return bad
	}
	s.TCT = d
	return nil
}

// tct is program p's TCT objective, given its solo time.
func (s SLOSpec) tct(solo time.Duration) time.Duration {
	switch {
	case s.TCTSolo > 0:
		return time.Duration(s.TCTSolo * float64(solo))
	case s.TCTSoloP99 > 0:
		return time.Duration(s.TCTSoloP99 * float64(s.SoloP99))
	}
	return s.TCT
}

// objective is program p's SLO.
func (s SLOSpec) objective(p *workload.Program) sched.SLO {
	return sched.SLO{TCT: s.tct(s.Solo[p.ID]), TTFT: s.TTFT}
}

// attainment is an arm's attainment of the objectives.
func (s SLOSpec) attainment(progs []metrics.Program, calls []metrics.Call) *metrics.SLO {
	if !s.enabled() {
		return nil
	}
	tct := func(p metrics.Program) time.Duration { return s.tct(p.Solo) }
	var others []metrics.Program
	for _, p := range progs {
		if p.Agent != s.Burst {
			others = append(others, p)
		}
	}
	var otherCalls []metrics.Call
	for _, c := range calls {
		if c.Agent != s.Burst {
			otherCalls = append(otherCalls, c)
		}
	}
	out := &metrics.SLO{Burst: s.Burst}
	if s.TCT > 0 || s.TCTSolo > 0 || s.TCTSoloP99 > 0 {
		out.TCT = metrics.TCTAttainment(progs, tct)
		if s.Burst != "" {
			out.OthersTCT = metrics.TCTAttainment(others, tct)
		}
	}
	if s.TTFT > 0 {
		out.TTFT = metrics.TTFTAttainment(calls, s.TTFT)
		if s.Burst != "" {
			out.OthersTTFT = metrics.TTFTAttainment(otherCalls, s.TTFT)
		}
	}
	return out
}

// writeSLOTable prints each arm's attainment, the bursting agent's apart, when the run
// set objectives.
func (r *Report) writeSLOTable(w io.Writer) {
	if len(r.Arms) == 0 || r.Arms[0].SLO == nil {
		return
	}
	burst := r.Arms[0].SLO.Burst
	fmt.Fprintln(w, "SLO attainment (share of programs within the TCT objective, of calls within the TTFT objective)")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	head := "arm\t"
	for _, kind := range []string{"TCT", "TTFT"} {
		head += kind + " all\t"
		if burst != "" {
			head += kind + " " + burst + "\t" + kind + " others\t" + kind + " worst other\t"
		}
	}
	fmt.Fprintln(tw, head)
	share := func(a *metrics.Attainment) string {
		if a == nil || a.Total == 0 {
			return "-"
		}
		return fmt.Sprintf("%.1f%%", 100*a.Overall)
	}
	for _, a := range r.Arms {
		s := a.SLO
		row := a.Arm + "\t"
		for _, k := range []struct{ all, others *metrics.Attainment }{{s.TCT, s.OthersTCT}, {s.TTFT, s.OthersTTFT}} {
			row += share(k.all) + "\t"
			if burst == "" {
				continue
			}
			b := "-"
			if k.all != nil {
				if v, ok := k.all.PerAgent[burst]; ok {
					b = fmt.Sprintf("%.1f%%", 100*v)
				}
			}
			worst := "-"
			if k.others != nil && k.others.Total > 0 {
				worst = fmt.Sprintf("%.1f%% (%s)", 100*k.others.WorstShare, k.others.Worst)
			}
			row += b + "\t" + share(k.others) + "\t" + worst + "\t"
		}
		fmt.Fprintln(tw, row)
	}
	tw.Flush()
}
