package server

import (
	"encoding/json"
	"strings"

	"github.com/aios-go/aios/api"
)

// AIOS tools are named "author/tool", but LLM APIs allow no "/" in function names, so
// names travel to the model as "author__tool" and are turned back on the way out.

// toolNames maps names as the model sees them back to the caller's names.
type toolNames map[string]string

func encodeToolNames(tools []api.Tool) ([]api.Tool, toolNames) {
	out := make([]api.Tool, len(tools))
	names := toolNames{}
	for i, t := range tools {
		if t.Type == "" {
			t.Type = "function"
		}
		enc := strings.ReplaceAll(t.Function.Name, "/", "__")
		names[enc] = t.Function.Name
		t.Function.Name = enc
		out[i] = t
	}
	return out, names
}

// decode returns the caller's name for a model-side name. Only names of tools the caller
// declared are turned back, so a native "a__b" the model invents is left alone.
func (n toolNames) decode(name string) string {
	if orig, ok := n[name]; ok {
		return orig
	}
	return name
}

func encodeCallNames(calls []api.ToolCall) []api.ToolCall {
	for i := range calls {
		calls[i].Function.Name = strings.ReplaceAll(calls[i].Function.Name, "/", "__")
	}
	return calls
}

// aiosToolCalls converts OpenAI tool calls to AIOS's {name, parameters, id}. Arguments
// that are not a JSON object are kept whole under "arguments" rather than dropped.
func aiosToolCalls(calls []api.ToolCall, names toolNames) []api.AIOSToolCall {
	out := make([]api.AIOSToolCall, len(calls))
	for i, c := range calls {
		params := map[string]any{}
		if strings.TrimSpace(c.Function.Arguments) != "" {
			if err := json.Unmarshal([]byte(c.Function.Arguments), &params); err != nil {
				params = map[string]any{"arguments": c.Function.Arguments}
			}
		}
		out[i] = api.AIOSToolCall{Name: names.decode(c.Function.Name), Parameters: params, ID: c.ID}
	}
	return out
}
