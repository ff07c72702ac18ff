package server

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/aios-go/aios/api"
	"github.com/aios-go/aios/internal/kernel"
	"github.com/aios-go/aios/internal/llm"
	"github.com/aios-go/aios/internal/respstore"
)

// scriptCore records each request it is given and answers with the next scripted
// result, streaming its text a word at a time and its tool calls in two fragments, as
// OpenAI-compatible engines do.
type scriptCore struct {
	mu      sync.Mutex
	reqs    []llm.Request
	answers []scripted
}

type scripted struct {
	res     llm.Result
	failAt  int // fail after this many text deltas (0: do not fail)
	failErr error
}

func (c *scriptCore) core() kernel.CoreConfig {
	return kernel.CoreConfig{Model: "sim-test", Backend: "sim", Core: &funcCore{gen: c.gen}}
}

func (c *scriptCore) gen(ctx context.Context, req *llm.Request, emit func(llm.Delta)) (*llm.Result, error) {
	c.mu.Lock()
	c.reqs = append(c.reqs, *req)
	a := scripted{res: llm.Result{Text: "the answer", FinishReason: "stop"}}
	if len(c.answers) > 0 {
		a, c.answers = c.answers[0], c.answers[1:]
	}
	c.mu.Unlock()
	words := strings.SplitAfter(a.res.Text, " ")
	for i, w := range words {
		if a.failAt > 0 && i == a.failAt {
			return nil, a.failErr
		}
		if w != "" {
			emit(llm.Delta{Text: w})
		}
	}
	if a.failAt > 0 && len(a.res.Text) == 0 {
		return nil, a.failErr
	}
	for i, tc := range a.res.ToolCalls {
		half := len(tc.Function.Arguments) / 2
		emit(llm.Delta{ToolCalls: []api.ToolCall{{Index: new(i), ID: tc.ID, Type: "function",
			Function: api.FunctionCall{Name: tc.Function.Name, Arguments: tc.Function.Arguments[:half]}}}})
		emit(llm.Delta{ToolCalls: []api.ToolCall{{Index: new(i), Function: api.FunctionCall{Arguments: tc.Function.Arguments[half:]}}}})
	}
	res := a.res
	res.Usage = api.Usage{PromptTokens: 11, CompletionTokens: 7, TotalTokens: 18, PromptTokensDetails: &api.PromptTokensDetails{CachedTokens: 3}}
	return &res, nil
}

func (c *scriptCore) script(a ...scripted) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.answers = append(c.answers, a...)
}

func (c *scriptCore) last() llm.Request {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.reqs[len(c.reqs)-1]
}

// startResponses runs the server on a scripted core with a response store in a
// temporary SQLite file (or none).
func startResponses(t *testing.T, withStore bool) (*harness, *scriptCore) {
	t.Helper()
	c := &scriptCore{}
	opts := Options{}
	if withStore {
		st, err := respstore.Open(context.Background(), respstore.Config{Path: filepath.Join(t.TempDir(), "responses.db")})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		opts.Responses = st
	}
	return start(t, opts, c.core()), c
}

// create posts a non-streaming request that must succeed.
func (h *harness) create(body, agent string) api.Response {
	h.t.Helper()
	code, b := h.rest("POST", "/v1/responses", body, agent)
	if code != http.StatusOK {
		h.t.Fatalf("POST /v1/responses %s: %d %s", body, code, b)
	}
	var r api.Response
	if err := json.Unmarshal(b, &r); err != nil {
		h.t.Fatalf("%s: %v", b, err)
	}
	return r
}

// wantError asserts an OpenAI-shaped error of status code naming param.
func wantError(t *testing.T, code int, b []byte, wantCode int, param string) api.ResponsesErrorBody {
	t.Helper()
	var e api.ResponsesErrorBody
	if err := json.Unmarshal(b, &e); err != nil || code != wantCode || e.Error.Message == "" || e.Error.Type == "" {
		t.Fatalf("want HTTP %d with an OpenAI error, got %d %s", wantCode, code, b)
	}
	got := ""
	if e.Error.Param != nil {
		got = *e.Error.Param
	}
	if got != param {
		t.Fatalf("param %q, want %q: %s", got, param, b)
	}
	return e
}

func TestResponsesTranslation(t *testing.T) {
	h, c := startResponses(t, true)
	r := h.create(`{
		"model": "sim-test",
		"instructions": "Be brief.",
		"input": [
			{"role": "developer", "content": "Use metric units."},
			{"type": "message", "role": "user", "content": [{"type": "input_text", "text": "Weather in "}, {"type": "input_text", "text": "Paris?"}]},
			{"type": "function_call", "call_id": "call_a", "name": "get_weather", "arguments": "{\"city\":\"Paris\"}"},
			{"type": "function_call", "call_id": "call_b", "name": "get_time", "arguments": "{}"},
			{"type": "function_call_output", "call_id": "call_a", "output": "18C"},
			{"type": "function_call_output", "call_id": "call_b", "output": [{"type": "input_text", "text": "noon"}]},
			{"role": "assistant", "content": [{"type": "output_text", "text": "18C at noon.", "annotations": []}]},
			{"role": "user", "content": "And tomorrow?"}
		],
		"tools": [
			{"type": "function", "name": "get_weather", "description": "Weather for a city", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}, "strict": true},
			{"type": "function", "name": "get_time", "parameters": null, "strict": null}
		],
		"tool_choice": {"type": "function", "name": "get_weather"},
		"text": {"format": {"type": "json_schema", "name": "forecast", "schema": {"type": "object"}, "strict": true}},
		"temperature": 0.5,
		"max_output_tokens": 40,
		"metadata": {"run": "7"}
	}`, "translator")
	got := c.last()
	strict := true
	want := llm.Request{
		Model: "sim-test",
		Messages: []api.Message{
			{Role: "system", Content: "Be brief."},
			{Role: "system", Content: "Use metric units."},
			{Role: "user", Content: "Weather in Paris?"},
			{Role: "assistant", ToolCalls: []api.ToolCall{
				{ID: "call_a", Type: "function", Function: api.FunctionCall{Name: "get_weather", Arguments: `{"city":"Paris"}`}},
				{ID: "call_b", Type: "function", Function: api.FunctionCall{Name: "get_time", Arguments: `{}`}},
			}},
			{Role: "tool", ToolCallID: "call_a", Content: "18C"},
			{Role: "tool", ToolCallID: "call_b", Content: "noon"},
			{Role: "assistant", Content: "18C at noon."},
			{Role: "user", Content: "And tomorrow?"},
		},
		Tools: []api.Tool{
			{Type: "function", Function: api.FunctionDef{Name: "get_weather", Description: "Weather for a city",
				Parameters: json.RawMessage(`{"type": "object", "properties": {"city": {"type": "string"}}}`), Strict: &strict}},
			{Type: "function", Function: api.FunctionDef{Name: "get_time"}},
		},
		ToolChoice:     json.RawMessage(`{"function":{"name":"get_weather"},"type":"function"}`),
		Temperature:    new(0.5),
		MaxTokens:      40,
		ResponseFormat: &api.ResponseFormat{Type: "json_schema", JSONSchema: json.RawMessage(`{"name":"forecast","schema":{"type":"object"},"strict":true}`)},
	}
	if diff := cmp.Diff(want, got, cmp.FilterPath(func(p cmp.Path) bool {
		switch p.Last().String() {
		case ".Agent", ".Session", ".KVTTL", ".Priority":
			return true
		}
		return false
	}, cmp.Ignore())); diff != "" {
		t.Fatalf("the call the kernel ran (-want +got):\n%s", diff)
	}
	// The response echoes the settings and reports usage in the Responses API's names.
	if r.Object != "response" || !strings.HasPrefix(r.ID, "resp_") || r.Status != "completed" || r.Model != "sim-test" ||
		r.Instructions == nil || *r.Instructions != "Be brief." || !r.Store || r.Metadata["run"] != "7" ||
		r.Text.Format == nil || r.Text.Format.Type != "json_schema" || len(r.Tools) != 2 || r.CompletedAt == nil {
		t.Fatalf("response %+v", r)
	}
	wantUsage := api.ResponseUsage{InputTokens: 11, OutputTokens: 7, TotalTokens: 18, InputTokensDetails: api.InputTokensDetails{CachedTokens: 3}}
	if r.Usage == nil || *r.Usage != wantUsage {
		t.Fatalf("usage %+v", r.Usage)
	}
	if len(r.Output) != 1 || r.Output[0].Type != "message" || r.Output[0].Role != "assistant" || r.Output[0].Status != "completed" ||
		!strings.HasPrefix(r.Output[0].ID, "msg_") || len(r.Output[0].Content) != 1 ||
		r.Output[0].Content[0].Type != "output_text" || r.Output[0].Content[0].Text != "the answer" {
		t.Fatalf("output %+v", r.Output)
	}
	// The wire shape has what the SDKs require, and no output_text (they compute it).
	_, raw := h.rest("GET", "/v1/responses/"+r.ID, "", "translator")
	for _, s := range []string{`"annotations":[]`, `"error":null`, `"incomplete_details":null`, `"previous_response_id":null`, `"parallel_tool_calls":true`} {
		if !strings.Contains(string(raw), s) {
			t.Errorf("stored response lacks %s: %s", s, raw)
		}
	}
	if strings.Contains(string(raw), `"output_text":`) {
		t.Errorf("output_text is the SDK's: %s", raw)
	}
}

// A response continues from the one previous_response_id names: its conversation,
// with the model's reply, comes before the new input; its instructions do not.
func TestResponsesPreviousResponse(t *testing.T) {
	h, c := startResponses(t, true)
	first := h.create(`{"instructions": "A", "input": "hi"}`, "alice")
	h.create(fmt.Sprintf(`{"instructions": "B", "input": "again", "previous_response_id": %q}`, first.ID), "alice")
	want := []api.Message{{Role: "system", Content: "B"}, {Role: "user", Content: "hi"},
		{Role: "assistant", Content: "the answer"}, {Role: "user", Content: "again"}}
	if diff := cmp.Diff(want, c.last().Messages); diff != "" {
		t.Fatalf("messages (-want +got):\n%s", diff)
	}

	// A tool round trip: the model calls a tool, the client answers it by call_id.
	c.script(scripted{res: llm.Result{FinishReason: "tool_calls", ToolCalls: []api.ToolCall{{ID: "call_w", Type: "function",
		Function: api.FunctionCall{Name: "get_weather", Arguments: `{"city":"Oslo"}`}}}}})
	tools := `"tools": [{"type": "function", "name": "get_weather", "parameters": {"type": "object"}}]`
	call := h.create(`{"input": "weather in Oslo?", "tool_choice": "required", `+tools+`}`, "alice")
	if len(call.Output) != 1 || call.Output[0].Type != "function_call" || call.Output[0].CallID != "call_w" ||
		call.Output[0].Name != "get_weather" || call.Output[0].Arguments != `{"city":"Oslo"}` || call.Output[0].Status != "completed" ||
		!strings.HasPrefix(call.Output[0].ID, "fc_") {
		t.Fatalf("output %+v", call.Output)
	}
	if string(c.last().ToolChoice) != `"required"` {
		t.Fatalf("tool_choice %s", c.last().ToolChoice)
	}
	h.create(fmt.Sprintf(`{"previous_response_id": %q, "input": [{"type": "function_call_output", "call_id": "call_w", "output": "-3C"}], %s}`, call.ID, tools), "alice")
	want = []api.Message{{Role: "user", Content: "weather in Oslo?"},
		{Role: "assistant", ToolCalls: []api.ToolCall{{ID: "call_w", Type: "function", Function: api.FunctionCall{Name: "get_weather", Arguments: `{"city":"Oslo"}`}}}},
		{Role: "tool", ToolCallID: "call_w", Content: "-3C"}}
	if diff := cmp.Diff(want, c.last().Messages); diff != "" {
		t.Fatalf("messages (-want +got):\n%s", diff)
	}

	// Another agent cannot continue alice's conversation, nor learn that it exists.
	code, b := h.rest("POST", "/v1/responses", fmt.Sprintf(`{"input": "x", "previous_response_id": %q}`, first.ID), "mallory")
	e := wantError(t, code, b, http.StatusNotFound, "previous_response_id")
	if e.Error.Code != "previous_response_not_found" {
		t.Fatalf("code %q", e.Error.Code)
	}
	code, b = h.rest("POST", "/v1/responses", `{"input": "x", "previous_response_id": "resp_nope"}`, "alice")
	wantError(t, code, b, http.StatusNotFound, "previous_response_id")
	// An output of a call the conversation never made is the caller's mistake.
	code, b = h.rest("POST", "/v1/responses", fmt.Sprintf(`{"previous_response_id": %q, "input": [{"type": "function_call_output", "call_id": "call_zz", "output": "1"}]}`, first.ID), "alice")
	wantError(t, code, b, http.StatusBadRequest, "input[0].call_id")
}

// Stored responses are read, listed and deleted by their agent only.
func TestResponsesStoredLifecycle(t *testing.T) {
	h, _ := startResponses(t, true)
	r := h.create(`{"input": [{"role": "user", "content": "one"}, {"role": "user", "content": "two"}, {"role": "user", "content": "three"}]}`, "alice")
	code, b := h.rest("GET", "/v1/responses/"+r.ID, "", "alice")
	var got api.Response
	if code != 200 || json.Unmarshal(b, &got) != nil || got.ID != r.ID || !cmp.Equal(got.Output, r.Output) {
		t.Fatalf("GET: %d %s", code, b)
	}
	code, b = h.rest("GET", "/v1/responses/"+r.ID, "", "mallory")
	wantError(t, code, b, http.StatusNotFound, "response_id")

	var list struct {
		Object string `json:"object"`
		Data   []struct {
			ID      string `json:"id"`
			Type    string `json:"type"`
			Role    string `json:"role"`
			Content []struct {
				Type string `json:"type"`
				Text string `json:"text"`
			} `json:"content"`
		} `json:"data"`
		FirstID string `json:"first_id"`
		LastID  string `json:"last_id"`
		HasMore bool   `json:"has_more"`
	}
	texts := func() []string {
		var out []string
		for _, d := range list.Data {
			out = append(out, d.Content[0].Text)
		}
		return out
	}
	code, b = h.rest("GET", "/v1/responses/"+r.ID+"/input_items?limit=2", "", "alice")
	if code != 200 || json.Unmarshal(b, &list) != nil || list.Object != "list" || !list.HasMore ||
		!cmp.Equal(texts(), []string{"three", "two"}) || list.FirstID != list.Data[0].ID || list.LastID != list.Data[1].ID {
		t.Fatalf("input_items: %d %s", code, b)
	}
	code, b = h.rest("GET", "/v1/responses/"+r.ID+"/input_items?order=asc&after="+list.Data[0].ID, "", "alice")
	if code != 200 || json.Unmarshal(b, &list) != nil || list.HasMore || !cmp.Equal(texts(), []string(nil)) {
		// after the newest item in ascending order nothing follows
		t.Fatalf("input_items after: %d %s", code, b)
	}
	code, b = h.rest("GET", "/v1/responses/"+r.ID+"/input_items?order=sideways", "", "alice")
	wantError(t, code, b, http.StatusBadRequest, "order")

	code, b = h.rest("DELETE", "/v1/responses/"+r.ID, "", "mallory")
	wantError(t, code, b, http.StatusNotFound, "response_id")
	code, b = h.rest("DELETE", "/v1/responses/"+r.ID, "", "alice")
	var del api.ResponseDeleted
	if code != 200 || json.Unmarshal(b, &del) != nil || !del.Deleted || del.ID != r.ID || del.Object != "response.deleted" {
		t.Fatalf("DELETE: %d %s", code, b)
	}
	code, b = h.rest("GET", "/v1/responses/"+r.ID, "", "alice")
	wantError(t, code, b, http.StatusNotFound, "response_id")

	// store: false keeps nothing.
	r = h.create(`{"input": "private", "store": false}`, "alice")
	if r.Store {
		t.Fatal("store: false answered store: true")
	}
	code, b = h.rest("GET", "/v1/responses/"+r.ID, "", "alice")
	wantError(t, code, b, http.StatusNotFound, "response_id")
}

// Without a store (the storage module off) a response is answered but not kept, and
// says so; what needs the store answers 501.
func TestResponsesWithoutStore(t *testing.T) {
	h, _ := startResponses(t, false)
	r := h.create(`{"input": "hi"}`, "alice")
	if r.Store {
		t.Fatal("a kernel without a store answered store: true")
	}
	code, b := h.rest("GET", "/v1/responses/"+r.ID, "", "alice")
	wantError(t, code, b, http.StatusNotImplemented, "response_id")
	code, b = h.rest("DELETE", "/v1/responses/"+r.ID, "", "alice")
	wantError(t, code, b, http.StatusNotImplemented, "response_id")
	code, b = h.rest("POST", "/v1/responses", `{"input": "x", "previous_response_id": "resp_1"}`, "alice")
	wantError(t, code, b, http.StatusNotImplemented, "previous_response_id")
}

// A response cut short by max_output_tokens is incomplete, and says why.
func TestResponsesIncomplete(t *testing.T) {
	h, c := startResponses(t, true)
	c.script(scripted{res: llm.Result{Text: "cut", FinishReason: "length"}})
	r := h.create(`{"input": "hi", "max_output_tokens": 1}`, "alice")
	if r.Status != "incomplete" || r.IncompleteDetails == nil || r.IncompleteDetails.Reason != "max_output_tokens" ||
		len(r.Output) != 1 || r.Output[0].Status != "incomplete" || c.last().MaxTokens != 1 {
		t.Fatalf("response %+v", r)
	}
}

// Every malformed request is a 400 in OpenAI's shape naming the parameter at fault.
func TestResponsesBadRequests(t *testing.T) {
	h, _ := startResponses(t, true)
	fn := `"tools": [{"type": "function", "name": "f"}]`
	for _, c := range []struct{ body, param string }{
		{`{"input": "x"`, ""},
		{`[]`, ""},
		{`{"input": 5}`, "input"},
		{`{}`, "input"},
		{`{"input": [{"type": "message", "role": "user"}]}`, "input[0].content"},
		{`{"input": [{"type": "message", "role": "robot", "content": "x"}]}`, "input[0].role"},
		{`{"input": [{"content": "x"}]}`, "input[0].type"},
		{`{"input": ["x"]}`, "input[0]"},
		{`{"input": [{"type": "function_call", "call_id": 7, "name": "f"}]}`, "input[0].call_id"},
		{`{"input": [{"type": "function_call", "name": "f"}]}`, "input[0].call_id"},
		{`{"input": [{"type": "function_call", "call_id": "c"}]}`, "input[0].name"},
		{`{"input": [{"type": "function_call_output", "call_id": "c", "output": "1"}]}`, "input[0].call_id"},
		{`{"input": [{"type": "function_call", "call_id": "c", "name": "f"}, {"type": "function_call_output", "call_id": "c"}]}`, "input[1].output"},
		{`{"input": [{"type": "web_search_call", "id": "ws_1"}]}`, "input[0].type"},
		{`{"input": [{"type": "item_reference", "id": "msg_1"}]}`, "input[0].type"},
		{`{"input": [{"type": "reasoning", "summary": []}]}`, "input[0].type"},
		{`{"input": [{"role": "user", "content": [{"type": "input_image", "image_url": "http://x"}]}]}`, "input[0].content[0].type"},
		{`{"input": [{"role": "user", "content": [{"type": "input_text", "text": 3}]}]}`, "input[0].content[0].text"},
		{`{"input": [{"role": "user", "content": {"text": "x"}}]}`, "input[0].content"},
		{`{"input": "x", "tools": [{"type": "web_search"}]}`, "tools[0].type"},
		{`{"input": "x", "tools": [{"type": "function"}]}`, "tools[0].name"},
		{`{"input": "x", "tools": [{"type": "function", "name": "f"}, {"type": "function", "name": "f"}]}`, "tools[1].name"},
		{`{"input": "x", "tools": [{"type": "function", "name": "f", "parameters": [1]}]}`, "tools[0].parameters"},
		{`{"input": "x", "tool_choice": "sometimes"}`, "tool_choice"},
		{`{"input": "x", "tool_choice": {"type": "function", "name": "g"}, ` + fn + `}`, "tool_choice.name"},
		{`{"input": "x", "tool_choice": {"type": "file_search"}}`, "tool_choice.type"},
		{`{"input": "x", "tool_choice": {"type": "allowed_tools", "mode": "maybe", "tools": []}}`, "tool_choice.mode"},
		{`{"input": "x", "text": {"format": {"type": "json_schema", "schema": {}}}}`, "text.format.name"},
		{`{"input": "x", "text": {"format": {"type": "json_schema", "name": "n"}}}`, "text.format.schema"},
		{`{"input": "x", "text": {"format": {"type": "yaml"}}}`, "text.format.type"},
		{`{"input": "x", "max_output_tokens": 0}`, "max_output_tokens"},
		{`{"input": "x", "background": true}`, "background"},
		{`{"input": "x", "conversation": "conv_1"}`, "conversation"},
		{`{"input": "x", "prompt": {"id": "pmpt_1"}}`, "prompt"},
		{`{"input": "x", "metadata": {"k": 1}}`, "metadata"},
		{`{"input": "x", "max_output_tokens": "many"}`, "max_output_tokens"},
		{`{"input": "x", "tools": [{"type": "function", "name": ["f"]}]}`, "tools.name"},
	} {
		code, b := h.rest("POST", "/v1/responses", c.body, "alice")
		t.Run(c.body, func(t *testing.T) { wantError(t, code, b, http.StatusBadRequest, c.param) })
	}
}

// respEvent is one event of a stream: its event line, and its data decoded.
type respEvent struct {
	name string
	data map[string]any
	raw  string
}

// stream posts a streaming request and reads every event, checking what holds for
// all: the event line names the data's type, and sequence numbers count from 0.
func (h *harness) respStream(body, agent string) (int, []respEvent, []byte) {
	h.t.Helper()
	req, _ := http.NewRequest("POST", h.url+"/v1/responses", strings.NewReader(body))
	req.Header.Set(api.HeaderAgent, agent)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	if !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, nil, b
	}
	var evs []respEvent
	var cur respEvent
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "event: "):
			cur.name = strings.TrimPrefix(line, "event: ")
		case strings.HasPrefix(line, "data: "):
			cur.raw = strings.TrimPrefix(line, "data: ")
			if err := json.Unmarshal([]byte(cur.raw), &cur.data); err != nil {
				h.t.Fatalf("event data %q: %v", cur.raw, err)
			}
		case line == "":
			if cur.raw == "" {
				continue
			}
			if cur.name != cur.data["type"] {
				h.t.Fatalf("event line %q, data type %v", cur.name, cur.data["type"])
			}
			if n := cur.data["sequence_number"]; n != float64(len(evs)) {
				h.t.Fatalf("event %d (%s) has sequence_number %v", len(evs), cur.name, n)
			}
			evs = append(evs, cur)
			cur = respEvent{}
		}
	}
	return resp.StatusCode, evs, nil
}

func respNames(evs []respEvent) []string {
	out := make([]string, len(evs))
	for i, e := range evs {
		out[i] = e.name
	}
	return out
}

func TestResponsesStreamText(t *testing.T) {
	h, c := startResponses(t, true)
	c.script(scripted{res: llm.Result{Text: "Hello there world", FinishReason: "stop"}})
	code, evs, b := h.respStream(`{"input": "hi", "stream": true}`, "alice")
	if code != 200 {
		t.Fatalf("%d %s", code, b)
	}
	want := []string{"response.created", "response.in_progress", "response.output_item.added", "response.content_part.added",
		"response.output_text.delta", "response.output_text.delta", "response.output_text.delta",
		"response.output_text.done", "response.content_part.done", "response.output_item.done", "response.completed"}
	if diff := cmp.Diff(want, respNames(evs)); diff != "" {
		t.Fatalf("events (-want +got):\n%s", diff)
	}
	var text strings.Builder
	for _, e := range evs {
		if e.name == "response.output_text.delta" {
			text.WriteString(e.data["delta"].(string))
		}
	}
	var done api.ResponseTextEvent
	json.Unmarshal([]byte(evs[7].raw), &done)
	var added, itemDone api.ResponseOutputItemEvent
	json.Unmarshal([]byte(evs[2].raw), &added)
	json.Unmarshal([]byte(evs[9].raw), &itemDone)
	var created, completed api.ResponseLifecycleEvent
	json.Unmarshal([]byte(evs[0].raw), &created)
	json.Unmarshal([]byte(evs[10].raw), &completed)
	final := completed.Response
	if text.String() != "Hello there world" || *done.Text != text.String() || added.Item.Status != "in_progress" ||
		itemDone.Item.Status != "completed" || itemDone.Item.ID != added.Item.ID ||
		created.Response.Status != "in_progress" || len(created.Response.Output) != 0 || created.Response.ID != final.ID ||
		final.Status != "completed" || len(final.Output) != 1 || final.Output[0].ID != added.Item.ID ||
		final.Output[0].Content[0].Text != text.String() || final.Usage == nil || final.Usage.OutputTokens != 7 {
		t.Fatalf("stream:\n%v", evs)
	}
	// What the stream completed with is what was stored.
	code, b = h.rest("GET", "/v1/responses/"+final.ID, "", "alice")
	var stored api.Response
	if code != 200 || json.Unmarshal(b, &stored) != nil || !cmp.Equal(stored.Output, final.Output) {
		t.Fatalf("stored %d %s", code, b)
	}
}

func TestResponsesStreamToolCall(t *testing.T) {
	h, c := startResponses(t, true)
	c.script(scripted{res: llm.Result{Text: "Let me look. ", FinishReason: "tool_calls", ToolCalls: []api.ToolCall{{ID: "call_w", Type: "function",
		Function: api.FunctionCall{Name: "get_weather", Arguments: `{"city":"Oslo"}`}}}}})
	code, evs, b := h.respStream(`{"input": "weather?", "stream": true, "tool_choice": "required", "tools": [{"type": "function", "name": "get_weather"}]}`, "alice")
	if code != 200 {
		t.Fatalf("%d %s", code, b)
	}
	want := []string{"response.created", "response.in_progress", "response.output_item.added", "response.content_part.added",
		"response.output_text.delta", "response.output_text.delta", "response.output_text.delta",
		"response.output_text.done", "response.content_part.done", "response.output_item.done",
		"response.output_item.added", "response.function_call_arguments.delta", "response.function_call_arguments.delta",
		"response.function_call_arguments.done", "response.output_item.done", "response.completed"}
	if diff := cmp.Diff(want, respNames(evs)); diff != "" {
		t.Fatalf("events (-want +got):\n%s", diff)
	}
	var args api.ResponseArgumentsEvent
	json.Unmarshal([]byte(evs[13].raw), &args)
	var completed api.ResponseLifecycleEvent
	json.Unmarshal([]byte(evs[15].raw), &completed)
	out := completed.Response.Output
	if *args.Arguments != `{"city":"Oslo"}` || len(out) != 2 || out[1].Type != "function_call" || out[1].CallID != "call_w" ||
		out[1].Arguments != `{"city":"Oslo"}` || args.ItemID != out[1].ID || args.OutputIndex != 1 {
		t.Fatalf("stream:\n%v", evs)
	}
	// The stored conversation holds the call under its call_id, so its output answers it.
	h.create(fmt.Sprintf(`{"previous_response_id": %q, "input": [{"type": "function_call_output", "call_id": "call_w", "output": "-3C"}]}`, completed.Response.ID), "alice")
	msgs := c.last().Messages
	if len(msgs) != 3 || msgs[1].Content != "Let me look. " || len(msgs[1].ToolCalls) != 1 || msgs[1].ToolCalls[0].ID != "call_w" {
		t.Fatalf("continued with %+v", msgs)
	}
}

// A failure after the stream began ends it with response.failed and an error event,
// which the SDKs raise; one before it is an HTTP error in OpenAI's shape.
func TestResponsesStreamFailure(t *testing.T) {
	h, c := startResponses(t, true)
	c.script(scripted{res: llm.Result{Text: "one two three"}, failAt: 2, failErr: api.Errorf(api.BackendUnavailable, "the engine went away")})
	code, evs, b := h.respStream(`{"input": "hi", "stream": true}`, "alice")
	if code != 200 || len(evs) < 2 {
		t.Fatalf("%d %s", code, b)
	}
	failed, errEv := evs[len(evs)-2], evs[len(evs)-1]
	resp, _ := failed.data["response"].(map[string]any)
	if failed.name != "response.failed" || resp["status"] != "failed" || errEv.name != "error" ||
		!strings.Contains(errEv.data["message"].(string), "the engine went away") || errEv.data["code"] != string(api.BackendUnavailable) {
		t.Fatalf("stream:\n%v", evs)
	}
	c.script(scripted{failAt: 1, failErr: api.Errorf(api.BackendRejected, "the engine refused it")})
	code, evs, b = h.respStream(`{"input": "hi", "stream": true}`, "alice")
	if evs != nil {
		t.Fatalf("a stream began: %v", evs)
	}
	e := wantError(t, code, b, http.StatusBadRequest, "")
	if !strings.Contains(e.Error.Message, "the engine refused it") {
		t.Fatalf("%s", b)
	}
}

// The kernel's own tools (X-AIOS-Tools) run inside the request, as on chat
// completions; only the final answer is output, streamed or not.
func TestResponsesKernelTools(t *testing.T) {
	h := startSystem(t, nil)
	body := `{"model": "sim-test", "input": "time?", "tool_choice": {"type": "function", "name": "current_time"}%s}`
	req, _ := http.NewRequest("POST", h.url+"/v1/responses", strings.NewReader(fmt.Sprintf(body, "")))
	req.Header.Set(api.HeaderAgent, "a")
	req.Header.Set(api.HeaderTools, "current_*")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var r api.Response
	err = json.NewDecoder(resp.Body).Decode(&r)
	resp.Body.Close()
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("%d %v", resp.StatusCode, err)
	}
	if ran := resp.Header.Get(api.HeaderToolsRan); ran != "current_time" {
		t.Fatalf("tools ran: %q", ran)
	}
	if len(r.Output) != 1 || r.Output[0].Type != "message" || r.Output[0].Content[0].Text == "" {
		t.Fatalf("output %+v", r.Output)
	}

	req, _ = http.NewRequest("POST", h.url+"/v1/responses", strings.NewReader(fmt.Sprintf(body, `, "stream": true`)))
	req.Header.Set(api.HeaderAgent, "a")
	req.Header.Set(api.HeaderTools, "current_*")
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(b), "event: response.completed") || strings.Contains(string(b), `"function_call"`) {
		t.Fatalf("stream:\n%s", b)
	}

	// Without the header, a tool_choice naming a kernel tool names no tool at all.
	code, b := h.rest("POST", "/v1/responses", fmt.Sprintf(body, ""), "a")
	wantError(t, code, b, http.StatusBadRequest, "tool_choice.name")
}

// The kernel as aios serve builds it, on the simulated engine: the simulated model
// calls a tool when told to, and the answer to it continues the stored conversation.
func TestResponsesOnSimulatedCore(t *testing.T) {
	h := startSystem(t, nil)
	tools := `"tools": [{"type": "function", "name": "get_weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}]`
	call := h.create(`{"model": "sim-test", "input": "weather in Oslo?", "tool_choice": "required", `+tools+`}`, "sim-agent")
	if len(call.Output) != 1 || call.Output[0].Type != "function_call" || call.Output[0].CallID == "" || !json.Valid([]byte(call.Output[0].Arguments)) {
		t.Fatalf("output %+v", call.Output)
	}
	r := h.create(fmt.Sprintf(`{"model": "sim-test", "previous_response_id": %q, "input": [{"type": "function_call_output", "call_id": %q, "output": "-3C"}], %s}`,
		call.ID, call.Output[0].CallID, tools), "sim-agent")
	if r.Status != "completed" || len(r.Output) != 1 || r.Output[0].Content[0].Text == "" || *r.PreviousResponseID != call.ID {
		t.Fatalf("response %+v", r)
	}
	if r.Usage.InputTokens <= call.Usage.InputTokens {
		t.Fatalf("the continued prompt (%d tokens) is not longer than the first (%d)", r.Usage.InputTokens, call.Usage.InputTokens)
	}
	js := h.create(`{"model": "sim-test", "input": "a city", "text": {"format": {"type": "json_schema", "name": "city", "schema": {"type": "object"}}}}`, "sim-agent")
	if !json.Valid([]byte(js.Output[0].Content[0].Text)) {
		t.Fatalf("json_schema output %q", js.Output[0].Content[0].Text)
	}
	code, evs, b := h.respStream(`{"model": "sim-test", "input": "hello", "stream": true}`, "sim-agent")
	if code != 200 || len(evs) < 4 || evs[len(evs)-1].name != "response.completed" {
		t.Fatalf("%d %s %v", code, b, respNames(evs))
	}
}
