package server

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

	"github.com/aios-go/aios/api"
	"github.com/aios-go/aios/internal/llm"
)

// Translation between Anthropic's Messages API and the kernel's one call shape
// (llm.Request, which is OpenAI's chat shape), so any backend serves Claude-style
// agents. docs/anthropic.md states the rules.

// messagesToLLM checks a decoded Messages request and translates it. Every way it can
// be wrong is a CallerBadRequest that names the field.
func messagesToLLM(req *api.MessagesRequest, defaultModel string) (llm.Request, error) {
	var out llm.Request
	if req.MaxTokens == nil {
		return out, api.Errorf(api.CallerBadRequest, "max_tokens: field required (the most tokens to generate, as Anthropic's API requires)")
	}
	if *req.MaxTokens < 1 {
		return out, api.Errorf(api.CallerBadRequest, "max_tokens: must be at least 1, got %d", *req.MaxTokens)
	}
	if len(req.Messages) == 0 {
		return out, api.Errorf(api.CallerBadRequest, "messages: at least one message is required")
	}
	out.Model = req.Model
	if out.Model == "" {
		out.Model = defaultModel
	}
	out.MaxTokens = *req.MaxTokens
	out.Temperature = req.Temperature
	if req.Temperature != nil && *req.Temperature < 0 {
		return out, api.Errorf(api.CallerBadRequest, "temperature: must not be negative, got %g", *req.Temperature)
	}
	for i, s := range req.StopSequences {
		if s == "" {
			return out, api.Errorf(api.CallerBadRequest, "stop_sequences[%d]: must not be empty", i)
		}
	}
	if req.System != nil {
		text, err := textOf(req.System.Blocks, "system")
		if err != nil {
			return out, err
		}
		if text != "" {
			out.Messages = append(out.Messages, api.Message{Role: "system", Content: api.Content(text)})
		}
	}
	for i, m := range req.Messages {
		msgs, err := anthropicTurn(m, fmt.Sprintf("messages[%d]", i))
		if err != nil {
			return out, err
		}
		out.Messages = append(out.Messages, msgs...)
	}
	if len(out.Messages) == 0 {
		return out, api.Errorf(api.CallerBadRequest, "messages: no content to send to the model")
	}
	names := map[string]bool{}
	for i, t := range req.Tools {
		tool, err := anthropicTool(t, fmt.Sprintf("tools[%d]", i))
		if err != nil {
			return out, err
		}
		if names[t.Name] {
			return out, api.Errorf(api.CallerBadRequest, "tools[%d]: tool name %q is used twice", i, t.Name)
		}
		names[t.Name] = true
		out.Tools = append(out.Tools, tool)
	}
	if c := req.ToolChoice; c != nil {
		switch c.Type {
		case "auto":
			out.ToolChoice = json.RawMessage(`"auto"`)
		case "none":
			out.ToolChoice = json.RawMessage(`"none"`)
		case "any":
			if len(out.Tools) == 0 {
				return out, api.Errorf(api.CallerBadRequest, "tool_choice: type \"any\" needs tools, and the request has none")
			}
			out.ToolChoice = json.RawMessage(`"required"`)
		case "tool":
			if c.Name == "" {
				return out, api.Errorf(api.CallerBadRequest, "tool_choice.name: field required for type \"tool\"")
			}
			if !names[c.Name] {
				return out, api.Errorf(api.CallerBadRequest, "tool_choice.name: %q is not among the request's tools", c.Name)
			}
			b, _ := json.Marshal(map[string]any{"type": "function", "function": map[string]string{"name": c.Name}})
			out.ToolChoice = b
		default:
			return out, api.Errorf(api.CallerBadRequest, "tool_choice.type: must be auto, any, tool or none, got %q", c.Type)
		}
	}
	if oc := req.OutputConfig; oc != nil && oc.Format != nil {
		if oc.Format.Type != "json_schema" {
			return out, api.Errorf(api.CallerBadRequest, "output_config.format.type: must be \"json_schema\", got %q", oc.Format.Type)
		}
		if !isJSONObject(oc.Format.Schema) {
			return out, api.Errorf(api.CallerBadRequest, "output_config.format.schema: must be a JSON schema object")
		}
		b, _ := json.Marshal(map[string]any{"name": "output", "strict": true, "schema": oc.Format.Schema})
		out.ResponseFormat = &api.ResponseFormat{Type: "json_schema", JSONSchema: b}
	}
	return out, nil
}

// anthropicTurn translates one message. A user message's tool_result blocks become tool
// messages, ahead of its text, since OpenAI's shape wants a call's results right after
// the assistant message that made it (and Anthropic wants them first in the turn); an
// assistant message's tool_use blocks become its tool calls.
func anthropicTurn(m api.AnthropicMessage, at string) ([]api.Message, error) {
	if !m.Content.Set {
		return nil, api.Errorf(api.CallerBadRequest, "%s.content: field required", at)
	}
	switch m.Role {
	case "user":
		var out []api.Message
		var text []string
		for j, b := range m.Content.Blocks {
			where := fmt.Sprintf("%s.content[%d]", at, j)
			switch b.Type {
			case "text":
				text = append(text, b.Text)
			case "tool_result":
				if b.ToolUseID == "" {
					return nil, api.Errorf(api.CallerBadRequest, "%s.tool_use_id: field required", where)
				}
				var content string
				if b.Content != nil {
					var err error
					if content, err = textOf(b.Content.Blocks, where+".content"); err != nil {
						return nil, err
					}
				}
				if b.IsError {
					// OpenAI's shape has no error flag; the model reads it in the text.
					content = "Error: " + content
				}
				out = append(out, api.Message{Role: "tool", ToolCallID: b.ToolUseID, Content: api.Content(content)})
			default:
				return nil, unsupportedBlock(b.Type, where, "user")
			}
		}
		if len(text) > 0 || len(out) == 0 {
			out = append(out, api.Message{Role: "user", Content: api.Content(strings.Join(text, "\n\n"))})
		}
		return out, nil
	case "assistant":
		msg := api.Message{Role: "assistant"}
		var text []string
		for j, b := range m.Content.Blocks {
			where := fmt.Sprintf("%s.content[%d]", at, j)
			switch b.Type {
			case "text":
				text = append(text, b.Text)
			case "tool_use":
				if b.ID == "" {
					return nil, api.Errorf(api.CallerBadRequest, "%s.id: field required", where)
				}
				if b.Name == "" {
					return nil, api.Errorf(api.CallerBadRequest, "%s.name: field required", where)
				}
				args := "{}"
				if len(b.Input) > 0 && !bytes.Equal(bytes.TrimSpace(b.Input), []byte("null")) {
					if !isJSONObject(b.Input) {
						return nil, api.Errorf(api.CallerBadRequest, "%s.input: must be a JSON object", where)
					}
					var buf bytes.Buffer
					_ = json.Compact(&buf, b.Input)
					args = buf.String()
				}
				msg.ToolCalls = append(msg.ToolCalls, api.ToolCall{ID: b.ID, Type: "function",
					Function: api.FunctionCall{Name: b.Name, Arguments: args}})
			case "thinking", "redacted_thinking":
				// The model's earlier reasoning: no backend takes it back as input.
			default:
				return nil, unsupportedBlock(b.Type, where, "assistant")
			}
		}
		msg.Content = api.Content(strings.Join(text, "\n\n"))
		return []api.Message{msg}, nil
	case "system":
		text, err := textOf(m.Content.Blocks, at+".content")
		if err != nil {
			return nil, err
		}
		return []api.Message{{Role: "system", Content: api.Content(text)}}, nil
	case "":
		return nil, api.Errorf(api.CallerBadRequest, "%s.role: field required (user or assistant)", at)
	}
	return nil, api.Errorf(api.CallerBadRequest, "%s.role: must be user or assistant, got %q", at, m.Role)
}

// textOf joins text blocks (system prompts, tool results); any other block is refused.
func textOf(blocks []api.ContentBlock, at string) (string, error) {
	parts := make([]string, 0, len(blocks))
	for j, b := range blocks {
		if b.Type != "text" {
			return "", unsupportedBlock(b.Type, fmt.Sprintf("%s[%d]", at, j), "text-only")
		}
		parts = append(parts, b.Text)
	}
	return strings.Join(parts, "\n\n"), nil
}

func unsupportedBlock(typ, at, where string) error {
	switch typ {
	case "image":
		return api.Errorf(api.CallerBadRequest, "%s: image input is not supported; send text", at)
	case "document":
		return api.Errorf(api.CallerBadRequest, "%s: document input is not supported; send the document's text as a text block", at)
	case "":
		return api.Errorf(api.CallerBadRequest, "%s.type: field required", at)
	}
	switch where {
	case "user":
		return api.Errorf(api.CallerBadRequest, "%s: content block type %q is not supported in a user message (text and tool_result are)", at, typ)
	case "assistant":
		return api.Errorf(api.CallerBadRequest, "%s: content block type %q is not supported in an assistant message (text, tool_use and thinking are)", at, typ)
	}
	return api.Errorf(api.CallerBadRequest, "%s: content block type %q is not supported here; only text blocks are", at, typ)
}

func anthropicTool(t api.AnthropicTool, at string) (api.Tool, error) {
	if t.Type != "" && t.Type != "custom" {
		return api.Tool{}, api.Errorf(api.CallerBadRequest, "%s: tool type %q is not supported; only client tools (name, description, input_schema) are", at, t.Type)
	}
	if t.Name == "" {
		return api.Tool{}, api.Errorf(api.CallerBadRequest, "%s.name: field required", at)
	}
	schema := t.InputSchema
	if len(schema) == 0 || bytes.Equal(bytes.TrimSpace(schema), []byte("null")) {
		schema = json.RawMessage(`{"type":"object","properties":{}}`)
	} else if !isJSONObject(schema) {
		return api.Tool{}, api.Errorf(api.CallerBadRequest, "%s.input_schema: must be a JSON schema object", at)
	}
	return api.Tool{Type: "function", Function: api.FunctionDef{Name: t.Name, Description: t.Description, Parameters: schema}}, nil
}

func isJSONObject(b json.RawMessage) bool {
	b = bytes.TrimSpace(b)
	return len(b) > 0 && b[0] == '{' && json.Valid(b)
}

// stopReason is the Anthropic stop reason of a result.
func stopReason(res *llm.Result, hit string) string {
	switch {
	case hit != "":
		return api.StopSequence
	case len(res.ToolCalls) > 0:
		return api.StopToolUse
	case res.FinishReason == "length":
		return api.StopMaxTokens
	case res.FinishReason == "content_filter":
		return api.StopRefusal
	}
	return api.StopEndTurn
}

// anthropicUsage counts as Anthropic does: input tokens exclude those read from a cache.
func anthropicUsage(u api.Usage) api.AnthropicUsage {
	cached := 0
	if u.PromptTokensDetails != nil {
		cached = u.PromptTokensDetails.CachedTokens
	}
	return api.AnthropicUsage{InputTokens: max(u.PromptTokens-cached, 0), OutputTokens: u.CompletionTokens, CacheReadInputTokens: cached}
}

// toolInput is a tool call's arguments as the input object of a tool_use block.
func toolInput(tc api.ToolCall) (json.RawMessage, error) {
	args := strings.TrimSpace(tc.Function.Arguments)
	if args == "" {
		return json.RawMessage(`{}`), nil
	}
	if !isJSONObject(json.RawMessage(args)) {
		return nil, api.Errorf(api.BackendBadResponse, "the model called tool %q with arguments that are not a JSON object: %.200s", tc.Function.Name, args)
	}
	return json.RawMessage(args), nil
}

// anthropicErrorType is Anthropic's error type for a kind.
func anthropicErrorType(k api.Kind) string {
	switch k {
	case api.CallerBadRequest, api.CallerCancelled, api.BackendRejected:
		return "invalid_request_error"
	case api.CallerNotFound:
		return "not_found_error"
	case api.CallerTooLarge:
		return "request_too_large"
	case api.CallerUnauthorized:
		return "authentication_error"
	case api.PolicyDenied:
		return "permission_error"
	case api.PolicyQuota, api.BackendRateLimited:
		return "rate_limit_error"
	case api.PolicyTimeout, api.BackendTimeout:
		return "timeout_error"
	case api.BackendOverloaded, api.KernelShuttingDown:
		return "overloaded_error"
	}
	return "api_error"
}

func anthropicErrorBody(k api.Kind, msg string) api.AnthropicError {
	return api.AnthropicError{Type: "error", Error: api.AnthropicErrorDetail{Type: anthropicErrorType(k), Message: msg}, Kind: k}
}

// writeAnthropicError writes err in Anthropic's shape, with the status its kind maps to.
func writeAnthropicError(w http.ResponseWriter, err error) {
	k := api.KindOf(err)
	if ae, ok := err.(*api.Error); ok && ae.RetryAfter > 0 {
		w.Header().Set("Retry-After", fmt.Sprint(int(ae.RetryAfter.Seconds()+0.999)))
	}
	writeJSON(w, k.HTTPStatus(), anthropicErrorBody(k, errorMessage(err)))
}
