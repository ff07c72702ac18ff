package api

import "encoding/json"

// Headers that carry the caller's identity on the OpenAI-compatible surface.
const (
	HeaderAgent   = "X-AIOS-Agent"
	HeaderSession = "X-AIOS-Session"
	// HeaderTools offers kernel tools to the model, run by the kernel's tool loop: a
	// comma-separated list of names or patterns ("calculator,everything__*", "*").
	HeaderTools = "X-AIOS-Tools"
	// HeaderToolsRan lists, in a response, the kernel tools the loop ran.
	HeaderToolsRan = "X-AIOS-Tools-Ran"
	// HeaderMemory "on" asks for the agent's memories in the prompt and the exchange
	// stored; HeaderContext "managed" has the kernel keep the session's conversation.
	HeaderMemory  = "X-AIOS-Memory"
	HeaderContext = "X-AIOS-Context"
)

// ChatCompletionRequest is the subset of OpenAI's request the kernel reads. Unknown
// fields are ignored, as OpenAI-compatible servers do; known fields of the wrong type fail.
type ChatCompletionRequest struct {
	Model               string          `json:"model"`
	Messages            []Message       `json:"messages"`
	Tools               []Tool          `json:"tools,omitempty"`
	ToolChoice          json.RawMessage `json:"tool_choice,omitempty"`
	Temperature         *float64        `json:"temperature,omitempty"`
	TopP                *float64        `json:"top_p,omitempty"`
	MaxTokens           *int            `json:"max_tokens,omitempty"`
	MaxCompletionTokens *int            `json:"max_completion_tokens,omitempty"`
	Stream              bool            `json:"stream,omitempty"`
	StreamOptions       *StreamOptions  `json:"stream_options,omitempty"`
	ResponseFormat      *ResponseFormat `json:"response_format,omitempty"`
	Stop                json.RawMessage `json:"stop,omitempty"`
	Seed                *int64          `json:"seed,omitempty"`
	User                string          `json:"user,omitempty"`
	// Priority follows vLLM: larger is more urgent here (the kernel flips the sign when it
	// passes the value down to vLLM, where lower runs first).
	Priority *int `json:"priority,omitempty"`
	// IgnoreEOS is vLLM's sampling extension, passed down to engines that take it.
	IgnoreEOS bool `json:"ignore_eos,omitempty"`
	// KernelTools asks for kernel tools run by the kernel's tool loop (as HeaderTools).
	KernelTools []string `json:"kernel_tools,omitempty"`
}

type StreamOptions struct {
	IncludeUsage bool `json:"include_usage"`
}

// ChatCompletion is a non-streaming response.
type ChatCompletion struct {
	ID      string       `json:"id"`
	Object  string       `json:"object"`
	Created int64        `json:"created"`
	Model   string       `json:"model"`
	Choices []ChatChoice `json:"choices"`
	Usage   *Usage       `json:"usage,omitempty"`
}

type ChatChoice struct {
	Index        int     `json:"index"`
	Message      Message `json:"message"`
	FinishReason string  `json:"finish_reason"`
}

// ChatCompletionChunk is one SSE event of a streaming response.
type ChatCompletionChunk struct {
	ID      string        `json:"id"`
	Object  string        `json:"object"`
	Created int64         `json:"created"`
	Model   string        `json:"model"`
	Choices []ChunkChoice `json:"choices"`
	Usage   *Usage        `json:"usage,omitempty"`
}

type ChunkChoice struct {
	Index        int     `json:"index"`
	Delta        Delta   `json:"delta"`
	FinishReason *string `json:"finish_reason"`
}

type Delta struct {
	Role      string     `json:"role,omitempty"`
	Content   *string    `json:"content,omitempty"`
	ToolCalls []ToolCall `json:"tool_calls,omitempty"`
}

// Model is one entry of GET /v1/models.
type Model struct {
	ID      string `json:"id"`
	Object  string `json:"object"`
	Created int64  `json:"created"`
	OwnedBy string `json:"owned_by"`
}

type ModelList struct {
	Object string  `json:"object"`
	Data   []Model `json:"data"`
}

// OpenAIError is the error body on /v1 routes, in OpenAI's shape, with "detail" kept so
// every error body of the kernel carries it.
type OpenAIError struct {
	Error  OpenAIErrorDetail `json:"error"`
	Detail string            `json:"detail"`
}

type OpenAIErrorDetail struct {
	Message string `json:"message"`
	Type    string `json:"type"`
	Code    string `json:"code,omitempty"`
}
