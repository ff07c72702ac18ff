package kernel

import (
	"context"
	"sync"
	"time"

	"github.com/aios-go/aios/api"
	"github.com/aios-go/aios/internal/llm"
)

// modelLister is a core that can say which models its backend serves.
type modelLister interface {
	ListModels(ctx context.Context) ([]api.Model, error)
}

// ollamaLister is a core on an Ollama server, whose /api/tags lists every model pulled
// there (its /v1/models lists the same names, with less about them).
type ollamaLister interface {
	ListOllamaModels(ctx context.Context) ([]api.Model, error)
}

const discoverTimeout = 5 * time.Second

// Discover asks every core's backend, concurrently, which models it serves. A core that
// cannot say (the simulator) or does not answer gets an error entry, not a failure.
func (k *Kernel) Discover(ctx context.Context) api.DiscoveredModels {
	out := api.DiscoveredModels{Cores: make([]api.CoreModels, len(k.cores))}
	var wg sync.WaitGroup
	for i, e := range k.cores {
		out.Cores[i] = api.CoreModels{Core: coreName(e), Backend: e.cfg.Backend, Hostname: e.cfg.Hostname, Models: []api.Model{}}
		wg.Go(func() {
			cctx, cancel := context.WithTimeout(ctx, discoverTimeout)
			defer cancel()
			ms, err := listModels(cctx, e.cfg.Core, e.cfg.Backend)
			if err != nil {
				out.Cores[i].Error = err.Error()
				return
			}
			out.Cores[i].Models = ms
		})
	}
	wg.Wait()
	return out
}

func listModels(ctx context.Context, c llm.Core, backend string) ([]api.Model, error) {
	// Decorators (the rate limiter) hide the backend's own methods.
	for {
		u, ok := c.(interface{ Unwrap() llm.Core })
		if !ok {
			break
		}
		c = u.Unwrap()
	}
	if ol, ok := c.(ollamaLister); ok && backend == "ollama" {
		return ol.ListOllamaModels(ctx)
	}
	if ml, ok := c.(modelLister); ok {
		return ml.ListModels(ctx)
	}
	return nil, api.Errorf(api.PolicyNotEnabled, "backend %q does not list its models", backend)
}
