package boot

import (
	"log/slog"

	"github.com/aios-go/aios/internal/config"
	"github.com/aios-go/aios/internal/llm"
	"github.com/aios-go/aios/internal/llm/openai"
)

// resumable are the servers that continue a partial assistant message exactly
// (continue_final_message), which round-robin's context switch needs.
var resumable = map[string]bool{"vllm": true, "sglang": true}

func newOpenAICore(m config.Model, log *slog.Logger) (llm.Core, error) {
	resume := resumable[m.Backend]
	if m.Resume != nil {
		resume = *m.Resume
	}
	name := m.UpstreamModel
	if name == "" {
		name = m.Name
	}
	base := m.Hostname
	if base == "" && m.Backend == "openai" {
		base = "https://api.openai.com/v1"
	}
	if base == "" && m.Backend == "ollama" {
		base = "http://localhost:11434"
	}
	c, err := openai.New(openai.Config{
		Name: name, BaseURL: base, APIKey: m.APIKey,
		MaxInflight: m.MaxInflight, MaxTokens: m.MaxTokensInflight,
		Resume: resume, Priority: m.Priority, IdleTimeout: m.Timeout,
		Retention: m.KVRetention, Offload: m.KVOffload, Logger: log,
	})
	if err != nil {
		return nil, err
	}
	// The kernel learns which session hints the server takes from the core's type.
	return c.WithHints(), nil
}
