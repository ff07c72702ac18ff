package api

import "encoding/json"

// The rest of OpenAI's surface: embeddings, legacy completions, and the errors OpenAI
// gives for a model, path or method it does not have.

// EmbeddingRequest is the body of POST /v1/embeddings. Input is a string or an array of
// strings (token-id arrays are refused).
type EmbeddingRequest struct {
	Model          string          `json:"model"`
	Input          json.RawMessage `json:"input"`
	EncodingFormat string          `json:"encoding_format,omitempty"` // float (default) or base64
	Dimensions     *int            `json:"dimensions,omitempty"`
	User           string          `json:"user,omitempty"`
}

type EmbeddingResponse struct {
	Object string          `json:"object"` // "list"
	Data   []Embedding     `json:"data"`
	Model  string          `json:"model"`
	Usage  EmbeddingsUsage `json:"usage"`
}

// Embedding is one vector: a []float32, or with encoding_format base64 a string of its
// little-endian float32 bytes, as OpenAI sends it (its SDKs ask for base64 by default).
type Embedding struct {
	Object    string `json:"object"` // "embedding"
	Index     int    `json:"index"`
	Embedding any    `json:"embedding"`
}

type EmbeddingsUsage struct {
	PromptTokens int `json:"prompt_tokens"`
	TotalTokens  int `json:"total_tokens"`
}

// CompletionRequest is the body of POST /v1/completions (OpenAI's legacy text API).
// Prompt is a string or an array of strings (one choice each).
type CompletionRequest struct {
	Model         string          `json:"model"`
	Prompt        json.RawMessage `json:"prompt"`
	MaxTokens     *int            `json:"max_tokens,omitempty"`
	Temperature   *float64        `json:"temperature,omitempty"`
	TopP          *float64        `json:"top_p,omitempty"`
	Stream        bool            `json:"stream,omitempty"`
	StreamOptions *StreamOptions  `json:"stream_options,omitempty"`
	Stop          json.RawMessage `json:"stop,omitempty"`
	N             *int            `json:"n,omitempty"`
	BestOf        *int            `json:"best_of,omitempty"`
	Echo          bool            `json:"echo,omitempty"`
	Suffix        *string         `json:"suffix,omitempty"`
	Logprobs      *int            `json:"logprobs,omitempty"`
	Seed          *int64          `json:"seed,omitempty"`
	User          string          `json:"user,omitempty"`
}

// Completion is a /v1/completions answer, and (object "text_completion" too) each chunk
// of its stream.
type Completion struct {
	ID      string             `json:"id"`
	Object  string             `json:"object"` // "text_completion"
	Created int64              `json:"created"`
	Model   string             `json:"model"`
	Choices []CompletionChoice `json:"choices"`
	Usage   *Usage             `json:"usage,omitempty"`
}

type CompletionChoice struct {
	Text         string           `json:"text"`
	Index        int              `json:"index"`
	Logprobs     *json.RawMessage `json:"logprobs"`
	FinishReason *string          `json:"finish_reason"`
}

// OpenAICodedError is OpenAI's error with its param and code spelled out, as OpenAI
// answers an unknown model ("model_not_found"), path ("unknown_url") or method. Kind is
// the kernel's cause, and Detail is kept as on every error body of the kernel.
type OpenAICodedError struct {
	Error  OpenAICodedErrorDetail `json:"error"`
	Detail string                 `json:"detail"`
	Kind   Kind                   `json:"kind,omitempty"`
}

type OpenAICodedErrorDetail struct {
	Message string  `json:"message"`
	Type    string  `json:"type"`
	Param   *string `json:"param"`
	Code    string  `json:"code"`
}
