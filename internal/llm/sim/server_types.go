package sim

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
)

// Wire types of vLLM's OpenAI-compatible API: the subset the simulator reads and what it
// writes. Unknown request fields are ignored, as vLLM ignores sampling parameters a
// simulation has no use for (temperature, top_p, ...).

type chatRequest struct {
	Model               string          `json:"model"`
	Messages            []chatMessage   `json:"messages"`
	MaxTokens           *int            `json:"max_tokens"`
	MaxCompletionTokens *int            `json:"max_completion_tokens"`
	Stream              bool            `json:"stream"`
	StreamOptions       *streamOptions  `json:"stream_options"`
	Tools               []toolSpec      `json:"tools"`
	ToolChoice          json.RawMessage `json:"tool_choice"`
	N                   *int            `json:"n"`
	Seed                *int64          `json:"seed"`
	ResponseFormat      *responseFormat `json:"response_format"`
	// vLLM's extra parameters.
	IgnoreEOS            bool     `json:"ignore_eos"`
	Priority             int      `json:"priority"`
	KVTTLMs              *float64 `json:"kv_ttl_ms"`
	ReuseAfterMs         *float64 `json:"kv_reuse_after_ms"`
	KVSession            string   `json:"kv_session"`
	ContinueFinalMessage bool     `json:"continue_final_message"`
	AddGenerationPrompt  *bool    `json:"add_generation_prompt"`
}

type completionRequest struct {
	Model         string          `json:"model"`
	Prompt        json.RawMessage `json:"prompt"`
	MaxTokens     *int            `json:"max_tokens"`
	Stream        bool            `json:"stream"`
	StreamOptions *streamOptions  `json:"stream_options"`
	N             *int            `json:"n"`
	Seed          *int64          `json:"seed"`
	IgnoreEOS     bool            `json:"ignore_eos"`
	Priority      int             `json:"priority"`
	KVTTLMs       *float64        `json:"kv_ttl_ms"`
	ReuseAfterMs  *float64        `json:"kv_reuse_after_ms"`
	KVSession     string          `json:"kv_session"`
}

// responseFormat is {"type": "text" | "json_object" | "json_schema", "json_schema":
// {"name", "schema", "strict"}}.
type responseFormat struct {
	Type       string          `json:"type"`
	JSONSchema json.RawMessage `json:"json_schema"`
}

type streamOptions struct {
	IncludeUsage bool `json:"include_usage"`
}

type chatMessage struct {
	Role      string         `json:"role"`
	Content   messageContent `json:"content"`
	ToolCalls []wireToolCall `json:"tool_calls"`
}

// messageContent is a string, null, or a list of parts of which only text parts are
// accepted (the simulated model is text-only); parts join with newlines, as vLLM's chat
// template renderer joins them.
type messageContent string

func (c *messageContent) UnmarshalJSON(b []byte) error {
	if bytes.Equal(b, []byte("null")) {
		*c = ""
		return nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		*c = messageContent(s)
		return nil
	}
	var parts []struct {
		Type string `json:"type"`
		Text string `json:"text"`
	}
	if err := json.Unmarshal(b, &parts); err != nil {
		return errors.New("message content must be a string or a list of content parts")
	}
	var buf bytes.Buffer
	for i, p := range parts {
		if p.Type != "text" {
			return fmt.Errorf("content part type %q is not supported; the simulated model takes text only", p.Type)
		}
		if i > 0 {
			buf.WriteByte('\n')
		}
		buf.WriteString(p.Text)
	}
	*c = messageContent(buf.String())
	return nil
}

type toolSpec struct {
	Type     string `json:"type"`
	Function struct {
		Name        string          `json:"name"`
		Description string          `json:"description"`
		Parameters  json.RawMessage `json:"parameters"`
	} `json:"function"`
}

type wireToolCall struct {
	Index    *int         `json:"index,omitempty"`
	ID       string       `json:"id,omitempty"`
	Type     string       `json:"type,omitempty"`
	Function wireFunction `json:"function"`
}

type wireFunction struct {
	Name      string `json:"name,omitempty"`
	Arguments string `json:"arguments"`
}

type usage struct {
	PromptTokens        int            `json:"prompt_tokens"`
	CompletionTokens    int            `json:"completion_tokens"`
	TotalTokens         int            `json:"total_tokens"`
	PromptTokensDetails *promptDetails `json:"prompt_tokens_details"`
}

type promptDetails struct {
	CachedTokens int `json:"cached_tokens"`
}

func usageOf(res GenResult) *usage {
	return &usage{
		PromptTokens:        res.PromptTokens,
		CompletionTokens:    res.CompletionTokens,
		TotalTokens:         res.PromptTokens + res.CompletionTokens,
		PromptTokensDetails: &promptDetails{CachedTokens: res.CachedTokens},
	}
}

type chatCompletion struct {
	ID      string       `json:"id"`
	Object  string       `json:"object"`
	Created int64        `json:"created"`
	Model   string       `json:"model"`
	Choices []chatChoice `json:"choices"`
	Usage   *usage       `json:"usage"`
}

type chatChoice struct {
	Index        int             `json:"index"`
	Message      responseMessage `json:"message"`
	Logprobs     *struct{}       `json:"logprobs"`
	FinishReason string          `json:"finish_reason"`
	StopReason   *string         `json:"stop_reason"`
}

type responseMessage struct {
	Role      string         `json:"role"`
	Content   *string        `json:"content"`
	ToolCalls []wireToolCall `json:"tool_calls"`
}

type chatChunk struct {
	ID      string        `json:"id"`
	Object  string        `json:"object"`
	Created int64         `json:"created"`
	Model   string        `json:"model"`
	Choices []chunkChoice `json:"choices"`
	Usage   *usage        `json:"usage,omitempty"`
}

type chunkChoice struct {
	Index        int       `json:"index"`
	Delta        delta     `json:"delta"`
	Logprobs     *struct{} `json:"logprobs"`
	FinishReason *string   `json:"finish_reason"`
}

type delta struct {
	Role      string         `json:"role,omitempty"`
	Content   *string        `json:"content,omitempty"`
	ToolCalls []wireToolCall `json:"tool_calls,omitempty"`
}

type completion struct {
	ID      string             `json:"id"`
	Object  string             `json:"object"`
	Created int64              `json:"created"`
	Model   string             `json:"model"`
	Choices []completionChoice `json:"choices"`
	Usage   *usage             `json:"usage,omitempty"`
}

type completionChoice struct {
	Index        int       `json:"index"`
	Text         string    `json:"text"`
	Logprobs     *struct{} `json:"logprobs"`
	FinishReason *string   `json:"finish_reason"`
	StopReason   *string   `json:"stop_reason"`
}

type modelList struct {
	Object string      `json:"object"`
	Data   []modelCard `json:"data"`
}

type modelCard struct {
	ID          string     `json:"id"`
	Object      string     `json:"object"`
	Created     int64      `json:"created"`
	OwnedBy     string     `json:"owned_by"`
	Root        string     `json:"root"`
	Parent      *string    `json:"parent"`
	MaxModelLen int        `json:"max_model_len"`
	Permission  []struct{} `json:"permission"`
}

type errorBody struct {
	Error errorDetail `json:"error"`
}

type errorDetail struct {
	Message string  `json:"message"`
	Type    string  `json:"type"`
	Param   *string `json:"param"`
	Code    int     `json:"code"`
}
