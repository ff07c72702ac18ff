package api

import "time"

// UsageCounters are the tokens and calls charged to one agent, session or model.
// PromptTokens include CachedTokens, as OpenAI counts them.
type UsageCounters struct {
	Calls            int64 `json:"calls"`
	Failed           int64 `json:"failed"`
	PromptTokens     int64 `json:"prompt_tokens"`
	CachedTokens     int64 `json:"cached_tokens"`
	CompletionTokens int64 `json:"completion_tokens"`
	TotalTokens      int64 `json:"total_tokens"`
}

// UsageReport is GET /admin/usage: LLM token accounting since the kernel started.
type UsageReport struct {
	Since    time.Time                `json:"since"`
	Total    UsageCounters            `json:"total"`
	Agents   map[string]UsageCounters `json:"agents"`
	Sessions map[string]UsageCounters `json:"sessions"`
	Models   map[string]UsageCounters `json:"models"`
}

// CoreModels is what one LLM core's backend says it serves.
type CoreModels struct {
	Core     string  `json:"core"`
	Backend  string  `json:"backend"`
	Hostname string  `json:"hostname,omitempty"`
	Models   []Model `json:"models"`
	Error    string  `json:"error,omitempty"`
}

// DiscoveredModels is GET /admin/models: each core's backend asked live for its models
// (Ollama's /api/tags, /v1/models of OpenAI-compatible servers, the providers' lists).
type DiscoveredModels struct {
	Cores []CoreModels `json:"cores"`
}
