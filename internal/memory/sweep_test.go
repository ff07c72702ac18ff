package memory_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/aios-go/aios/internal/memory"
)

// TestFusionSweep prints recall on the dev half of the quality set for a grid of fusion
// weights (keyword weight 1). It is how the default weights were chosen: on the dev
// half only, so the test half of TestRetrievalQuality stays held out. Run with
// AIOS_MEMORY_SWEEP=1.
func TestFusionSweep(t *testing.T) {
	if os.Getenv("AIOS_MEMORY_SWEEP") == "" {
		t.Skip("set AIOS_MEMORY_SWEEP=1 to sweep fusion weights on the dev half")
	}
	personas := buildPersonas()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "q.db")
	m, err := memory.Open(ctx, memory.Config{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	ids := map[string][]string{}
	for _, p := range personas {
		added, err := m.AddBatch(ctx, p.agent, p.turns)
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range added {
			ids[p.agent] = append(ids[p.agent], n.ID)
		}
	}
	m.Close()
	m, err = memory.Open(ctx, memory.Config{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	var kw recall
	for _, p := range personas {
		for qi, q := range p.qs {
			if qi%2 == 0 {
				hits, _ := m.Retrieve(ctx, p.agent, memory.Query{Text: q.text, K: 10, Mode: "keyword"})
				kw.add(hits, ids[p.agent], q.evidence)
			}
		}
	}
	t.Logf("keyword alone: dev %s", kw)
	for _, vw := range []float64{0, 0.05, 0.1, 0.15, 0.2, 0.3, 0.5, 1} {
		for _, rw := range []float64{0, 0.1, 0.2, 0.25, 0.3, 0.4, 0.5} {
			// One Manager per setting, over the same stored notes.
			m.Close()
			if m, err = memory.Open(ctx, memory.Config{Path: path, Fusion: &memory.Fusion{Keyword: 1, Vector: vw, Recency: rw}}); err != nil {
				t.Fatal(err)
			}
			var dev recall
			for _, p := range personas {
				for qi, q := range p.qs {
					if qi%2 != 0 {
						continue
					}
					hits, err := m.Retrieve(ctx, p.agent, memory.Query{Text: q.text, K: 10})
					if err != nil {
						t.Fatal(err)
					}
					dev.add(hits, ids[p.agent], q.evidence)
				}
			}
			t.Logf("vector %.2f recency %.2f: dev %s", vw, rw, dev)
		}
	}
	m.Close()
}
