package server

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/aios-go/aios/api"
	"github.com/aios-go/aios/internal/config"
)

// toolReply is a /query reply with AIOS's ToolResponse (and this kernel's per-call
// results) inside.
type toolReply struct {
	Response struct {
		ResponseClass   string           `json:"response_class"`
		ResponseMessage *string          `json:"response_message"`
		Finished        bool             `json:"finished"`
		Error           *string          `json:"error"`
		StatusCode      int              `json:"status_code"`
		ToolResults     []api.ToolResult `json:"tool_results"`
		ToolCalls       []map[string]any `json:"tool_calls"`
	} `json:"response"`
	StartTimes      []float64 `json:"start_times"`
	TurnaroundTimes []float64 `json:"turnaround_times"`
}

func (h *harness) toolQuery(body string) toolReply {
	h.t.Helper()
	code, b := h.rest("POST", "/query", body, "")
	if code != http.StatusOK {
		h.t.Fatalf("HTTP %d: %s", code, b)
	}
	var r toolReply
	if err := json.Unmarshal(b, &r); err != nil {
		h.t.Fatalf("%v: %s", err, b)
	}
	return r
}

// The exact JSON AIOS's Python SDK sends for call_tool: every call of the list runs
// (AIOS's own kernel runs only the first), each with its own timings, in order.
func TestToolQueryRunsEveryCall(t *testing.T) {
	h := startSystem(t, nil)
	r := h.toolQuery(`{"agent_name": "demo_agent", "query_type": "tool", "query_data": {"query_class": "tool", "tool_calls": [
		{"name": "calculator", "parameters": {"expression": "2+3*4"}},
		{"name": "storage_write", "parameters": {"path": "notes/a.txt", "content": "hello"}},
		{"name": "calculator", "parameters": "{\"expression\": \"sqrt(16)\"}"}]}}`)
	res := r.Response
	if res.StatusCode != 200 || !res.Finished || res.Error != nil || len(res.ToolResults) != 3 {
		t.Fatalf("response: %+v", res)
	}
	if got := *res.ToolResults[0].Content; got != "14" {
		t.Fatalf("2+3*4 = %q", got)
	}
	if got := *res.ToolResults[2].Content; got != "4" {
		t.Fatalf("sqrt(16) = %q", got)
	}
	if len(r.StartTimes) != 3 || len(r.TurnaroundTimes) != 3 {
		t.Fatalf("timings for %d and %d calls, want 3", len(r.StartTimes), len(r.TurnaroundTimes))
	}
	msg := *res.ResponseMessage
	if !strings.Contains(msg, "[calculator]\n14") || !strings.Contains(msg, "[calculator]\n4") || !strings.Contains(msg, "[storage_write]") {
		t.Fatalf("response_message: %q", msg)
	}
	// The storage tool wrote in the calling agent's namespace.
	code, body := h.rest("GET", "/v1/storage/files/notes/a.txt", "", "demo_agent")
	if code != 200 || !strings.Contains(string(body), "hello") {
		t.Fatalf("file written by the tool: %d %s", code, body)
	}
}

// Arguments that do not match the tool's schema are refused before the tool runs, with
// a message the model can act on; an unknown tool is named as such; the other calls
// of the query still run.
func TestToolQueryRefusesInvalidCalls(t *testing.T) {
	h := startSystem(t, nil)
	r := h.toolQuery(`{"agent_name": "a", "query_type": "tool", "query_data": {"tool_calls": [
		{"name": "calculator", "parameters": {"expr": 1}},
		{"name": "nobody/nothing", "parameters": {}},
		{"name": "calculator", "parameters": {"expression": "1/0"}},
		{"name": "calculator", "parameters": {"expression": "7*6"}}]}}`)
	res := r.Response
	if len(res.ToolResults) != 4 || res.StatusCode != 400 || !res.Finished || res.Error == nil {
		t.Fatalf("response: %+v", res)
	}
	bad := res.ToolResults[0]
	if bad.StatusCode != 400 || bad.Kind != api.CallerBadRequest || bad.Content != nil || !strings.Contains(*bad.Error, "expression") {
		t.Fatalf("schema rejection: %+v", bad)
	}
	if nf := res.ToolResults[1]; nf.StatusCode != 404 || !strings.Contains(*nf.Error, "nobody__nothing") {
		t.Fatalf("unknown tool: %+v", nf)
	}
	// The tool ran and reported its own failure: a result the model reads, not an error.
	if dz := res.ToolResults[2]; dz.StatusCode != 200 || !dz.IsError || dz.Content == nil {
		t.Fatalf("division by zero: %+v", dz)
	}
	if ok := res.ToolResults[3]; ok.StatusCode != 200 || *ok.Content != "42" {
		t.Fatalf("valid call beside invalid ones: %+v", ok)
	}
	if !strings.Contains(*res.Error, "2 of 4 tool calls failed") {
		t.Fatalf("error: %q", *res.Error)
	}
	if len(r.StartTimes) != 2 {
		t.Fatalf("%d timings; only the 2 calls that became syscalls have them", len(r.StartTimes))
	}
}

// Malformed tool queries are the caller's fault (HTTP 400 {"detail"}); with the tool
// module off, AIOS's shape with status_code 501.
func TestToolQueryMalformedAndDisabled(t *testing.T) {
	h := startSystem(t, nil)
	for _, body := range []string{
		`{"agent_name": "a", "query_type": "tool", "query_data": {"tool_calls": []}}`,
		`{"agent_name": "a", "query_type": "tool", "query_data": {"tool_calls": [{"parameters": {}}]}}`,
		`{"agent_name": "a", "query_type": "tool", "query_data": {"tool_calls": "calculator"}}`,
	} {
		if code, b := h.rest("POST", "/query", body, ""); code != 400 || !strings.Contains(string(b), "detail") {
			t.Errorf("%s: %d %s", body, code, b)
		}
	}
	off := startSystem(t, func(c *config.Config) { c.Tools.Disabled = true })
	r := off.toolQuery(`{"agent_name": "a", "query_type": "tool", "query_data": {"tool_calls": [{"name": "calculator", "parameters": {}}]}}`)
	if r.Response.StatusCode != 501 || r.Response.Error == nil {
		t.Fatalf("tool module off: %+v", r.Response)
	}
}

// call_tool: the model's tool calls are run by the kernel and their results returned
// beside the calls (the simulated model calls a tool when the action requires one, with
// arguments shaped by the declared schema: here a made-up time zone, which the tool
// reports as its own failure).
func TestCallToolActionRunsTheModelsCalls(t *testing.T) {
	h := startSystem(t, nil)
	r := h.toolQuery(`{"agent_name": "a", "query_type": "llm", "query_data": {"query_class": "llm",
		"messages": [{"role": "user", "content": "what time is it?"}],
		"tools": [{"type": "function", "function": {"name": "current_time", "description": "now",
			"parameters": {"type": "object", "properties": {"timezone": {"type": "string"}}}}}],
		"action_type": "call_tool"}}`)
	res := r.Response
	if res.StatusCode != 200 || len(res.ToolCalls) != 1 || len(res.ToolResults) != 1 {
		t.Fatalf("response: %+v", res)
	}
	tr := res.ToolResults[0]
	if tr.Name != "current_time" || tr.StatusCode != 200 || tr.Content == nil || !tr.IsError || !strings.Contains(*tr.Content, "time zone") {
		t.Fatalf("tool result: %+v", tr)
	}
	if res.ResponseMessage == nil || *res.ResponseMessage != *tr.Content {
		t.Fatalf("response_message %v, want the tool's result", res.ResponseMessage)
	}
	if len(r.StartTimes) != 2 {
		t.Fatalf("timings of %d syscalls, want the LLM call's and the tool call's", len(r.StartTimes))
	}
}

// /v1 with kernel tools: the model's call of a kernel tool is run by the kernel and the
// model asked again; the client gets the final answer and which tools ran.
func TestChatToolLoop(t *testing.T) {
	h := startSystem(t, nil)
	body := `{"model": "sim-test", "messages": [{"role": "user", "content": "time?"}],
		"kernel_tools": ["current_*"], "tool_choice": {"type": "function", "function": {"name": "current_time"}}}`
	req, _ := http.NewRequest("POST", h.url+"/v1/chat/completions", strings.NewReader(body))
	req.Header.Set(api.HeaderAgent, "a")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct {
		Choices []struct {
			Message      api.Message `json:"message"`
			FinishReason string      `json:"finish_reason"`
		} `json:"choices"`
		Usage api.Usage `json:"usage"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || resp.StatusCode != 200 {
		t.Fatalf("%d %v", resp.StatusCode, err)
	}
	if ran := resp.Header.Get(api.HeaderToolsRan); ran != "current_time" {
		t.Fatalf("tools ran: %q", ran)
	}
	c := out.Choices[0]
	if len(c.Message.ToolCalls) != 0 || c.FinishReason == "tool_calls" || len(c.Message.Content) == 0 {
		t.Fatalf("final answer: %+v", c)
	}
	code, b := h.rest("GET", "/v1/tools", "", "")
	if code != 200 || !strings.Contains(string(b), `"calculator"`) || !strings.Contains(string(b), `"source":"builtin"`) {
		t.Fatalf("/v1/tools: %d %s", code, b)
	}
	code, b = h.rest("GET", "/admin/tools", "", "")
	if code != 200 || !strings.Contains(string(b), `"name":"current_time"`) || !strings.Contains(string(b), `"calls":1`) {
		t.Fatalf("/admin/tools: %d %s", code, b)
	}
	for _, bad := range []string{`["nothing_*"]`} {
		b := `{"model": "sim-test", "messages": [{"role": "user", "content": "x"}], "kernel_tools": ` + bad + `}`
		if code, out := h.rest("POST", "/v1/chat/completions", b, "a"); code != 404 || !strings.Contains(string(out), "nothing_*") {
			t.Fatalf("unknown kernel tool: %d %s", code, out)
		}
	}
}

// X-AIOS-Session names the program of /query calls whose query data names none: a
// supervised agent's runtime gives it a program id, and every module's calls must be
// scheduled under it.
func TestQuerySessionHeader(t *testing.T) {
	h := startSystem(t, nil)
	req, _ := http.NewRequest("POST", h.url+"/query", strings.NewReader(`{"agent_name": "a", "query_type": "llm",
		"query_data": {"messages": [{"role": "user", "content": "hi"}], "max_new_tokens": 2}}`))
	req.Header.Set(api.HeaderSession, "run-7")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	code, b := h.rest("GET", "/admin/usage?session=run-7", "", "")
	if code != 200 || !strings.Contains(string(b), `"run-7"`) || !strings.Contains(string(b), `"calls":1`) {
		t.Fatalf("usage of session run-7: %d %s", code, b)
	}
}
