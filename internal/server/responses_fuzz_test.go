package server

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/aios-go/aios/api"
)

// FuzzResponsesRequest drives a Responses request body through decoding and
// translation. Neither may panic, and every input ends one of two ways: a translated
// call whose tool messages each answer a call made before them, or a caller error of
// the kernel's typed kinds with a message (a parameter error also names its parameter).
func FuzzResponsesRequest(f *testing.F) {
	for _, s := range []string{
		`{"model":"m","input":"hi"}`,
		`{"input":[{"role":"developer","content":"d"},{"type":"message","role":"user","content":[{"type":"input_text","text":"a"}]}],"instructions":"be brief"}`,
		`{"input":[{"type":"function_call","call_id":"c","name":"f","arguments":"{}"},{"type":"function_call_output","call_id":"c","output":[{"type":"input_text","text":"r"}]}]}`,
		`{"input":[{"type":"function_call_output","call_id":"prior","output":"r"}],"previous_response_id":"resp_1"}`,
		`{"input":"x","tools":[{"type":"function","name":"f","parameters":{"type":"object"},"strict":true}],"tool_choice":{"type":"function","name":"f"}}`,
		`{"input":"x","tools":[{"type":"function","name":"f"}],"tool_choice":{"type":"allowed_tools","mode":"required","tools":[{"type":"function","name":"f"}]}}`,
		`{"input":"x","text":{"format":{"type":"json_schema","name":"n","schema":{"type":"object"},"strict":true}}}`,
		`{"input":"x","max_output_tokens":-1,"metadata":{"a":"b"},"background":true}`,
		`{"input":[{"type":"reasoning"}]}`, `{"input":[{"role":"user","content":[{"type":"input_image"}]}]}`,
		`{"input":[null,1,"s",[]]}`, `{"input":{}}`, `{"tools":[{"type":"web_search"}]}`,
		`{`, `null`, `[]`, `"s"`, `{"input":"x","tool_choice":5}`, `{"input":"x","text":{"format":{"type":"json_schema","name":"n","schema":[]}}}`,
	} {
		f.Add(s)
	}
	prior := []api.Message{{Role: "user", Content: "q"}, {Role: "assistant", ToolCalls: []api.ToolCall{{ID: "prior", Function: api.FunctionCall{Name: "f"}}}}}
	n := 0
	newID := func(p string) string { n++; return fmt.Sprintf("%s_%d", p, n) }
	f.Fuzz(func(t *testing.T, body string) {
		var req api.ResponsesRequest
		err := decodeJSON([]byte(body), &req, "request body")
		if err == nil {
			err = decodeResponsesRequest([]byte(body), &req)
		}
		var turn *respTurn
		if err == nil {
			turn, err = translateResponses(&req, prior, newID)
		}
		if err == nil {
			err = turn.checkChoice(turn.tools)
		}
		if err != nil {
			var ae *api.Error
			if !errors.As(err, &ae) || !strings.HasPrefix(string(ae.Kind), "caller_") || ae.Message == "" {
				t.Fatalf("%q: untyped or not the caller's: %#v", body, err)
			}
			var pe *paramError
			if errors.As(err, &pe) && pe.param == "" {
				t.Fatalf("%q: a parameter error without its parameter: %v", body, err)
			}
			return
		}
		answered := map[string]bool{}
		for _, m := range append(append([]api.Message(nil), prior...), turn.turn...) {
			for _, c := range m.ToolCalls {
				answered[c.ID] = true
			}
			if m.Role == "tool" && !answered[m.ToolCallID] {
				t.Fatalf("%q: a tool message answers %q, which no call before it made", body, m.ToolCallID)
			}
		}
		if len(turn.input) != countItems(req) {
			t.Fatalf("%q: %d input items listed for %d given", body, len(turn.input), countItems(req))
		}
	})
}

// countItems is how many input items a request that translated gave.
func countItems(req api.ResponsesRequest) int {
	if !isSet(req.Input) {
		return 0
	}
	var items []json.RawMessage
	if json.Unmarshal(req.Input, &items) != nil {
		return 1 // a string
	}
	return len(items)
}
