package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/aios-go/aios/api"
)

// The translation of a Responses API request onto the kernel's one call shape (chat
// messages, function tools, a tool choice and a response format). It is pure, so the
// fuzz target drives it without a kernel.

// paramError is a typed error about one parameter of a request, which OpenAI's error
// shape names in "param". Code overrides the kind as OpenAI's "code" where OpenAI has a
// specific one (previous_response_not_found).
type paramError struct {
	err   *api.Error
	param string
	code  string
}

func (e *paramError) Error() string { return e.err.Error() }
func (e *paramError) Unwrap() error { return e.err }

func badParam(param, format string, args ...any) error {
	return &paramError{err: api.Errorf(api.CallerBadRequest, format, args...), param: param}
}

// decodeResponsesRequest decodes a request body that is valid JSON; a field of the
// wrong type is named as the parameter at fault.
func decodeResponsesRequest(data []byte, req *api.ResponsesRequest) error {
	err := json.Unmarshal(data, req)
	var typ *json.UnmarshalTypeError
	if errors.As(err, &typ) && typ.Field != "" {
		return badParam(typ.Field, "request body: field %q must be %s, not %s", typ.Field, jsonKind(typ.Type.Kind().String()), typ.Value)
	}
	if err != nil {
		return decodeJSON(data, req, "request body")
	}
	return nil
}

// respTurn is a Responses request as the kernel runs it.
type respTurn struct {
	system []api.Message // instructions, first; not carried to the next response
	turn   []api.Message // this request's input, after the previous response's conversation
	input  []api.ResponseItem
	tools  []api.Tool
	choice json.RawMessage // in chat's form
	// choiceName is the function tool_choice names, if it names one.
	choiceName string
	format     *api.ResponseFormat
}

// maxMetadata bound metadata as OpenAI does: 16 pairs, keys of 64 characters, values of 512.
const (
	maxMetadataPairs = 16
	maxMetadataKey   = 64
	maxMetadataValue = 512
)

// translateResponses checks req and translates it. prior is the conversation of the
// response it continues (previous_response_id), whose tool calls its
// function_call_output items may answer. newID makes the ids of input items.
func translateResponses(req *api.ResponsesRequest, prior []api.Message, newID func(prefix string) string) (*respTurn, error) {
	if req.Background != nil && *req.Background {
		return nil, badParam("background", "background responses are not supported by this kernel; send the request without background and wait for it (or stream it)")
	}
	if isSet(req.Conversation) {
		return nil, badParam("conversation", "conversation objects are not supported by this kernel; continue a conversation with previous_response_id")
	}
	if isSet(req.Prompt) {
		return nil, badParam("prompt", "stored prompt templates are not supported by this kernel; send instructions and input instead")
	}
	if req.MaxOutputTokens != nil && *req.MaxOutputTokens < 1 {
		return nil, badParam("max_output_tokens", "max_output_tokens must be at least 1, got %d", *req.MaxOutputTokens)
	}
	if len(req.Metadata) > maxMetadataPairs {
		return nil, badParam("metadata", "metadata holds at most %d pairs, got %d", maxMetadataPairs, len(req.Metadata))
	}
	for k, v := range req.Metadata {
		if len(k) > maxMetadataKey || len(v) > maxMetadataValue {
			return nil, badParam("metadata", "metadata keys are at most %d characters and values at most %d; %.20q is longer", maxMetadataKey, maxMetadataValue, k)
		}
	}
	if !isSet(req.Input) && (req.PreviousResponseID == nil || *req.PreviousResponseID == "") {
		return nil, badParam("input", "input is required: a string, or an array of input items")
	}
	t := &respTurn{}
	if req.Instructions != nil && *req.Instructions != "" {
		t.system = []api.Message{{Role: "system", Content: api.Content(*req.Instructions)}}
	}
	if err := t.readInput(req.Input, prior, newID); err != nil {
		return nil, err
	}
	if err := t.readTools(req.Tools); err != nil {
		return nil, err
	}
	if err := t.readToolChoice(req.ToolChoice); err != nil {
		return nil, err
	}
	if req.Text != nil && req.Text.Format != nil {
		f, err := responseFormat(req.Text.Format)
		if err != nil {
			return nil, err
		}
		t.format = f
	}
	return t, nil
}

func isSet(raw json.RawMessage) bool {
	raw = bytes.TrimSpace(raw)
	return len(raw) > 0 && !bytes.Equal(raw, []byte("null"))
}

// readInput turns input into chat messages: messages keep their role (developer is
// system), a function_call joins the assistant message before it or starts one, and a
// function_call_output is a tool message, which must answer a call made before it.
func (t *respTurn) readInput(raw json.RawMessage, prior []api.Message, newID func(string) string) error {
	if !isSet(raw) {
		return nil
	}
	var text string
	if json.Unmarshal(raw, &text) == nil {
		t.turn = []api.Message{{Role: "user", Content: api.Content(text)}}
		t.input = []api.ResponseItem{{Type: "message", ID: newID("msg"), Status: "completed", Role: "user",
			Content: []api.ResponseContent{{Type: "input_text", Text: text}}}}
		return nil
	}
	var items []json.RawMessage
	if err := json.Unmarshal(raw, &items); err != nil {
		return badParam("input", "input must be a string or an array of input items")
	}
	calls := map[string]bool{}
	for _, m := range prior {
		for _, c := range m.ToolCalls {
			calls[c.ID] = true
		}
	}
	for i, rawItem := range items {
		at := fmt.Sprintf("input[%d]", i)
		var it api.ResponseInputItem
		if err := json.Unmarshal(rawItem, &it); err != nil {
			return itemDecodeError(at, err)
		}
		typ := it.Type
		if typ == "" && it.Role != "" {
			typ = "message"
		}
		switch typ {
		case "message":
			role := it.Role
			switch role {
			case "user", "assistant", "system":
			case "developer":
				role = "system"
			case "":
				return badParam(at+".role", "%s is a message without a role; give user, assistant, system or developer", at)
			default:
				return badParam(at+".role", "%s has role %q; a message's role is user, assistant, system or developer", at, it.Role)
			}
			if !isSet(it.Content) {
				return badParam(at+".content", "%s is a message without content; give a string or an array of content parts", at)
			}
			text, err := partsText(it.Content, at+".content")
			if err != nil {
				return err
			}
			t.turn = append(t.turn, api.Message{Role: role, Content: api.Content(text)})
			part := "input_text"
			if role == "assistant" {
				part = "output_text"
			}
			t.input = append(t.input, api.ResponseItem{Type: "message", ID: orNew(it.ID, newID, "msg"), Status: "completed",
				Role: it.Role, Content: []api.ResponseContent{{Type: part, Text: text}}})
		case "function_call":
			if it.CallID == "" {
				return badParam(at+".call_id", "%s is a function_call without a call_id", at)
			}
			if it.Name == "" {
				return badParam(at+".name", "%s is a function_call without a name", at)
			}
			tc := api.ToolCall{ID: it.CallID, Type: "function", Function: api.FunctionCall{Name: it.Name, Arguments: it.Arguments}}
			// Calls the model made together are one assistant message, as chat has them.
			if n := len(t.turn); n > 0 && t.turn[n-1].Role == "assistant" {
				t.turn[n-1].ToolCalls = append(t.turn[n-1].ToolCalls, tc)
			} else {
				t.turn = append(t.turn, api.Message{Role: "assistant", ToolCalls: []api.ToolCall{tc}})
			}
			calls[it.CallID] = true
			t.input = append(t.input, api.ResponseItem{Type: "function_call", ID: orNew(it.ID, newID, "fc"), Status: "completed",
				CallID: it.CallID, Name: it.Name, Arguments: it.Arguments})
		case "function_call_output":
			if it.CallID == "" {
				return badParam(at+".call_id", "%s is a function_call_output without a call_id", at)
			}
			if !calls[it.CallID] {
				return badParam(at+".call_id", "%s answers call_id %q, but no function_call with that call_id comes before it (in the input, or the response previous_response_id names)", at, it.CallID)
			}
			if !isSet(it.Output) {
				return badParam(at+".output", "%s is a function_call_output without output; give a string", at)
			}
			out, err := partsText(it.Output, at+".output")
			if err != nil {
				return err
			}
			t.turn = append(t.turn, api.Message{Role: "tool", ToolCallID: it.CallID, Content: api.Content(out)})
			t.input = append(t.input, api.ResponseItem{Type: "function_call_output", ID: orNew(it.ID, newID, "fco"), Status: "completed",
				CallID: it.CallID, Output: out})
		case "":
			return badParam(at+".type", "%s has no type; give message, function_call or function_call_output", at)
		case "reasoning":
			return badParam(at+".type", "%s is a reasoning item; the kernel's models produce none and it takes none back", at)
		default:
			return badParam(at+".type", "%s has type %q; this kernel takes message, function_call and function_call_output items (hosted tools' items and item references are not supported)", at, typ)
		}
	}
	return nil
}

func orNew(id string, newID func(string) string, prefix string) string {
	if id != "" {
		return id
	}
	return newID(prefix)
}

// itemDecodeError names the item and field a decoding error is about.
func itemDecodeError(at string, err error) error {
	var typ *json.UnmarshalTypeError
	if errors.As(err, &typ) && typ.Field != "" {
		return badParam(at+"."+typ.Field, "%s: field %q must be %s, not %s", at, typ.Field, jsonKind(typ.Type.Kind().String()), typ.Value)
	}
	return badParam(at, "%s must be an input item object: %v", at, err)
}

// partsText reads a message's content or a function output: a string or an array of
// text parts, concatenated. Images, files and audio are refused: a text model would
// silently answer without them.
func partsText(raw json.RawMessage, at string) (string, error) {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s, nil
	}
	var parts []json.RawMessage
	if err := json.Unmarshal(raw, &parts); err != nil {
		return "", badParam(at, "%s must be a string or an array of content parts", at)
	}
	var b strings.Builder
	for j, rp := range parts {
		pat := fmt.Sprintf("%s[%d]", at, j)
		var p api.ResponseInputPart
		if err := json.Unmarshal(rp, &p); err != nil {
			return "", itemDecodeError(pat, err)
		}
		switch p.Type {
		case "input_text", "output_text", "text":
			b.WriteString(p.Text)
		case "refusal":
			b.WriteString(p.Refusal)
		case "input_image", "input_file", "input_audio":
			return "", badParam(pat+".type", "%s is an %s part; this kernel's models read text only", pat, p.Type)
		default:
			return "", badParam(pat+".type", "%s has type %q; content parts are input_text or output_text", pat, p.Type)
		}
	}
	return b.String(), nil
}

// readTools takes function tools; hosted tools (web_search, file_search, ...) are refused.
func (t *respTurn) readTools(tools []api.ResponseTool) error {
	seen := map[string]bool{}
	for i, rt := range tools {
		at := fmt.Sprintf("tools[%d]", i)
		if rt.Type != "function" {
			return badParam(at+".type", "%s has type %q; this kernel serves function tools only (hosted tools such as web_search or file_search are not supported; the kernel's own tools are offered with the X-AIOS-Tools header)", at, rt.Type)
		}
		if rt.Name == "" {
			return badParam(at+".name", "%s is a function tool without a name", at)
		}
		if seen[rt.Name] {
			return badParam(at+".name", "%s declares %q a second time", at, rt.Name)
		}
		seen[rt.Name] = true
		if isSet(rt.Parameters) && bytes.TrimSpace(rt.Parameters)[0] != '{' {
			return badParam(at+".parameters", "%s.parameters must be a JSON Schema object", at)
		}
		def := api.FunctionDef{Name: rt.Name, Strict: rt.Strict}
		if rt.Description != nil {
			def.Description = *rt.Description
		}
		if isSet(rt.Parameters) {
			def.Parameters = rt.Parameters
		}
		t.tools = append(t.tools, api.Tool{Type: "function", Function: def})
	}
	return nil
}

// readToolChoice translates tool_choice to chat's form: a mode passes as it is, a named
// function becomes {"type":"function","function":{"name"}}, and allowed_tools narrows
// the tools to those it lists under its mode.
func (t *respTurn) readToolChoice(raw json.RawMessage) error {
	if !isSet(raw) {
		return nil
	}
	var mode string
	if json.Unmarshal(raw, &mode) == nil {
		switch mode {
		case "none", "auto", "required":
			t.choice = raw
			return nil
		}
		return badParam("tool_choice", "tool_choice %q is not one of none, auto, required", mode)
	}
	var obj struct {
		Type  string `json:"type"`
		Name  string `json:"name"`
		Mode  string `json:"mode"`
		Tools []struct {
			Type string `json:"type"`
			Name string `json:"name"`
		} `json:"tools"`
	}
	if err := json.Unmarshal(raw, &obj); err != nil {
		return badParam("tool_choice", "tool_choice must be none, auto, required, or an object naming a function")
	}
	declared := func(name string) bool {
		for _, tl := range t.tools {
			if tl.Function.Name == name {
				return true
			}
		}
		return false
	}
	switch obj.Type {
	case "function":
		if obj.Name == "" {
			return badParam("tool_choice.name", "tool_choice of type function needs the function's name")
		}
		// Checked by checkChoice once the kernel's tools are offered too.
		t.choiceName = obj.Name
		t.choice, _ = json.Marshal(map[string]any{"type": "function", "function": map[string]string{"name": obj.Name}})
		return nil
	case "allowed_tools":
		if obj.Mode != "auto" && obj.Mode != "required" {
			return badParam("tool_choice.mode", "tool_choice.mode must be auto or required, got %q", obj.Mode)
		}
		allowed := map[string]bool{}
		for i, a := range obj.Tools {
			if a.Type != "function" || !declared(a.Name) {
				return badParam(fmt.Sprintf("tool_choice.tools[%d]", i), "tool_choice.tools[%d] must name a declared function tool", i)
			}
			allowed[a.Name] = true
		}
		kept := t.tools[:0:0]
		for _, tl := range t.tools {
			if allowed[tl.Function.Name] {
				kept = append(kept, tl)
			}
		}
		t.tools = kept
		t.choice, _ = json.Marshal(obj.Mode)
		return nil
	}
	return badParam("tool_choice.type", "tool_choice of type %q is not supported; name a function tool, or give none, auto or required", obj.Type)
}

// checkChoice checks that a function tool_choice names is among tools: the client's
// and the kernel's offered ones.
func (t *respTurn) checkChoice(tools []api.Tool) error {
	if t.choiceName == "" {
		return nil
	}
	for _, tl := range tools {
		if tl.Function.Name == t.choiceName {
			return nil
		}
	}
	return badParam("tool_choice.name", "tool_choice names function %q, which is not among the tools (nor the kernel's tools offered with X-AIOS-Tools)", t.choiceName)
}

// responseFormat translates text.format onto chat's response_format.
func responseFormat(f *api.ResponseTextFormat) (*api.ResponseFormat, error) {
	switch f.Type {
	case "text":
		return nil, nil
	case "json_object":
		return &api.ResponseFormat{Type: "json_object"}, nil
	case "json_schema":
		if f.Name == "" {
			return nil, badParam("text.format.name", "text.format of type json_schema needs a name")
		}
		if !isSet(f.Schema) || bytes.TrimSpace(f.Schema)[0] != '{' {
			return nil, badParam("text.format.schema", "text.format of type json_schema needs a schema: a JSON Schema object")
		}
		js := struct {
			Name        string          `json:"name"`
			Description string          `json:"description,omitempty"`
			Schema      json.RawMessage `json:"schema"`
			Strict      *bool           `json:"strict,omitempty"`
		}{f.Name, f.Description, f.Schema, f.Strict}
		b, err := json.Marshal(js)
		if err != nil {
			return nil, badParam("text.format.schema", "text.format.schema is not valid JSON: %v", err)
		}
		return &api.ResponseFormat{Type: "json_schema", JSONSchema: b}, nil
	}
	return nil, badParam("text.format.type", "text.format.type %q is not one of text, json_object, json_schema", f.Type)
}
