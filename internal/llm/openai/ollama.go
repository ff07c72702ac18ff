package openai

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/aios-go/aios/api"
	"github.com/aios-go/aios/internal/llm/upstream"
)

// ollamaTags is Ollama's GET /api/tags: every model pulled on the server.
type ollamaTags struct {
	Models []struct {
		Name       string    `json:"name"`
		ModifiedAt time.Time `json:"modified_at"`
		Size       int64     `json:"size"`
		Details    struct {
			Family            string `json:"family"`
			ParameterSize     string `json:"parameter_size"`
			QuantizationLevel string `json:"quantization_level"`
		} `json:"details"`
	} `json:"models"`
}

// ListOllamaModels lists the models pulled on an Ollama server, from its native
// /api/tags: unlike /v1/models it sees the server's whole library, which is what
// `ollama pull` changes.
func (c *Core) ListOllamaModels(ctx context.Context) ([]api.Model, error) {
	if c.closing.Err() != nil {
		return nil, api.Errorf(api.KernelShuttingDown, "openai backend %q is closed", c.cfg.Name)
	}
	// The native API lives at the server's root, beside /v1.
	root := strings.TrimSuffix(c.base, "v1/")
	hctx, hcancel := c.healthCtx(ctx)
	defer hcancel()
	rctx, cancel, stopClose := c.withCore(hctx)
	defer stopClose()
	defer cancel(nil)
	req, err := http.NewRequestWithContext(rctx, http.MethodGet, root+"api/tags", nil)
	if err != nil {
		return nil, api.Wrap(api.CallerBadRequest, err, "ollama tags URL from %s", c.base)
	}
	if c.cfg.APIKey != "" {
		req.Header.Set("Authorization", "Bearer "+c.cfg.APIKey)
	}
	hc := c.cfg.HTTPClient
	if hc == nil {
		hc = c.ownHTTP
	}
	res, err := hc.Do(req)
	if err != nil {
		if ctx.Err() == nil && hctx.Err() != nil {
			return nil, api.Wrap(api.BackendTimeout, err, "ollama at %s did not list its models within %v", root, c.cfg.HealthTimeout)
		}
		return nil, c.classify(ctx, rctx, nil, err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(io.LimitReader(res.Body, 8<<20))
	if err != nil {
		return nil, c.classify(ctx, rctx, nil, err)
	}
	if res.StatusCode != http.StatusOK {
		return nil, c.statusError(res.StatusCode, res.Header, upstream.ErrorMessage(body))
	}
	var tags ollamaTags
	if err := json.Unmarshal(body, &tags); err != nil {
		return nil, api.Wrap(api.BackendBadResponse, err, "ollama at %s sent a tag list that is not JSON", root)
	}
	out := make([]api.Model, 0, len(tags.Models))
	for _, m := range tags.Models {
		out = append(out, api.Model{ID: m.Name, Object: "model", Created: m.ModifiedAt.Unix(), OwnedBy: "ollama"})
	}
	return out, nil
}
