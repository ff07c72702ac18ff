package bench

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/aios-go/aios/internal/bench/metrics"
	"github.com/aios-go/aios/internal/llm/sim"
)

// A small closed-loop run under memory pressure (48 swe agents at once on one engine
// thrash it when called directly): every arm's misses are bounded below by MIN's on the
// same string, and MIN's by the first references; the figures reach the report and its
// table.
func TestBeladyAgainstEveryArm(t *testing.T) {
	o := Options{Setup: Setup{Profile: "llama3-8b-h100", Belady: true},
		Arms: mustArms(t, "direct,kernel:fifo+ws"), Workload: "swe", Programs: 48, Seed: 3,
		Virtual: true, Agents: 48}
	rep, err := Run(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range rep.Arms {
		b := a.Belady
		if b == nil {
			t.Fatalf("%s: no MIN figures", a.Arm)
		}
		if b.Refs == 0 || b.MINMisses > b.Misses || b.Compulsory > b.MINMisses || b.Misses > b.Refs {
			t.Errorf("%s: %+v", a.Arm, *b)
		}
		if b.Recomputed != (b.Misses-b.Compulsory)*16 || b.MINRecomputed != (b.MINMisses-b.Compulsory)*16 {
			t.Errorf("%s: recomputed tokens are not repeat misses × 16: %+v", a.Arm, *b)
		}
		if b.MINRecomputed > 0 && (b.Ratio == nil || *b.Ratio < 1) {
			t.Errorf("%s: ratio %v with %d and %d recomputed", a.Arm, b.Ratio, b.Recomputed, b.MINRecomputed)
		}
		t.Logf("%s: %d refs, %d misses, MIN %d, compulsory %d", a.Arm, b.Refs, b.Misses, b.MINMisses, b.Compulsory)
	}
	if b := rep.Arms[0].Belady; b.MINRecomputed == 0 {
		t.Errorf("direct: MIN recomputes nothing (%+v); the run lost its memory pressure", *b)
	}
	var sb strings.Builder
	rep.WriteTable(&sb)
	if !strings.Contains(sb.String(), "MIN misses") {
		t.Errorf("the table has no MIN columns:\n%s", sb.String())
	}
}

// Without the flag nothing is recorded and the table keeps its columns.
func TestBeladyOffByDefault(t *testing.T) {
	res, err := RunVirtual(Setup{}, Arm{Name: "direct"}, programs(t, "react", 2, 1), 2)
	if err != nil {
		t.Fatal(err)
	}
	if res.Belady != nil {
		t.Fatal("figures without the flag")
	}
	rep := &Report{Virtual: true, Arms: nil}
	var sb strings.Builder
	rep.WriteTable(&sb)
	if strings.Contains(sb.String(), "MIN") {
		t.Fatal("MIN columns without the flag")
	}
}

// MIN needs the engines' caches in hand: a live run, or a naive engine, is refused.
func TestBeladyRefused(t *testing.T) {
	ps := programs(t, "react", 2, 1)
	o := Options{Setup: Setup{Belady: true}, Arms: mustArms(t, "direct"), Workload: "react", Programs: 2}
	if _, err := Run(context.Background(), o); !errors.Is(err, ErrBeladyLive) {
		t.Errorf("live run: %v", err)
	}
	if _, err := RunLive(context.Background(), Setup{Belady: true}, Arm{Name: "direct"}, ps, 1, 200); !errors.Is(err, ErrBeladyLive) {
		t.Errorf("RunLive: %v", err)
	}
	o.Virtual, o.Mode = true, sim.ModeNaive
	if _, err := Run(context.Background(), o); !errors.Is(err, ErrBeladyMode) {
		t.Errorf("naive engine: %v", err)
	}
}

// Several engines' figures add up, and the ratio follows the sums.
func TestBeladySumsEngines(t *testing.T) {
	var b metrics.Belady
	b.Add(metrics.Belady{Refs: 10, Misses: 6, MINMisses: 4, Compulsory: 3, Recomputed: 48, MINRecomputed: 16})
	if b.Ratio == nil || *b.Ratio != 3 {
		t.Fatalf("one engine: %+v", b)
	}
	b.Add(metrics.Belady{Refs: 5, Misses: 2, MINMisses: 2, Compulsory: 1, Recomputed: 16, MINRecomputed: 16})
	if b.Refs != 15 || b.Misses != 8 || b.MINMisses != 6 || b.Compulsory != 4 || b.Ratio == nil || *b.Ratio != 2 {
		t.Fatalf("two engines: %+v", b)
	}
	var none metrics.Belady
	none.Add(metrics.Belady{Refs: 3, Misses: 3, MINMisses: 3, Compulsory: 3})
	if none.Ratio != nil {
		t.Fatalf("a ratio over zero: %v", *none.Ratio)
	}
}
