package boot

import (
	"sync"

	"github.com/aios-go/aios/api"
	"github.com/aios-go/aios/internal/config"
	"github.com/aios-go/aios/internal/embed"
	"github.com/aios-go/aios/internal/llm/sim"
)

// EmbeddingModels serves POST /v1/embeddings from the configured models: a sim model
// embeds in process with the simulator's deterministic function (the vectors `aios sim
// serve` returns), an OpenAI-compatible model through its server's /v1/embeddings, and
// Anthropic and Gemini models serve none. The name of embeddings.model also reaches
// embeddings.core, so clients can ask for an embedding model by its own name.
type EmbeddingModels struct {
	models map[string]config.Model
	cfg    config.Embeddings

	mu    sync.Mutex
	cache map[embedderKey]embed.Embedder // one HTTP client per upstream model and size
}

// maxCachedEmbedders bounds the upstream embedders kept.
const maxCachedEmbedders = 32

type embedderKey struct {
	model string
	dim   int
}

func newEmbeddingModels(cfg config.Config) *EmbeddingModels {
	e := &EmbeddingModels{models: map[string]config.Model{}, cfg: cfg.Embeddings, cache: map[embedderKey]embed.Embedder{}}
	for _, m := range cfg.LLMs.Models {
		e.models[m.Name] = m
	}
	return e
}

// Embedder returns what embeds for model, at dimensions (0: the model's own size). The
// error is CallerNotFound when no configured model has that name, CallerBadRequest when
// the model serves no embeddings or not at that size.
func (e *EmbeddingModels) Embedder(model string, dimensions int) (embed.Embedder, error) {
	if dimensions < 0 {
		return nil, api.Errorf(api.CallerBadRequest, "dimensions must be at least 1, got %d", dimensions)
	}
	m, ok := e.models[model]
	upstream := ""
	switch {
	case ok:
		if e.cfg.Core == model && e.cfg.Model != "" {
			upstream = e.cfg.Model
		}
	case model != "" && model == e.cfg.Model && e.cfg.Core != "":
		m, upstream = e.models[e.cfg.Core], model
	case model == sim.EmbeddingModel && e.hasSim():
		m = config.Model{Name: model, Backend: "sim"}
	default:
		return nil, api.Errorf(api.CallerNotFound, "The model `%s` does not exist or is not served by this kernel", model)
	}
	switch {
	case m.Backend == "sim":
		if dimensions == 0 && e.cfg.Core == m.Name {
			// The size storage and memory embed at, so vectors compare with theirs.
			dimensions = e.cfg.Dimensions
		}
		if dimensions > sim.MaxEmbedDim {
			return nil, api.Errorf(api.CallerBadRequest, "dimensions must be between 1 and %d, got %d", sim.MaxEmbedDim, dimensions)
		}
		return simEmbedder{dim: dimensions}, nil
	case openAICompatible[m.Backend]:
		if upstream == "" {
			upstream = upstreamName(m)
		}
		return e.openAI(m, upstream, dimensions)
	}
	return nil, api.Errorf(api.CallerBadRequest, "model %q (backend %s) does not serve embeddings; use a sim or OpenAI-compatible model", model, m.Backend)
}

func (e *EmbeddingModels) hasSim() bool {
	for _, m := range e.models {
		if m.Backend == "sim" {
			return true
		}
	}
	return false
}

func (e *EmbeddingModels) openAI(m config.Model, upstream string, dim int) (embed.Embedder, error) {
	key := embedderKey{m.Name + "\x00" + upstream, dim}
	e.mu.Lock()
	defer e.mu.Unlock()
	if em, ok := e.cache[key]; ok {
		return em, nil
	}
	base := m.Hostname
	switch {
	case base == "" && m.Backend == "openai":
		base = "https://api.openai.com/v1"
	case base == "" && m.Backend == "ollama":
		base = "http://localhost:11434"
	}
	em, err := embed.NewOpenAI(embed.OpenAIConfig{BaseURL: base, APIKey: m.APIKey, Model: upstream, Dimensions: dim, Timeout: m.Timeout})
	if err != nil {
		return nil, api.Wrap(api.KernelInternal, err, "model %q cannot serve embeddings as configured", m.Name)
	}
	if len(e.cache) >= maxCachedEmbedders {
		// Sizes are the client's choice; past a few, start over rather than grow.
		clear(e.cache)
	}
	e.cache[key] = em
	return em, nil
}
