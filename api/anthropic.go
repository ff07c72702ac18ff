package api

import (
	"bytes"
	"encoding/json"
	"fmt"
)

// Anthropic's Messages API (POST /v1/messages), as @anthropic-ai/sdk and Claude-style
// agents speak it. The kernel reads what it can translate onto its one call shape;
// unknown fields are ignored, known fields of the wrong type fail.

// HeaderAnthropicVersion is sent by Anthropic's SDKs on every request; it is accepted
// and not checked.
const HeaderAnthropicVersion = "anthropic-version"

// MessagesRequest is the body of POST /v1/messages.
type MessagesRequest struct {
	Model string `json:"model"`
	// MaxTokens is required, as Anthropic requires it; a pointer tells absent from 0.
	MaxTokens     *int                 `json:"max_tokens"`
	System        *AnthropicContent    `json:"system,omitempty"`
	Messages      []AnthropicMessage   `json:"messages"`
	Tools         []AnthropicTool      `json:"tools,omitempty"`
	ToolChoice    *AnthropicToolChoice `json:"tool_choice,omitempty"`
	Temperature   *float64             `json:"temperature,omitempty"`
	TopP          *float64             `json:"top_p,omitempty"`
	TopK          *int                 `json:"top_k,omitempty"`
	StopSequences []string             `json:"stop_sequences,omitempty"`
	Stream        bool                 `json:"stream,omitempty"`
	Metadata      *AnthropicMetadata   `json:"metadata,omitempty"`
	OutputConfig  *AnthropicOutput     `json:"output_config,omitempty"`
}

type AnthropicMetadata struct {
	UserID string `json:"user_id,omitempty"`
}

// AnthropicOutput is output_config: format asks for JSON conforming to a schema.
type AnthropicOutput struct {
	Format *AnthropicFormat `json:"format,omitempty"`
}

type AnthropicFormat struct {
	Type   string          `json:"type"`
	Schema json.RawMessage `json:"schema,omitempty"`
}

// AnthropicMessage is one turn of the conversation. Role is user or assistant (newer
// SDKs also send system turns).
type AnthropicMessage struct {
	Role    string           `json:"role"`
	Content AnthropicContent `json:"content"`
}

// AnthropicContent is a message's content: on the wire a string (one text block) or an
// array of content blocks. Null decodes as no blocks; Set reports whether the field was
// there at all.
type AnthropicContent struct {
	Blocks []ContentBlock
	Set    bool
}

func (c *AnthropicContent) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	c.Set = true
	switch {
	case len(b) == 0 || bytes.Equal(b, []byte("null")):
		c.Blocks = nil
		return nil
	case b[0] == '"':
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		c.Blocks = []ContentBlock{{Type: "text", Text: s}}
		return nil
	case b[0] == '[':
		var blocks []ContentBlock
		if err := json.Unmarshal(b, &blocks); err != nil {
			return err
		}
		c.Blocks = blocks
		return nil
	}
	return fmt.Errorf("content must be a string or an array of content blocks, got %.20s", b)
}

func (c AnthropicContent) MarshalJSON() ([]byte, error) {
	if c.Blocks == nil {
		return []byte("null"), nil
	}
	return json.Marshal(c.Blocks)
}

// ContentBlock is one block of request content. Which fields mean something depends on
// Type: text (Text), image (Source), tool_use (ID, Name, Input), tool_result
// (ToolUseID, Content, IsError).
type ContentBlock struct {
	Type      string            `json:"type"`
	Text      string            `json:"text,omitempty"`
	ID        string            `json:"id,omitempty"`
	Name      string            `json:"name,omitempty"`
	Input     json.RawMessage   `json:"input,omitempty"`
	ToolUseID string            `json:"tool_use_id,omitempty"`
	Content   *AnthropicContent `json:"content,omitempty"`
	IsError   bool              `json:"is_error,omitempty"`
	Source    json.RawMessage   `json:"source,omitempty"`
}

// AnthropicTool is a client tool: a name, a description and a JSON schema for its input.
// Type is empty or "custom"; Anthropic's server tools (web_search_..., bash_...) carry
// other types.
type AnthropicTool struct {
	Type        string          `json:"type,omitempty"`
	Name        string          `json:"name"`
	Description string          `json:"description,omitempty"`
	InputSchema json.RawMessage `json:"input_schema,omitempty"`
}

// AnthropicToolChoice is tool_choice: auto, any (some tool), tool (the one named) or none.
type AnthropicToolChoice struct {
	Type                   string `json:"type"`
	Name                   string `json:"name,omitempty"`
	DisableParallelToolUse bool   `json:"disable_parallel_tool_use,omitempty"`
}

// MessagesResponse is a non-streaming answer, and the message of a stream's
// message_start event (with empty content).
type MessagesResponse struct {
	ID           string          `json:"id"`
	Type         string          `json:"type"` // "message"
	Role         string          `json:"role"` // "assistant"
	Model        string          `json:"model"`
	Content      []ResponseBlock `json:"content"`
	StopReason   *string         `json:"stop_reason"`
	StopSequence *string         `json:"stop_sequence"`
	Usage        AnthropicUsage  `json:"usage"`
}

// ResponseBlock is one block of the answer: text, or a tool_use with its input object.
type ResponseBlock struct {
	Type  string          `json:"type"`
	Text  *string         `json:"text,omitempty"`
	ID    string          `json:"id,omitempty"`
	Name  string          `json:"name,omitempty"`
	Input json.RawMessage `json:"input,omitempty"`
}

// Stop reasons of an answer.
const (
	StopEndTurn   = "end_turn"
	StopMaxTokens = "max_tokens"
	StopToolUse   = "tool_use"
	StopSequence  = "stop_sequence"
	StopRefusal   = "refusal"
)

// AnthropicUsage counts tokens as Anthropic does: InputTokens are the prompt tokens not
// read from a cache, CacheReadInputTokens those that were.
type AnthropicUsage struct {
	InputTokens              int `json:"input_tokens"`
	OutputTokens             int `json:"output_tokens"`
	CacheCreationInputTokens int `json:"cache_creation_input_tokens"`
	CacheReadInputTokens     int `json:"cache_read_input_tokens"`
}

// Stream events, each sent as `event: <type>` and `data: <json>`.

type MessageStartEvent struct {
	Type    string           `json:"type"` // message_start
	Message MessagesResponse `json:"message"`
}

type ContentBlockStartEvent struct {
	Type         string        `json:"type"` // content_block_start
	Index        int           `json:"index"`
	ContentBlock ResponseBlock `json:"content_block"`
}

type ContentBlockDeltaEvent struct {
	Type  string     `json:"type"` // content_block_delta
	Index int        `json:"index"`
	Delta BlockDelta `json:"delta"`
}

// BlockDelta is a text_delta (Text) or an input_json_delta (PartialJSON, a piece of the
// tool input's JSON text).
type BlockDelta struct {
	Type        string  `json:"type"`
	Text        *string `json:"text,omitempty"`
	PartialJSON *string `json:"partial_json,omitempty"`
}

type ContentBlockStopEvent struct {
	Type  string `json:"type"` // content_block_stop
	Index int    `json:"index"`
}

type MessageDeltaEvent struct {
	Type  string              `json:"type"` // message_delta
	Delta MessageDelta        `json:"delta"`
	Usage AnthropicDeltaUsage `json:"usage"`
}

type MessageDelta struct {
	StopReason   *string `json:"stop_reason"`
	StopSequence *string `json:"stop_sequence"`
}

// AnthropicDeltaUsage is the usage of message_delta: the whole message's counts, which
// the SDKs copy over what message_start said.
type AnthropicDeltaUsage struct {
	InputTokens              *int `json:"input_tokens,omitempty"`
	OutputTokens             int  `json:"output_tokens"`
	CacheCreationInputTokens *int `json:"cache_creation_input_tokens,omitempty"`
	CacheReadInputTokens     *int `json:"cache_read_input_tokens,omitempty"`
}

type MessageStopEvent struct {
	Type string `json:"type"` // message_stop
}

// AnthropicError is the error body on /v1/messages, in a response or as a stream's
// `event: error`. Kind is the kernel's cause, beside Anthropic's coarser type.
type AnthropicError struct {
	Type  string               `json:"type"` // "error"
	Error AnthropicErrorDetail `json:"error"`
	Kind  Kind                 `json:"kind,omitempty"`
}

type AnthropicErrorDetail struct {
	Type    string `json:"type"`
	Message string `json:"message"`
}

// CountTokensResponse answers POST /v1/messages/count_tokens.
type CountTokensResponse struct {
	InputTokens int `json:"input_tokens"`
}
