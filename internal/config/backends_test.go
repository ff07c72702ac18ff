package config

import (
	"strings"
	"testing"
	"time"
)

const providersConfig = `
api_keys:
  anthropic: "sk-ant-file"
llms:
  models:
    - name: claude
      backend: anthropic
      upstream_model: claude-sonnet-4-5
      rpm: 50
      tpm: 40000
      max_retries: 5
      retry_backoff: 500ms
      retry_backoff_max: 20s
      breaker_threshold: 4
      breaker_cooldown: 10s
      breaker_cooldown_max: 5m
    - name: gemini-2.5-flash
      backend: gemini
      max_retries: 0
      breaker_threshold: 0
    - name: llama
      backend: vllm
      hostname: http://gpu1:8000
`

func TestProviderAndResilienceKeys(t *testing.T) {
	t.Setenv("GEMINI_API_KEY", "gm-env")
	cfg, err := Load(writeFile(t, providersConfig), nil)
	if err != nil {
		t.Fatal(err)
	}
	c, g, v := cfg.LLMs.Models[0], cfg.LLMs.Models[1], cfg.LLMs.Models[2]
	if c.APIKey != "sk-ant-file" || c.RPM != 50 || c.TPM != 40000 || c.Retries() != 5 || c.RetryBackoff != 500*time.Millisecond ||
		c.RetryBackoffMax != 20*time.Second || c.Breaker() != 4 || c.BreakerCooldown != 10*time.Second || c.BreakerCooldownMax != 5*time.Minute {
		t.Fatalf("anthropic entry %+v", c)
	}
	// An explicit 0 turns retries and the breaker off; leaving them out takes defaults.
	if g.APIKey != "gm-env" || g.Retries() != 0 || g.Breaker() != 0 {
		t.Fatalf("gemini entry %+v", g)
	}
	if v.Retries() != DefaultMaxRetries || v.Breaker() != DefaultBreakerThreshold || v.RPM != 0 || v.TPM != 0 {
		t.Fatalf("vllm entry %+v", v)
	}
}

func TestNegativeLimitsRefused(t *testing.T) {
	_, err := Load(writeFile(t, "llms:\n  models:\n    - name: m\n      backend: openai\n      tpm: -1\n"), nil)
	if err == nil || !strings.Contains(err.Error(), "must not be negative") {
		t.Fatalf("err = %v", err)
	}
}

func TestKVOffloadSize(t *testing.T) {
	cfg, err := Load(writeFile(t, "llms:\n  models:\n    - name: s\n      backend: sim\n      kv_offload_gib: 64\n"), nil)
	if err != nil || cfg.LLMs.Models[0].KVOffloadGiB != 64 {
		t.Fatalf("kv_offload_gib 64: %v, %+v", err, cfg.LLMs.Models)
	}
	for body, want := range map[string]string{
		"llms:\n  models:\n    - name: s\n      backend: sim\n      kv_offload_gib: -1\n":   "must be 0 (none) or more",
		"llms:\n  models:\n    - name: v\n      backend: openai\n      kv_offload_gib: 8\n": "sim backend only",
		"llms:\n  models:\n    - name: s\n      backend: sim\n      kv_offload_gib: lots\n": "",
	} {
		_, err := Load(writeFile(t, body), nil)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: err = %v, want one saying %q", body, err, want)
		}
	}
}
