package bench

import (
	"context"
	"errors"
	"testing"
)

func TestParseSwapArm(t *testing.T) {
	a, err := ParseArm("kernel:psjf+ws+swap+ttl")
	if err != nil || !a.WS || !a.Swap || !a.TTL || a.Policy != "psjf" {
		t.Fatalf("%+v %v", a, err)
	}
	if _, err := ParseArm("kernel:psjf+swap"); err == nil {
		t.Fatal("+swap without +ws accepted")
	}
}

// A +swap arm needs engines with a CPU tier to swap to; without one it fails at start.
func TestSwapNeedsATier(t *testing.T) {
	arm, _ := ParseArm("kernel:fifo+ws+swap")
	if _, err := RunVirtual(Setup{}, arm, programs(t, "chat", 2, 1), 0); err == nil {
		t.Fatal("a +swap arm ran with no CPU tier")
	}
	if _, err := RunLive(context.Background(), Setup{KVOffloadGiB: 8}, arm, programs(t, "chat", 1, 1), 1, 200); !errors.Is(err, ErrSwapLive) {
		t.Fatalf("live +swap arm: %v, want ErrSwapLive", err)
	}
}

// Chat turns wait on the user for seconds (the think time is a tool step), longer than
// SwapAfter once learned: the +swap arm swaps the conversation out, and its engine copies
// the context to the tier. Without +swap nothing reaches the tier on a workload this
// small, which never evicts.
func TestSwapArmOffloadsAcrossToolCalls(t *testing.T) {
	setup := Setup{KVOffloadGiB: 8}
	ps := programs(t, "chat", 4, 1)
	for _, name := range []string{"kernel:fifo+ws", "kernel:fifo+ws+swap"} {
		arm, err := ParseArm(name)
		if err != nil {
			t.Fatal(err)
		}
		res, err := RunVirtual(setup, arm, ps, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range res.Programs {
			if p.Failed {
				t.Fatalf("%s: program %d failed", name, p.ID)
			}
		}
		stored := res.Engine.OffloadStoredBlocks
		if arm.Swap && stored == 0 {
			t.Errorf("%s: nothing copied to the tier", name)
		}
		if !arm.Swap && stored != 0 {
			t.Errorf("%s: %d blocks copied to the tier with nothing evicted", name, stored)
		}
	}
}
