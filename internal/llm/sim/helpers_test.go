package sim

import (
	"testing"
	"time"
)

func mustProfile(t testing.TB, name string) Profile {
	t.Helper()
	p, err := LookupProfile(name)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func newTestEngine(t testing.TB, profile string, mode Mode, policy Policy) *Engine {
	t.Helper()
	e, err := NewEngine(EngineConfig{Profile: mustProfile(t, profile), Mode: mode, Policy: policy})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// ids makes n distinct-looking token ids; tag separates unrelated prompts.
func ids(tag uint64, n int) []uint32 {
	out := make([]uint32, n)
	for i := range out {
		out[i] = firstWordID + uint32(mix64(tag*1_000_003+uint64(i))%(vocabSize-firstWordID))
	}
	return out
}

// runUntilIdle steps the engine until nothing is waiting or running, failing the test if
// that takes more than maxSteps (a deadlock or livelock).
func runUntilIdle(t testing.TB, e *Engine, now time.Duration, maxSteps int) time.Duration {
	t.Helper()
	for i := 0; !e.Idle(); i++ {
		if i >= maxSteps {
			s := e.Stats()
			t.Fatalf("engine not idle after %d steps: %d running, %d waiting, %d free blocks", maxSteps, s.Running, s.Waiting, s.FreeBlocks)
		}
		now = e.Step(now).End
	}
	return now
}
