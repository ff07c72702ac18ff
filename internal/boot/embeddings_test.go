package boot

import (
	"context"
	"errors"
	"testing"

	"github.com/aios-go/aios/api"
	"github.com/aios-go/aios/internal/config"
	"github.com/aios-go/aios/internal/embed"
	"github.com/aios-go/aios/internal/llm/sim"
)

func TestEmbeddingModels(t *testing.T) {
	cfg := config.Config{
		LLMs: config.LLMs{Models: []config.Model{
			{Name: "local", Backend: "sim"},
			{Name: "vllm-a", Backend: "vllm", Hostname: "http://127.0.0.1:1"},
			{Name: "gpt", Backend: "openai", Hostname: "http://127.0.0.1:2/v1", UpstreamModel: "gpt-4o"},
			{Name: "claude", Backend: "anthropic"},
			{Name: "gem", Backend: "gemini"},
		}},
		Embeddings: config.Embeddings{Core: "gpt", Model: "text-embedding-3-small"},
	}
	e := newEmbeddingModels(cfg)
	for _, c := range []struct {
		model string
		dim   int
		name  string // the embedder's Name, or the kind of error
	}{
		{"local", 0, "sim:sim-embed-1:256"},
		{"local", 32, "sim:sim-embed-1:32"},
		{sim.EmbeddingModel, 0, "sim:sim-embed-1:256"},
		{"vllm-a", 0, "openai:vllm-a"},
		{"vllm-a", 128, "openai:vllm-a:128"},
		// The embeddings core sends embeddings.model upstream, under either name.
		{"gpt", 0, "openai:text-embedding-3-small"},
		{"text-embedding-3-small", 0, "openai:text-embedding-3-small"},
		{"claude", 0, string(api.CallerBadRequest)},
		{"gem", 0, string(api.CallerBadRequest)},
		{"local", sim.MaxEmbedDim + 1, string(api.CallerBadRequest)},
		{"nonesuch", 0, string(api.CallerNotFound)},
		{"", 0, string(api.CallerNotFound)},
	} {
		em, err := e.Embedder(c.model, c.dim)
		got := ""
		if err != nil {
			var ae *api.Error
			if !errors.As(err, &ae) {
				t.Fatalf("%s: untyped error %v", c.model, err)
			}
			got = string(ae.Kind)
		} else {
			got = em.Name()
		}
		if got != c.name {
			t.Errorf("%s at %d: %s, want %s", c.model, c.dim, got, c.name)
		}
	}
	// One upstream client per model and size, not one per request.
	a, _ := e.Embedder("vllm-a", 0)
	b, _ := e.Embedder("vllm-a", 0)
	if a != b {
		t.Fatal("a new upstream embedder for every request")
	}
	v, err := mustEmbed(t, e, "local", "hello world")
	if err != nil || len(v) != sim.DefaultEmbedDim {
		t.Fatalf("%d, %v", len(v), err)
	}
}

func mustEmbed(t *testing.T, e *EmbeddingModels, model, text string) ([]float32, error) {
	t.Helper()
	var em embed.Embedder
	em, err := e.Embedder(model, 0)
	if err != nil {
		return nil, err
	}
	out, err := em.Embed(context.Background(), []string{text})
	if err != nil {
		return nil, err
	}
	return out[0], nil
}
