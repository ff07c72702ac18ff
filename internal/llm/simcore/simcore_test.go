package simcore

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"go.uber.org/goleak"

	"github.com/aios-go/aios/api"
	"github.com/aios-go/aios/internal/llm/sim"
)

// A Core runs an engine goroutine; every test must stop it.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func newCore(t *testing.T, dim int) *Core {
	t.Helper()
	c, err := New(Config{Config: sim.Config{Profile: "test", Speed: 1000, EmbedDim: dim}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// In process and over HTTP the simulator gives the same vectors, so a kernel on a sim
// core and a client of the simulated server share one space.
func TestEmbedMatchesTheServer(t *testing.T) {
	c := newCore(t, 32)
	if c.EmbedModel() != sim.EmbeddingModel || c.EmbedDim() != 32 {
		t.Fatalf("EmbedModel %q, EmbedDim %d", c.EmbedModel(), c.EmbedDim())
	}
	texts := []string{"the cat sat", "quarterly tax report", ""}
	got, err := c.Embed(context.Background(), texts)
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(sim.NewServerFor(c.Live()).Handler())
	defer ts.Close()
	body, _ := json.Marshal(map[string]any{"model": c.EmbedModel(), "input": texts})
	res, err := http.Post(ts.URL+"/v1/embeddings", "application/json", strings.NewReader(string(body)))
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var wire struct {
		Data []struct {
			Embedding []float32 `json:"embedding"`
		} `json:"data"`
	}
	if err := json.NewDecoder(res.Body).Decode(&wire); err != nil {
		t.Fatal(err)
	}
	if len(got) != len(texts) || len(wire.Data) != len(texts) {
		t.Fatalf("%d in-process and %d served vectors for %d texts", len(got), len(wire.Data), len(texts))
	}
	for i := range texts {
		if len(got[i]) != 32 {
			t.Fatalf("vector %d has %d dims", i, len(got[i]))
		}
		for j := range got[i] {
			if got[i][j] != wire.Data[i].Embedding[j] {
				t.Fatalf("text %d component %d: in-process %v, served %v", i, j, got[i][j], wire.Data[i].Embedding[j])
			}
		}
	}
}

func TestEmbedCancelled(t *testing.T) {
	c := newCore(t, 0)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := c.Embed(ctx, []string{"a"})
	if k := api.KindOf(err); k != api.CallerCancelled || !errors.Is(err, context.Canceled) {
		t.Fatalf("err %v (kind %s), want caller_cancelled wrapping context.Canceled", err, k)
	}
	if v, err := c.Embed(context.Background(), nil); err != nil || len(v) != 0 {
		t.Fatalf("no texts: %v, %v", v, err)
	}
}
