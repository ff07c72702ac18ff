package metrics

import (
	"encoding/json"
	"math"
	"slices"
	"testing"
	"time"
)

// near reports whether a and b agree to 1e-9, treating two NaNs as equal.
func near(a, b float64) bool {
	if math.IsNaN(a) || math.IsNaN(b) {
		return math.IsNaN(a) && math.IsNaN(b)
	}
	return math.Abs(a-b) <= 1e-9
}

func TestPercentile(t *testing.T) {
	for _, tc := range []struct {
		name string
		xs   []float64
		q    float64
		want float64
	}{
		{"median of four interpolates", []float64{1, 2, 3, 4}, 0.5, 2.5},
		{"p99 of four", []float64{1, 2, 3, 4}, 0.99, 3.97}, // h = 3*0.99 = 2.97: 3 + 0.97*(4-3)
		{"p0 is the minimum", []float64{1, 2, 3, 4}, 0, 1},
		{"p100 is the maximum", []float64{1, 2, 3, 4}, 1, 4},
		{"unsorted input", []float64{4, 1, 3, 2}, 0.5, 2.5},
		{"p25 of five", []float64{10, 20, 30, 40, 50}, 0.25, 20},
		{"p90 of five", []float64{10, 20, 30, 40, 50}, 0.9, 46}, // h = 3.6: 40 + 0.6*10
		{"single element", []float64{7}, 0.99, 7},
		{"single element p0", []float64{7}, 0, 7},
		{"repeated values", []float64{2, 2, 2}, 0.7, 2},
		{"empty", nil, 0.5, math.NaN()},
		{"q below 0", []float64{1, 2}, -0.1, math.NaN()},
		{"q above 1", []float64{1, 2}, 1.5, math.NaN()},
		{"q NaN", []float64{1, 2}, math.NaN(), math.NaN()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := slices.Clone(tc.xs)
			if got := Percentile(tc.xs, tc.q); !near(got, tc.want) {
				t.Errorf("Percentile(%v, %v) = %v, want %v", tc.xs, tc.q, got, tc.want)
			}
			if !slices.Equal(before, tc.xs) {
				t.Errorf("Percentile modified its input: %v, was %v", tc.xs, before)
			}
		})
	}
}

func TestMean(t *testing.T) {
	for _, tc := range []struct {
		xs   []float64
		want float64
	}{
		{[]float64{1, 2, 3, 4}, 2.5},
		{[]float64{-1, 1}, 0},
		{[]float64{5}, 5},
		{nil, math.NaN()},
	} {
		if got := Mean(tc.xs); !near(got, tc.want) {
			t.Errorf("Mean(%v) = %v, want %v", tc.xs, got, tc.want)
		}
	}
}

func TestGeoMean(t *testing.T) {
	for _, tc := range []struct {
		xs   []float64
		want float64
	}{
		{[]float64{1, 4}, 2},
		{[]float64{2, 8, 4}, 4},
		{[]float64{5}, 5},
		{[]float64{1, 0}, math.NaN()},
		{nil, math.NaN()},
	} {
		if got := GeoMean(tc.xs); !near(got, tc.want) {
			t.Errorf("GeoMean(%v) = %v, want %v", tc.xs, got, tc.want)
		}
	}
}

func TestJain(t *testing.T) {
	for _, tc := range []struct {
		name string
		xs   []float64
		want float64
	}{
		{"equal values", []float64{3, 3, 3, 3}, 1},
		{"one holds everything", []float64{1, 0, 0, 0}, 0.25},
		{"1 2 3", []float64{1, 2, 3}, 36.0 / 42.0},   // (1+2+3)² / (3·(1+4+9))
		{"two agents 3 and 1", []float64{3, 1}, 0.8}, // 16 / (2·10)
		{"single value", []float64{5}, 1},
		{"all zero counts as equal", []float64{0, 0}, 1},
		{"empty", nil, math.NaN()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Jain(tc.xs); !near(got, tc.want) {
				t.Errorf("Jain(%v) = %v, want %v", tc.xs, got, tc.want)
			}
		})
	}
}

func sec(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }

// The hand-made arm: every expected value below is worked out in its comment.
func handMade() ([]Program, []Call) {
	progs := []Program{
		// TCT 10 s, slowdown 10/5 = 2.
		{ID: 0, Agent: "agent-a", Arrival: 0, Finish: sec(10), Queued: sec(2), Executing: sec(3), InTools: sec(5), Solo: sec(5)},
		// TCT 20 s, slowdown 20/5 = 4.
		{ID: 1, Agent: "agent-a", Arrival: sec(5), Finish: sec(25), Queued: sec(4), Executing: sec(6), InTools: sec(10), Solo: sec(5)},
		// TCT 30 s, slowdown 30/30 = 1.
		{ID: 2, Agent: "agent-b", Arrival: sec(10), Finish: sec(40), Queued: 0, Executing: sec(10), InTools: sec(20), Solo: sec(30)},
		// Failed: counted, but no TCT, time split or slowdown.
		{ID: 3, Agent: "agent-b", Arrival: 0, Finish: sec(100), Queued: sec(50), Executing: sec(50), Solo: sec(1), Failed: true},
		// TCT 40 s, solo unknown: no slowdown.
		{ID: 4, Agent: "agent-c", Arrival: 0, Finish: sec(40), Queued: sec(10), Executing: sec(10), InTools: sec(20)},
	}
	calls := []Call{
		{Program: 0, Agent: "agent-a", TTFT: sec(0.1), Latency: sec(1), Queued: sec(0.05), PromptTokens: 1000, CachedTokens: 800, OutputTokens: 35, Preemptions: 1},
		{Program: 1, Agent: "agent-a", TTFT: sec(0.2), Latency: sec(2), PromptTokens: 500, CachedTokens: 0, OutputTokens: 35, Retries: 2},
		{Program: 2, Agent: "agent-b", TTFT: sec(0.3), Latency: sec(3), PromptTokens: 500, CachedTokens: 400, OutputTokens: 35},
		// Failed: no latency or cache statistics, but its preemptions and retries count.
		{Program: 3, Agent: "agent-b", TTFT: sec(9), Latency: sec(9), PromptTokens: 1000, CachedTokens: 1000, Preemptions: 2, Retries: 3, Failed: true},
	}
	return progs, calls
}

func TestSummarize(t *testing.T) {
	progs, calls := handMade()
	got := Summarize("kernel:fifo", progs, calls, 2*time.Minute)

	if got.Arm != "kernel:fifo" {
		t.Errorf("Arm = %q", got.Arm)
	}
	for _, c := range []struct {
		field     string
		got, want int
	}{
		{"Programs", got.Programs, 5},
		{"Failed", got.Failed, 1},
		{"Preemptions", got.Preemptions, 3}, // 1 + 2, the failed call's included
		{"FailedCalls", got.FailedCalls, 1},
		{"Retries", got.Retries, 5}, // 2 + 3
	} {
		if c.got != c.want {
			t.Errorf("%s = %d, want %d", c.field, c.got, c.want)
		}
	}
	for _, c := range []struct {
		field     string
		got, want float64
	}{
		{"ProgramsPerMin", got.ProgramsPerMin, 2}, // 4 completed / 2 min
		// Completed TCTs 10, 20, 30, 40 s.
		{"TCTMean", got.TCTMean, 25},
		{"TCTGeoMean", got.TCTGeoMean, math.Pow(10*20*30*40, 0.25)}, // ≈ 22.13
		{"TCTP50", got.TCTP50, 25},
		{"TCTP99", got.TCTP99, 39.7}, // h = 2.97: 30 + 0.97*10
		// Successful calls' TTFTs 0.1, 0.2, 0.3 and latencies 1, 2, 3.
		{"TTFTP50", got.TTFTP50, 0.2},
		{"TTFTP99", got.TTFTP99, 0.298}, // h = 1.98: 0.2 + 0.98*0.1
		{"LatP50", got.LatP50, 2},
		{"LatP99", got.LatP99, 2.98},
		// Completed programs: queued 2+4+0+10 = 16, executing 3+6+10+10 = 29, tools
		// 5+10+20+20 = 55, of 100.
		{"QueuedFrac", got.QueuedFrac, 0.16},
		{"ExecFrac", got.ExecFrac, 0.29},
		{"ToolFrac", got.ToolFrac, 0.55},
		// Slowdowns 2, 4, 1; agent-a mean 3, agent-b 1; agent-c has none.
		{"SlowdownMean", got.SlowdownMean, 7.0 / 3},
		{"JainSlowdown", got.JainSlowdown, 0.8}, // (3+1)² / (2·(9+1))
		{"SlowdownMaxMin", got.SlowdownMaxMin, 3},
		// Queued/executing of completed programs: 2/3, 4/6, 0/10, 10/10.
		{"WaitServiceMax", got.WaitServiceMax, 1},
		{"PrefixHitRate", got.PrefixHitRate, 0.6}, // (800+0+400) / (1000+500+500)
	} {
		if !near(c.got, c.want) {
			t.Errorf("%s = %v, want %v", c.field, c.got, c.want)
		}
	}
	wantAgents := map[string]float64{"agent-a": 3, "agent-b": 1}
	if len(got.PerAgentSlowdown) != len(wantAgents) {
		t.Errorf("PerAgentSlowdown = %v, want %v", got.PerAgentSlowdown, wantAgents)
	}
	for ag, w := range wantAgents {
		if g, ok := got.PerAgentSlowdown[ag]; !ok || !near(g, w) {
			t.Errorf("PerAgentSlowdown[%s] = %v, want %v", ag, g, w)
		}
	}
	if got.CapacityPerMin != nil {
		t.Errorf("CapacityPerMin = %v, want nil: only the harness sets it", *got.CapacityPerMin)
	}
}

// With nothing to measure every statistic is 0, not NaN, so results.json still encodes.
func TestSummarizeEmpty(t *testing.T) {
	for _, tc := range []struct {
		name  string
		progs []Program
		calls []Call
		span  time.Duration
	}{
		{"nothing", nil, nil, time.Minute},
		{"all failed", []Program{{Agent: "a", Finish: sec(1), Failed: true}}, []Call{{Failed: true}}, time.Minute},
		{"zero span", []Program{{Agent: "a", Finish: sec(1)}}, nil, 0},
		{"instant program", []Program{{Agent: "a", Solo: sec(1)}}, nil, time.Minute},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := Summarize("direct", tc.progs, tc.calls, tc.span)
			if _, err := json.Marshal(a); err != nil {
				t.Fatalf("json.Marshal: %v (a statistic is NaN or Inf: %+v)", err, a)
			}
			if a.PerAgentSlowdown == nil {
				t.Error("PerAgentSlowdown is nil; want an empty map so JSON has {} rather than null")
			}
		})
	}
}

// The JSON names are a contract: results.json is read by tools comparing runs.
func TestArmJSON(t *testing.T) {
	progs, calls := handMade()
	a := Summarize("direct", progs, calls, time.Minute)
	b, err := json.Marshal(a)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	want := []string{"arm", "programs", "failed_programs", "programs_per_min",
		"tct_mean_s", "tct_geomean_s", "tct_p50_s", "tct_p99_s", "ttft_p50_s", "ttft_p99_s",
		"call_latency_p50_s", "call_latency_p99_s", "time_queued_frac", "time_executing_frac",
		"time_in_tools_frac", "slowdown_mean", "jain_slowdown", "slowdown_max_min", "wait_service_max",
		"per_agent_slowdown", "agent_fair_share", "afs_max_deviation", "prefix_hit_rate", "engine_busy", "batch_mean", "kv_occupancy",
		"preemptions", "failed_calls", "retries"}
	for _, k := range want {
		if _, ok := m[k]; !ok {
			t.Errorf("results.json lacks %q", k)
		}
	}
	if len(m) != len(want) {
		t.Errorf("results.json has %d keys, want %d: %s", len(m), len(want), b)
	}
	if _, ok := m["capacity_per_min"]; ok {
		t.Error("capacity_per_min present without --find-capacity")
	}
	c := 12.5
	a.CapacityPerMin = &c
	b, _ = json.Marshal(a)
	m = nil
	json.Unmarshal(b, &m)
	if m["capacity_per_min"] != 12.5 {
		t.Errorf("capacity_per_min = %v, want 12.5", m["capacity_per_min"])
	}
}
