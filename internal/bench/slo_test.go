package bench

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/aios-go/aios/internal/bench/workload"
	"github.com/aios-go/aios/internal/sched"
)

func TestParseTCTObjective(t *testing.T) {
	for _, c := range []struct {
		in   string
		want SLOSpec
	}{
		{"4x", SLOSpec{TCTSolo: 4}},
		{"2.5xp99", SLOSpec{TCTSoloP99: 2.5}},
		{"300s", SLOSpec{TCT: 300 * time.Second}},
		{"", SLOSpec{}},
	} {
		var s SLOSpec
		if err := s.ParseTCTObjective(c.in); err != nil || s.TCT != c.want.TCT || s.TCTSolo != c.want.TCTSolo || s.TCTSoloP99 != c.want.TCTSoloP99 {
			t.Errorf("%q: %+v %v, want %+v", c.in, s, err, c.want)
		}
	}
	for _, bad := range []string{"0x", "-2x", "xp99", "-1s", "0s", "soon", "Infx"} {
		var s SLOSpec
		if err := s.ParseTCTObjective(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestSLOObjectivePerProgram(t *testing.T) {
	s := time.Second
	p := &workload.Program{ID: 7}
	spec := SLOSpec{TCTSolo: 2, TTFT: 3 * s, Solo: map[int]time.Duration{7: 10 * s}, SoloP99: 50 * s}
	if got := spec.objective(p); got != (sched.SLO{TCT: 20 * s, TTFT: 3 * s}) {
		t.Errorf("2x a solo of 10s: %+v, want tct 20s", got)
	}
	spec.TCTSolo, spec.TCTSoloP99 = 0, 3
	if got := spec.objective(p); got.TCT != 150*s {
		t.Errorf("3x a solo p99 of 50s: %v, want 150s", got.TCT)
	}
	// The deadline of a call submitted 100s into a program that arrived at 5s: its
	// TTFT's, 103s, before the program's 155s.
	if d := spec.objective(p).Deadline(5*s, 100*s); d != 103*s {
		t.Errorf("deadline %v, want 103s", d)
	}
}

// A run with objectives reports every arm's attainment, the bursting agent's apart;
// objectives every program meets give 100%.
func TestRunReportsSLOAttainment(t *testing.T) {
	o := Options{
		Setup: Setup{Profile: "llama3-8b-h100"}, Arms: mustArms(t, "direct,kernel:slo+ws"),
		Workload: "react", Programs: 20, Seed: 2, Virtual: true, Rate: 30, Heavy: 3, AgentIDs: 4,
	}
	if err := o.SLO.ParseTCTObjective("100x"); err != nil {
		t.Fatal(err)
	}
	o.SLO.TTFT = time.Hour
	rep, err := Run(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range rep.Arms {
		s := a.SLO
		if s == nil || s.Burst != "agent-0" || s.TCT.Total != 20 || s.TCT.Overall != 1 || s.TTFT.Overall != 1 {
			t.Fatalf("%s: %+v", a.Arm, s)
		}
		if _, ok := s.OthersTCT.PerAgent["agent-0"]; ok || s.OthersTCT.Total >= 20 || s.OthersTTFT.Total >= s.TTFT.Total {
			t.Errorf("%s: the others' attainment counts the bursting agent: %+v", a.Arm, s.OthersTCT)
		}
	}
	var sb strings.Builder
	rep.WriteTable(&sb)
	if !strings.Contains(sb.String(), "SLO attainment") || !strings.Contains(sb.String(), "TCT agent-0") {
		t.Fatal(sb.String())
	}
	o.Virtual = false
	if _, err := Run(context.Background(), o); !errors.Is(err, ErrSLOLive) {
		t.Errorf("objectives over HTTP: %v, want ErrSLOLive", err)
	}
}

// A burst run reports its window and rate, and the window's arrivals come faster: with 4
// agents and agent-0 at 3×, (3 + 3) / 4 = 1.5 times the rate.
func TestRunWithBurst(t *testing.T) {
	o := Options{
		Setup: Setup{Profile: "llama3-8b-h100"}, Arms: mustArms(t, "direct"),
		Workload: "react", Programs: 40, Seed: 2, Virtual: true, Rate: 30, Heavy: 3, AgentIDs: 4,
		Burst: &workload.Burst{From: 0.25, To: 0.75},
	}
	rep, err := Run(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Burst == nil || rep.BurstRatePerMin != 45 || rep.RatePerMin != 30 {
		t.Fatalf("burst %+v at %v/min, rate %v", rep.Burst, rep.BurstRatePerMin, rep.RatePerMin)
	}
	plain := workload.Poisson(30, 40, o.Seed^0x5eed)
	burst := o.arrivals(30, 40, o.Seed^0x5eed)
	// Programs 10-29 arrive over two thirds of the time they take without the burst.
	got, want := burst[29]-burst[9], (plain[29]-plain[9])*2/3
	if d := got - want; d < -time.Millisecond || d > time.Millisecond {
		t.Fatalf("window spans %v, want %v", got, want)
	}
	var sb strings.Builder
	rep.WriteTable(&sb)
	if !strings.Contains(sb.String(), "45.0 while agent-0 bursts, programs 25%–75%") {
		t.Fatal(sb.String())
	}
	o.Heavy = 1
	if _, err := Run(context.Background(), o); !errors.Is(err, ErrBurstSetup) {
		t.Fatalf("burst without a heavy agent: %v", err)
	}
}
