package boot

import (
	"fmt"
	"github.com/aios-go/aios/internal/kernel"

	"github.com/aios-go/aios/internal/config"
	"github.com/aios-go/aios/internal/llm"
	"github.com/aios-go/aios/internal/llm/anthropic"
	"github.com/aios-go/aios/internal/llm/gemini"
	"github.com/aios-go/aios/internal/llm/ratelimit"
)

func upstreamName(m config.Model) string {
	if m.UpstreamModel != "" {
		return m.UpstreamModel
	}
	return m.Name
}

func newAnthropicCore(m config.Model) (llm.Core, error) {
	return anthropic.New(anthropic.Config{
		Name: upstreamName(m), BaseURL: m.Hostname, APIKey: m.APIKey,
		MaxInflight: m.MaxInflight, MaxTokens: m.MaxTokensInflight,
		// Claude 4.6 and later refuse prefills; resume is for the models that take them.
		Resume:      m.Resume != nil && *m.Resume,
		IdleTimeout: m.Timeout,
	})
}

func newGeminiCore(m config.Model) (llm.Core, error) {
	if m.Resume != nil && *m.Resume {
		return nil, fmt.Errorf("resume: gemini cannot continue a partial answer; leave resume unset")
	}
	return gemini.New(gemini.Config{
		Name: upstreamName(m), BaseURL: m.Hostname, APIKey: m.APIKey,
		MaxInflight: m.MaxInflight, MaxTokens: m.MaxTokensInflight,
		IdleTimeout: m.Timeout,
	})
}

// limited wraps c in the entry's rate limits, if it sets any.
func limited(c llm.Core, m config.Model) (llm.Core, error) {
	w, err := ratelimit.Wrap(c, ratelimit.Limits{RPM: m.RPM, TPM: m.TPM})
	if err != nil {
		_ = c.Close()
	}
	return w, err
}

// resilience is the entry's retry and breaker policy, defaults filled in.
func resilience(m config.Model) kernel.Resilience {
	return kernel.Resilience{
		Retry:   kernel.RetryPolicy{MaxRetries: m.Retries(), Backoff: m.RetryBackoff, MaxBackoff: m.RetryBackoffMax},
		Breaker: kernel.BreakerPolicy{Threshold: m.Breaker(), Cooldown: m.BreakerCooldown, MaxCooldown: m.BreakerCooldownMax},
	}
}
