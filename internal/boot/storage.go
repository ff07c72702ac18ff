package boot

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"

	"github.com/aios-go/aios/api"
	"github.com/aios-go/aios/internal/config"
	"github.com/aios-go/aios/internal/embed"
	"github.com/aios-go/aios/internal/kernel"
	"github.com/aios-go/aios/internal/llm/sim"
	"github.com/aios-go/aios/internal/sched"
	"github.com/aios-go/aios/internal/storage"
)

// storageService runs storage syscalls on the storage manager; the kernel closes it
// at shutdown, after the last syscall ended. gated says the access manager checks every
// call, which another agent's namespace (params.owner) needs.
type storageService struct {
	m     *storage.Manager
	gated bool
}

func (s storageService) Admit(r kernel.Request) error {
	p, _ := r.Args.(*api.StorageParams)
	if p == nil {
		return nil
	}
	return checkOwner(sched.Storage, r, p.Owner, s.gated)
}

func (s storageService) Run(ctx context.Context, r kernel.Request) (any, error) {
	p, _ := r.Args.(*api.StorageParams)
	agent := r.Agent
	if p != nil {
		var err error
		if agent, ctx, err = namespaceFor(ctx, sched.Storage, r, p.Owner, s.gated); err != nil {
			return nil, err
		}
	}
	return s.m.Syscall(ctx, agent, r.Op, p)
}

func (s storageService) Close() error { return s.m.Close() }

func openStorage(cfg config.Config, log *slog.Logger) (*storage.Manager, error) {
	emb, err := embedder(cfg)
	if err != nil {
		return nil, err
	}
	path := cfg.Storage.Path
	if path == "" {
		path = filepath.Join(cfg.DataDir, "storage.db")
	}
	m, err := storage.Open(context.Background(), storage.Config{
		Backend: cfg.Storage.Backend, Path: path, DSN: cfg.Storage.DSN,
		MaxVersions: cfg.Storage.MaxVersions, MaxFileBytes: cfg.Storage.MaxFileBytes,
		QuotaBytes: cfg.Storage.QuotaBytes, HostRoots: cfg.Storage.HostRoots,
		Embedder: emb, Logger: log.With("module", "storage"),
	})
	if err != nil {
		return nil, fmt.Errorf("storage (%s): %w", cfg.Storage.Backend, err)
	}
	return m, nil
}

// embedder is what storage and memory embed text with: the configured core's
// /v1/embeddings, the simulated engine's embeddings computed in process, or, with no
// core configured, the model-free hashed n-grams.
func embedder(cfg config.Config) (embed.Embedder, error) {
	e := cfg.Embeddings
	if e.Core == "" {
		return embed.Hashed{}, nil
	}
	var m *config.Model
	for i := range cfg.LLMs.Models {
		if cfg.LLMs.Models[i].Name == e.Core {
			m = &cfg.LLMs.Models[i]
			break
		}
	}
	if m == nil {
		return nil, fmt.Errorf("embeddings.core %q is not among llms.models", e.Core)
	}
	switch {
	case m.Backend == "sim":
		return simEmbedder{dim: e.Dimensions}, nil
	case openAICompatible[m.Backend]:
		model := e.Model
		if model == "" {
			model = upstreamName(*m)
		}
		return embed.NewOpenAI(embed.OpenAIConfig{BaseURL: m.Hostname, APIKey: m.APIKey, Model: model, Dimensions: e.Dimensions})
	}
	return nil, fmt.Errorf("embeddings.core %q: backend %s serves no OpenAI-compatible /v1/embeddings; name a sim, vllm, ollama or openai core", e.Core, m.Backend)
}

// simEmbedder is the simulated engine's /v1/embeddings without the HTTP hop.
type simEmbedder struct{ dim int }

func (s simEmbedder) size() int {
	if s.dim <= 0 {
		return sim.DefaultEmbedDim
	}
	return s.dim
}

func (s simEmbedder) Name() string { return fmt.Sprintf("sim:%s:%d", sim.EmbeddingModel, s.size()) }

func (s simEmbedder) Embed(ctx context.Context, texts []string) ([][]float32, error) {
	out := make([][]float32, len(texts))
	for i, t := range texts {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		out[i] = sim.Embed(t, s.size())
	}
	return out, nil
}
