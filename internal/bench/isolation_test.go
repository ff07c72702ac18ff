package bench

import (
	"context"
	"errors"
	"math"
	"testing"

	"github.com/aios-go/aios/internal/bench/workload"
)

func TestParseArmFairShare(t *testing.T) {
	a, err := ParseArm("kernel:psjf+ws+afs+ttl")
	if err != nil || !a.WS || !a.AFS || !a.TTL || a.Policy != "psjf" {
		t.Fatalf("%+v %v", a, err)
	}
	if !wsConfig(Setup{}, a).FairShare {
		t.Error("+afs arm admits without fair share")
	}
	// Fair shares are shares of the working set: +afs alone cannot work.
	if _, err := ParseArm("kernel:psjf+afs"); err == nil {
		t.Error("kernel:psjf+afs accepted without +ws")
	}
}

func TestIsolationNeedsHeavyAgentAndOpenLoop(t *testing.T) {
	arms := []Arm{{Name: "direct"}}
	for _, o := range []Options{
		{Arms: arms, Virtual: true, Isolation: true, Rate: 10, Programs: 4},                 // no heavy agent
		{Arms: arms, Virtual: true, Isolation: true, Heavy: 4, Programs: 4},                 // closed loop
		{Arms: arms, Virtual: true, Isolation: true, Heavy: 4, Rate: 10, Workload: "trace"}, // agents of the trace's own
	} {
		if _, err := Run(context.Background(), o); !errors.Is(err, ErrIsolationSetup) {
			t.Errorf("%+v: got %v, want ErrIsolationSetup", o, err)
		}
	}
}

// The light-only run keeps the light agents' programs and their arrivals, and the arm's
// light agents are held to their slowdowns in it.
func TestIsolationRun(t *testing.T) {
	ps, err := workload.Generate("react", 22, 3, workload.Options{Heavy: 4})
	if err != nil {
		t.Fatal(err)
	}
	light := lightOnly(ps)
	if len(light) != 14 {
		t.Fatalf("light programs %d, want 14 of 22 (4 of every 11 are %s's)", len(light), HeavyAgent)
	}
	rep, err := Run(context.Background(), Options{Arms: []Arm{{Name: "direct"}}, Workload: "react", Programs: 22, Seed: 3,
		Heavy: 4, Rate: 30, Virtual: true, Isolation: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Isolation) != 1 {
		t.Fatalf("isolation rows %d, want 1", len(rep.Isolation))
	}
	iso, a := rep.Isolation[0], rep.Arms[0]
	var with, without []float64
	for _, s := range a.AgentShares {
		if s.Agent == HeavyAgent {
			if s.FairShare != 0 {
				t.Errorf("the heavy agent is held to a share: %+v", s)
			}
			continue
		}
		if s.FairShare <= 0 || math.Abs(s.Ratio-s.Slowdown/s.FairShare) > 1e-12 {
			t.Errorf("light agent %+v", s)
		}
		with, without = append(with, s.Slowdown), append(without, s.FairShare)
	}
	if len(with) != 7 {
		t.Fatalf("%d light agents, want 7", len(with))
	}
	mw, mo := 0.0, 0.0
	for i := range with {
		mw += with[i] / 7
		mo += without[i] / 7
	}
	if math.Abs(iso.LightSlowdown-mw) > 1e-9 || math.Abs(iso.LightAloneSlowdown-mo) > 1e-9 || math.Abs(iso.Ratio-mw/mo) > 1e-9 {
		t.Errorf("isolation %+v, want light %v alone %v", iso, mw, mo)
	}
}
