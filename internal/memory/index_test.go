package memory

import (
	"context"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/aios-go/aios/internal/embed"
)

// TestVectorRecall measures how often the SimHash scan with exact re-ranking finds the
// true top 10 by cosine (an exhaustive scan of every stored vector), on 5,000 notes of
// random vocabulary, for two kinds of query: four words of one note plus two random
// words (a query about something stored; asserted at least 0.9) and six random words
// (nothing stored matches well, so the top 10 are near-ties at low cosine; logged only).
func TestVectorRecall(t *testing.T) {
	ctx := context.Background()
	m, err := Open(ctx, Config{Path: filepath.Join(t.TempDir(), "v.db"), HotBytes: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	r := rand.New(rand.NewPCG(1, 2))
	vocab := make([]string, 3000)
	for i := range vocab {
		vocab[i] = fmt.Sprintf("w%dx%d", i, r.IntN(1000))
	}
	sentence := func(n int) string {
		s := ""
		for range n {
			s += vocab[r.IntN(len(vocab))] + " "
		}
		return s
	}
	size := 5000
	if RaceEnabled {
		size = 1500
	}
	notes := make([]Note, size)
	for i := range notes {
		notes[i] = Note{Content: sentence(12)}
	}
	if _, err := m.AddBatch(ctx, "a", notes); err != nil {
		t.Fatal(err)
	}
	all, err := m.loadVecs(ctx, allRIDs(t, m), m.emb.Name())
	if err != nil {
		t.Fatal(err)
	}
	for _, kind := range []string{"about a note", "random words"} {
		rec := vectorRecall(t, m, all, func() string {
			if kind == "random words" {
				return sentence(6)
			}
			words := strings.Fields(notes[r.IntN(len(notes))].Content)
			r.Shuffle(len(words), func(i, j int) { words[i], words[j] = words[j], words[i] })
			return strings.Join(words[:4], " ") + " " + sentence(2)
		})
		t.Logf("SimHash scan + exact re-rank, queries %s: recall@10 against exhaustive cosine = %.3f (50 queries, %d notes)", kind, rec, size)
		if kind == "about a note" && rec < 0.9 {
			t.Errorf("vector recall@10 %.3f for queries about a note, want >= 0.9", rec)
		}
	}
}

func vectorRecall(t *testing.T, m *Manager, all map[int64][]float32, query func() string) float64 {
	ctx := context.Background()
	var found, total int
	for range 50 {
		q, _ := m.emb.Embed(ctx, []string{query()})
		type sc struct {
			rid int64
			cos float64
		}
		var exact []sc
		for rid, v := range all {
			exact = append(exact, sc{rid, embed.Cosine(q[0], v)})
		}
		sort.Slice(exact, func(i, j int) bool { return exact[i].cos > exact[j].cos })
		got, _, err := m.nearestTo(ctx, q[0], filter{scopes: []string{agentScope("a")}}, 50, 0, minRerank)
		if err != nil {
			t.Fatal(err)
		}
		in := map[int64]bool{}
		for _, c := range got[:min(10, len(got))] {
			in[c.rid] = true
		}
		for _, e := range exact[:10] {
			total++
			if in[e.rid] {
				found++
			}
		}
	}
	return float64(found) / float64(total)
}

func allRIDs(t *testing.T, m *Manager) []int64 {
	rids, err := scanRIDs(m.db.Read().Query(context.Background(), `SELECT rid FROM mem_notes`))
	if err != nil {
		t.Fatal(err)
	}
	return rids
}
