package metrics

import (
	"math"
	"testing"
)

func TestFairShare(t *testing.T) {
	slow := map[string]float64{"a": 2, "b": 4, "c": 6}
	n := map[string]int{"a": 1, "b": 2, "c": 3}

	// Equal entitlement: the mean over agents, (2+4+6)/3 = 4; ratios 0.5, 1, 1.5; the
	// largest deviation |0.5-1| = |1.5-1| = 0.5.
	shares, dev := FairShare(slow, n, nil)
	want := []AgentShare{
		{Agent: "a", Programs: 1, Slowdown: 2, FairShare: 4, Ratio: 0.5},
		{Agent: "b", Programs: 2, Slowdown: 4, FairShare: 4, Ratio: 1},
		{Agent: "c", Programs: 3, Slowdown: 6, FairShare: 4, Ratio: 1.5},
	}
	if len(shares) != len(want) {
		t.Fatalf("got %d agents, want %d", len(shares), len(want))
	}
	for i := range want {
		if shares[i] != want[i] {
			t.Errorf("agent %d: %+v, want %+v", i, shares[i], want[i])
		}
	}
	if dev != 0.5 {
		t.Errorf("deviation %v, want 0.5", dev)
	}

	// Isolation: b and c are held to their slowdowns without a (1.6 and 4); a, missing
	// from ref, to none. Ratios 2.5 and 1.5; deviation 1.5.
	shares, dev = FairShare(slow, n, map[string]float64{"b": 1.6, "c": 4})
	if shares[0].FairShare != 0 || shares[0].Ratio != 0 {
		t.Errorf("agent a held to a share: %+v", shares[0])
	}
	if math.Abs(shares[1].Ratio-2.5) > 1e-12 || shares[2].Ratio != 1.5 {
		t.Errorf("ratios %v and %v, want 2.5 and 1.5", shares[1].Ratio, shares[2].Ratio)
	}
	if math.Abs(dev-1.5) > 1e-12 {
		t.Errorf("deviation %v, want 1.5", dev)
	}

	if shares, dev := FairShare(nil, nil, nil); len(shares) != 0 || dev != 0 {
		t.Errorf("no agents: %v, %v", shares, dev)
	}
}
