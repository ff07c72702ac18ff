package api

import "encoding/json"

// The subset of OpenAI's Responses API (/v1/responses) the kernel serves; docs/responses.md
// says what is translated and what is refused. Shapes follow the openai SDK's type
// definitions; fields the kernel does not read are ignored on the way in.

// ResponsesRequest is POST /v1/responses. Input is a string (one user message) or an
// array of items (ResponseInputItem), kept raw so each item's errors can name it.
type ResponsesRequest struct {
	Model              string              `json:"model"`
	Input              json.RawMessage     `json:"input,omitempty"`
	Instructions       *string             `json:"instructions,omitempty"`
	Tools              []ResponseTool      `json:"tools,omitempty"`
	ToolChoice         json.RawMessage     `json:"tool_choice,omitempty"`
	Temperature        *float64            `json:"temperature,omitempty"`
	TopP               *float64            `json:"top_p,omitempty"`
	MaxOutputTokens    *int                `json:"max_output_tokens,omitempty"`
	Text               *ResponseTextConfig `json:"text,omitempty"`
	Stream             bool                `json:"stream,omitempty"`
	Store              *bool               `json:"store,omitempty"` // default true, as OpenAI's
	PreviousResponseID *string             `json:"previous_response_id,omitempty"`
	Metadata           map[string]string   `json:"metadata,omitempty"`
	User               string              `json:"user,omitempty"`
	ParallelToolCalls  *bool               `json:"parallel_tool_calls,omitempty"`
	Truncation         *string             `json:"truncation,omitempty"`

	// Refused when set: the kernel has no background runs, conversations objects or
	// stored prompts.
	Background   *bool           `json:"background,omitempty"`
	Conversation json.RawMessage `json:"conversation,omitempty"`
	Prompt       json.RawMessage `json:"prompt,omitempty"`

	// Priority and KernelTools are the kernel's extensions, as on chat completions.
	Priority    *int     `json:"priority,omitempty"`
	KernelTools []string `json:"kernel_tools,omitempty"`
}

// ResponseInputItem is one item of a request's input: a message (Type "message", or
// empty with a Role), a function_call the model made, or a function_call_output.
type ResponseInputItem struct {
	Type    string          `json:"type,omitempty"`
	ID      string          `json:"id,omitempty"`
	Role    string          `json:"role,omitempty"`
	Content json.RawMessage `json:"content,omitempty"` // string or content parts
	Status  string          `json:"status,omitempty"`
	// function_call and function_call_output
	CallID    string          `json:"call_id,omitempty"`
	Name      string          `json:"name,omitempty"`
	Arguments string          `json:"arguments,omitempty"`
	Output    json.RawMessage `json:"output,omitempty"` // string or content parts
}

// ResponseInputPart is a content part of an input message or function output:
// input_text, output_text or refusal (images, files and audio are refused).
type ResponseInputPart struct {
	Type    string `json:"type"`
	Text    string `json:"text,omitempty"`
	Refusal string `json:"refusal,omitempty"`
}

// ResponseTool is a tool declaration; only Type "function" is served.
type ResponseTool struct {
	Type        string          `json:"type"`
	Name        string          `json:"name,omitempty"`
	Description *string         `json:"description,omitempty"`
	Parameters  json.RawMessage `json:"parameters,omitempty"`
	Strict      *bool           `json:"strict,omitempty"`
}

// ResponseTextConfig is the request's and response's text: its format.
type ResponseTextConfig struct {
	Format    *ResponseTextFormat `json:"format,omitempty"`
	Verbosity *string             `json:"verbosity,omitempty"`
}

// ResponseTextFormat is {"type":"text"}, {"type":"json_object"} or a json_schema with
// its name, schema and strictness.
type ResponseTextFormat struct {
	Type        string          `json:"type"`
	Name        string          `json:"name,omitempty"`
	Description string          `json:"description,omitempty"`
	Schema      json.RawMessage `json:"schema,omitempty"`
	Strict      *bool           `json:"strict,omitempty"`
}

// Response is a response object: what POST returns, GET reads back, and lifecycle
// events carry. output_text is not a field: the SDKs compute it from Output.
type Response struct {
	ID                 string             `json:"id"`
	Object             string             `json:"object"` // "response"
	CreatedAt          int64              `json:"created_at"`
	CompletedAt        *int64             `json:"completed_at"`
	Status             string             `json:"status"` // in_progress, completed, incomplete, failed
	Background         bool               `json:"background"`
	Error              *ResponseError     `json:"error"`
	IncompleteDetails  *IncompleteDetails `json:"incomplete_details"`
	Instructions       *string            `json:"instructions"`
	MaxOutputTokens    *int               `json:"max_output_tokens"`
	Model              string             `json:"model"`
	Output             []ResponseItem     `json:"output"`
	ParallelToolCalls  bool               `json:"parallel_tool_calls"`
	PreviousResponseID *string            `json:"previous_response_id"`
	Store              bool               `json:"store"`
	Temperature        *float64           `json:"temperature"`
	Text               ResponseTextConfig `json:"text"`
	ToolChoice         json.RawMessage    `json:"tool_choice"`
	Tools              []ResponseTool     `json:"tools"`
	TopP               *float64           `json:"top_p"`
	Truncation         string             `json:"truncation"`
	Usage              *ResponseUsage     `json:"usage"`
	User               *string            `json:"user,omitempty"`
	Metadata           map[string]string  `json:"metadata"`
}

// ResponseError says why a response failed.
type ResponseError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// IncompleteDetails says why a response is incomplete ("max_output_tokens").
type IncompleteDetails struct {
	Reason string `json:"reason"`
}

// ResponseUsage counts a response's tokens, as the Responses API names them.
type ResponseUsage struct {
	InputTokens         int                 `json:"input_tokens"`
	InputTokensDetails  InputTokensDetails  `json:"input_tokens_details"`
	OutputTokens        int                 `json:"output_tokens"`
	OutputTokensDetails OutputTokensDetails `json:"output_tokens_details"`
	TotalTokens         int                 `json:"total_tokens"`
}

type InputTokensDetails struct {
	CachedTokens int `json:"cached_tokens"`
}

type OutputTokensDetails struct {
	ReasoningTokens int `json:"reasoning_tokens"`
}

// ResponseItem is an item of a response's output (a message or a function_call) or of
// its input as GET .../input_items lists it (those two and function_call_output).
// MarshalJSON writes the fields of its Type only, and always the ones the SDKs require.
type ResponseItem struct {
	Type    string            `json:"type"`
	ID      string            `json:"id,omitempty"`
	Status  string            `json:"status,omitempty"`
	Role    string            `json:"role,omitempty"`
	Content []ResponseContent `json:"content,omitempty"`
	// function_call and function_call_output
	CallID    string `json:"call_id,omitempty"`
	Name      string `json:"name,omitempty"`
	Arguments string `json:"arguments,omitempty"`
	Output    string `json:"output,omitempty"`
}

func (it ResponseItem) MarshalJSON() ([]byte, error) {
	switch it.Type {
	case "message":
		content := it.Content
		if content == nil {
			content = []ResponseContent{}
		}
		return json.Marshal(struct {
			Type    string            `json:"type"`
			ID      string            `json:"id"`
			Status  string            `json:"status"`
			Role    string            `json:"role"`
			Content []ResponseContent `json:"content"`
		}{it.Type, it.ID, it.Status, it.Role, content})
	case "function_call":
		return json.Marshal(struct {
			Type      string `json:"type"`
			ID        string `json:"id"`
			Status    string `json:"status"`
			CallID    string `json:"call_id"`
			Name      string `json:"name"`
			Arguments string `json:"arguments"`
		}{it.Type, it.ID, it.Status, it.CallID, it.Name, it.Arguments})
	case "function_call_output":
		return json.Marshal(struct {
			Type   string `json:"type"`
			ID     string `json:"id"`
			Status string `json:"status"`
			CallID string `json:"call_id"`
			Output string `json:"output"`
		}{it.Type, it.ID, it.Status, it.CallID, it.Output})
	}
	type plain ResponseItem // without this method
	return json.Marshal(plain(it))
}

// ResponseContent is a content part: output_text in output messages (with its
// annotations, always an array), input_text in listed input messages.
type ResponseContent struct {
	Type        string            `json:"type"`
	Text        string            `json:"text"`
	Annotations []json.RawMessage `json:"annotations,omitempty"`
	Logprobs    []json.RawMessage `json:"logprobs,omitempty"`
}

func (c ResponseContent) MarshalJSON() ([]byte, error) {
	if c.Type != "output_text" {
		return json.Marshal(struct {
			Type string `json:"type"`
			Text string `json:"text"`
		}{c.Type, c.Text})
	}
	ann, lp := c.Annotations, c.Logprobs
	if ann == nil {
		ann = []json.RawMessage{}
	}
	if lp == nil {
		lp = []json.RawMessage{}
	}
	return json.Marshal(struct {
		Type        string            `json:"type"`
		Text        string            `json:"text"`
		Annotations []json.RawMessage `json:"annotations"`
		Logprobs    []json.RawMessage `json:"logprobs"`
	}{c.Type, c.Text, ann, lp})
}

// ResponseDeleted is the reply to DELETE /v1/responses/{id}.
type ResponseDeleted struct {
	ID      string `json:"id"`
	Object  string `json:"object"` // "response.deleted"
	Deleted bool   `json:"deleted"`
}

// ResponseItemList is GET /v1/responses/{id}/input_items.
type ResponseItemList struct {
	Object  string            `json:"object"` // "list"
	Data    []json.RawMessage `json:"data"`
	FirstID string            `json:"first_id"`
	LastID  string            `json:"last_id"`
	HasMore bool              `json:"has_more"`
}

// Streaming events. Each goes out as `event: <type>` and `data: <the event as JSON>`;
// SequenceNumber counts the stream's events from 0.

// ResponseLifecycleEvent is response.created, response.in_progress, response.completed,
// response.incomplete and response.failed: the whole response as it stands.
type ResponseLifecycleEvent struct {
	Type           string    `json:"type"`
	SequenceNumber int       `json:"sequence_number"`
	Response       *Response `json:"response"`
}

// ResponseOutputItemEvent is response.output_item.added and .done.
type ResponseOutputItemEvent struct {
	Type           string       `json:"type"`
	SequenceNumber int          `json:"sequence_number"`
	OutputIndex    int          `json:"output_index"`
	Item           ResponseItem `json:"item"`
}

// ResponseContentPartEvent is response.content_part.added and .done.
type ResponseContentPartEvent struct {
	Type           string          `json:"type"`
	SequenceNumber int             `json:"sequence_number"`
	ItemID         string          `json:"item_id"`
	OutputIndex    int             `json:"output_index"`
	ContentIndex   int             `json:"content_index"`
	Part           ResponseContent `json:"part"`
}

// ResponseTextEvent is response.output_text.delta (Delta) and .done (Text).
type ResponseTextEvent struct {
	Type           string            `json:"type"`
	SequenceNumber int               `json:"sequence_number"`
	ItemID         string            `json:"item_id"`
	OutputIndex    int               `json:"output_index"`
	ContentIndex   int               `json:"content_index"`
	Delta          *string           `json:"delta,omitempty"`
	Text           *string           `json:"text,omitempty"`
	Logprobs       []json.RawMessage `json:"logprobs"`
}

// ResponseArgumentsEvent is response.function_call_arguments.delta (Delta) and .done
// (Arguments).
type ResponseArgumentsEvent struct {
	Type           string  `json:"type"`
	SequenceNumber int     `json:"sequence_number"`
	ItemID         string  `json:"item_id"`
	OutputIndex    int     `json:"output_index"`
	Delta          *string `json:"delta,omitempty"`
	Arguments      *string `json:"arguments,omitempty"`
}

// ResponseErrorEvent is the `error` event, which the SDKs raise.
type ResponseErrorEvent struct {
	Type           string  `json:"type"` // "error"
	SequenceNumber int     `json:"sequence_number"`
	Code           *string `json:"code"`
	Message        string  `json:"message"`
	Param          *string `json:"param"`
}

// ResponsesErrorBody is an error reply on /v1/responses: OpenAI's error shape with the
// parameter at fault, and "detail" as on every kernel error body.
type ResponsesErrorBody struct {
	Error  ResponsesErrorDetail `json:"error"`
	Detail string               `json:"detail"`
}

type ResponsesErrorDetail struct {
	Message string  `json:"message"`
	Type    string  `json:"type"`
	Param   *string `json:"param"`
	Code    string  `json:"code,omitempty"`
}
