package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"

	"github.com/aios-go/aios/internal/bench/metrics"
)

// WriteTable prints one row per arm.
func (r *Report) WriteTable(w io.Writer) {
	mode := "real HTTP, accelerated"
	if r.Virtual {
		mode = "virtual time"
	}
	load := fmt.Sprintf("closed loop, %d agents", r.Agents)
	if r.Loop == "open" {
		load = fmt.Sprintf("open loop, %.1f programs/min", r.RatePerMin)
		if r.Burst != nil {
			load += fmt.Sprintf(" (%.1f while agent-0 bursts, programs %.0f%%–%.0f%%)", r.BurstRatePerMin, 100*r.Burst.From, 100*r.Burst.To)
		}
	}
	engine := r.EngineMode + " engine"
	if r.KVOffloadGiB > 0 {
		engine += fmt.Sprintf(", %g GiB CPU KV offload", r.KVOffloadGiB)
	}
	fmt.Fprintf(w, "workload %s: %d programs, seed %d; %d × %s (%s); %s; %s\n",
		r.Workload, r.Programs, r.Seed, r.Cores, r.Profile, engine, load, mode)
	fmt.Fprintf(w, "solo p99 task completion: %.1fs", r.SoloP99S)
	if r.DirectCapacity != nil {
		fmt.Fprintf(w, "; %s arm capacity: %.1f programs/min on this run's arrivals", r.Baseline, *r.DirectCapacity)
		if len(r.CapacityDraws) > 1 {
			lo, hi := r.CapacityDraws[0], r.CapacityDraws[0]
			for _, c := range r.CapacityDraws {
				lo, hi = min(lo, c), max(hi, c)
			}
			fmt.Fprintf(w, " (%d arrival draws: %.1f–%.1f)", len(r.CapacityDraws), lo, hi)
		}
	}
	fmt.Fprintln(w)
	if r.CeilingPerMin > 0 {
		fmt.Fprintf(w, "ceiling: %.1f programs/min if every program ran as fast as alone (arrivals plus solo times)\n", r.CeilingPerMin)
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	hasCap, hasMIN := false, false
	for _, a := range r.Arms {
		hasCap = hasCap || a.CapacityPerMin != nil
		hasMIN = hasMIN || a.Belady != nil
	}
	head := "arm\tdone\tprog/min\tTCT mean\tTCT geo\tTCT p50\tTCT p99\tTTFT p99\tqueued\twait/svc\tslowdown\tJain\thit rate\tpreempt\tfailed\tretries\t"
	if r.Virtual {
		head += "busy\tbatch\tKV\t"
	}
	offload := r.KVOffloadGiB > 0
	if offload {
		head += "CPU-loaded\tload time\t"
	}
	if hasCap {
		head += "capacity/min\t"
	}
	if hasMIN {
		head += "misses\tMIN misses\trecomputed\tMIN recomp\t×MIN\t"
	}
	fmt.Fprintln(tw, head)
	for _, a := range r.Arms {
		// Over real HTTP the queued time is what the kernel reports (X-AIOS-Queue-Ms); an
		// engine called directly reports none, so a direct arm's is unknown, not 0.
		queued, waitSvc := fmt.Sprintf("%.0f%%", 100*a.QueuedFrac), fmt.Sprintf("%.1f", a.WaitServiceMax)
		if !r.Virtual && !strings.HasPrefix(a.Arm, "kernel:") {
			queued, waitSvc = "-", "-"
		}
		row := fmt.Sprintf("%s\t%d/%d\t%.1f\t%.1fs\t%.1fs\t%.1fs\t%.1fs\t%.2fs\t%s\t%s\t%.2f\t%.3f\t%.1f%%\t%d\t%d\t%d\t",
			a.Arm, a.Programs-a.Failed, a.Programs, a.ProgramsPerMin, a.TCTMean, a.TCTGeoMean, a.TCTP50, a.TCTP99, a.TTFTP99, queued, waitSvc,
			a.SlowdownMean, a.JainSlowdown, 100*a.PrefixHitRate, a.Preemptions, a.FailedCalls, a.Retries)
		if r.Virtual {
			row += fmt.Sprintf("%.0f%%\t%.1f\t%.0f%%\t", 100*a.EngineBusy, a.BatchMean, 100*a.KVOccupancy)
		}
		if offload {
			row += fmt.Sprintf("%.1fM tok\t%.1fs\t", float64(a.OffloadLoadedTokens)/1e6, a.OffloadLoadS)
		}
		if hasCap {
			if a.CapacityPerMin != nil {
				row += fmt.Sprintf("%.1f\t", *a.CapacityPerMin)
			} else {
				row += "-\t"
			}
		}
		if hasMIN {
			row += beladyCells(a.Belady)
		}
		fmt.Fprintln(tw, row)
	}
	tw.Flush()
	for _, a := range r.Arms {
		if a.Graph != nil {
			fmt.Fprintf(w, "%s: execution graphs predicted the next LLM call within %.2fs (mean absolute error, %d predictions)\n",
				a.Arm, a.Graph.MAES, a.Graph.Predictions)
		}
	}
	r.writeSLOTable(w)
}

// beladyCells are an arm's block misses and recomputed prefill tokens against MIN's.
func beladyCells(b *metrics.Belady) string {
	if b == nil {
		return "-\t-\t-\t-\t-\t"
	}
	ratio := "-"
	if b.Ratio != nil {
		ratio = fmt.Sprintf("%.2f", *b.Ratio)
	}
	return fmt.Sprintf("%d\t%d\t%d\t%d\t%s\t", b.Misses, b.MINMisses, b.Recomputed, b.MINRecomputed, ratio)
}

// WriteFiles writes dir/results.json and dir/chart.svg.
func (r *Report) WriteFiles(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "results.json"), append(b, '\n'), 0o644); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "chart.svg"), []byte(r.SVG()), 0o644)
}

// SVG draws, per arm, a box of its task completion time distribution (p50 box edge to
// p99 whisker, mean marked) on a shared log-scaled axis.
func (r *Report) SVG() string {
	const w, rowH, left, right, top = 760, 34, 150, 30, 40
	h := top + rowH*len(r.Arms) + 40
	maxV := 1.0
	for _, a := range r.Arms {
		maxV = math.Max(maxV, a.TCTP99)
	}
	minV := maxV
	for _, a := range r.Arms {
		if a.TCTP50 > 0 {
			minV = math.Min(minV, a.TCTP50)
		}
	}
	lo, hi := math.Log10(math.Max(minV/2, 0.01)), math.Log10(maxV*1.2)
	x := func(v float64) float64 {
		if v <= 0 {
			return left
		}
		return left + (math.Log10(v)-lo)/(hi-lo)*float64(w-left-right)
	}
	var sb strings.Builder
	fmt.Fprintf(&sb, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="sans-serif" font-size="12">`+"\n", w, h)
	fmt.Fprintf(&sb, `<text x="%d" y="20" font-size="14">Task completion time per arm (s, log scale): box p50–p99, tick = mean — %s</text>`+"\n", left, r.Workload)
	palette := []string{"#888", "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2"}
	for i, a := range r.Arms {
		y := top + i*rowH
		c := palette[i%len(palette)]
		fmt.Fprintf(&sb, `<text x="%d" y="%d" text-anchor="end">%s</text>`+"\n", left-8, y+18, a.Arm)
		fmt.Fprintf(&sb, `<rect x="%.1f" y="%d" width="%.1f" height="18" fill="%s" fill-opacity="0.5" stroke="%s"/>`+"\n",
			x(a.TCTP50), y+5, math.Max(x(a.TCTP99)-x(a.TCTP50), 1), c, c)
		fmt.Fprintf(&sb, `<line x1="%.1f" x2="%.1f" y1="%d" y2="%d" stroke="black" stroke-width="2"/>`+"\n", x(a.TCTMean), x(a.TCTMean), y+2, y+26)
	}
	axisY := top + rowH*len(r.Arms) + 5
	fmt.Fprintf(&sb, `<line x1="%d" x2="%d" y1="%d" y2="%d" stroke="black"/>`+"\n", left, w-right, axisY, axisY)
	for e := math.Floor(lo); e <= math.Ceil(hi); e++ {
		for _, m := range []float64{1, 2, 5} {
			v := m * math.Pow(10, e)
			if math.Log10(v) < lo || math.Log10(v) > hi {
				continue
			}
			fmt.Fprintf(&sb, `<line x1="%.1f" x2="%.1f" y1="%d" y2="%d" stroke="black"/><text x="%.1f" y="%d" text-anchor="middle">%g</text>`+"\n",
				x(v), x(v), axisY, axisY+5, x(v), axisY+18, v)
		}
	}
	sb.WriteString("</svg>\n")
	if len(r.Sweep) > 0 {
		return r.sweepSVG(sb.String())
	}
	return sb.String()
}

// sweepSVG appends, below the distribution chart, mean TCT and throughput against load.
func (r *Report) sweepSVG(dist string) string {
	const w, h, left, right, top, bottom = 760, 300, 70, 150, 30, 40
	arms := []string{}
	seen := map[string]bool{}
	maxT, maxX, maxP := 1.0, 0.0, 0.0
	for _, p := range r.Sweep {
		if !seen[p.Arm] {
			seen[p.Arm] = true
			arms = append(arms, p.Arm)
		}
		maxT = math.Max(maxT, p.TCTMean)
		maxX = math.Max(maxX, p.Load)
		maxP = math.Max(maxP, p.ProgramsPerMin)
	}
	x := func(l float64) float64 { return left + l/maxX*float64(w-left-right) }
	y := func(t float64) float64 {
		return float64(h-bottom) - math.Log10(math.Max(t, 0.1)/0.1)/math.Log10(maxT*1.5/0.1)*float64(h-top-bottom)
	}
	palette := []string{"#888", "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2"}
	var sb strings.Builder
	sb.WriteString(strings.TrimSuffix(dist, "</svg>\n"))
	fmt.Fprintf(&sb, `<g transform="translate(0,%d)">`+"\n", 40+34*len(r.Arms)+40)
	fmt.Fprintf(&sb, `<text x="%d" y="15" font-size="14">Mean TCT (s, log) against load (× direct capacity); label: programs/min</text>`+"\n", left)
	fmt.Fprintf(&sb, `<line x1="%d" x2="%d" y1="%d" y2="%d" stroke="black"/>`+"\n", left, w-right, h-bottom, h-bottom)
	fmt.Fprintf(&sb, `<line x1="%d" x2="%d" y1="%d" y2="%d" stroke="black"/>`+"\n", left, left, top, h-bottom)
	for i, arm := range arms {
		c := palette[i%len(palette)]
		var pts []string
		for _, p := range r.Sweep {
			if p.Arm != arm {
				continue
			}
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", x(p.Load), y(p.TCTMean)))
			fmt.Fprintf(&sb, `<circle cx="%.1f" cy="%.1f" r="3" fill="%s"/><text x="%.1f" y="%.1f" font-size="9" fill="%s">%.1f</text>`+"\n",
				x(p.Load), y(p.TCTMean), c, x(p.Load)+4, y(p.TCTMean)-4, c, p.ProgramsPerMin)
		}
		fmt.Fprintf(&sb, `<polyline fill="none" stroke="%s" stroke-width="2" points="%s"/>`+"\n", c, strings.Join(pts, " "))
		fmt.Fprintf(&sb, `<text x="%d" y="%d" fill="%s">%s</text>`+"\n", w-right+10, top+16*(i+1), c, arm)
	}
	for _, p := range r.Sweep {
		if p.Arm == arms[0] {
			fmt.Fprintf(&sb, `<text x="%.1f" y="%d" text-anchor="middle">%.2g</text>`+"\n", x(p.Load), h-bottom+16, p.Load)
		}
	}
	for _, t := range []float64{1, 10, 100, 1000, 10000} {
		if t <= maxT*1.5 {
			fmt.Fprintf(&sb, `<text x="%d" y="%.1f" text-anchor="end">%g</text>`+"\n", left-6, y(t)+4, t)
		}
	}
	sb.WriteString("</g>\n</svg>\n")
	// Make room for the second panel.
	out := sb.String()
	return strings.Replace(out, fmt.Sprintf(`height="%d"`, 40+34*len(r.Arms)+40), fmt.Sprintf(`height="%d"`, 40+34*len(r.Arms)+40+h+10), 1)
}
