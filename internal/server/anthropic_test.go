package server

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/aios-go/aios/api"
	"github.com/aios-go/aios/internal/kernel"
	"github.com/aios-go/aios/internal/llm"
)

// anthropicHeaders are what @anthropic-ai/sdk sends beside the body.
var anthropicHeaders = []string{"x-api-key", "sk-ant-unused", "anthropic-version", "2023-06-01"}

const weatherTool = `{"name":"get_weather","description":"Current weather for a city","input_schema":{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]}}`

func decodeMessage(t *testing.T, b []byte) api.MessagesResponse {
	t.Helper()
	var m api.MessagesResponse
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("%v: %s", err, b)
	}
	if !strings.HasPrefix(m.ID, "msg_") || m.Type != "message" || m.Role != "assistant" || m.StopReason == nil {
		t.Fatalf("not an Anthropic message: %s", b)
	}
	return m
}

func TestAnthropicMessagesText(t *testing.T) {
	h := startSystem(t, nil)
	code, b, _ := h.post("/v1/messages", `{"model":"sim-test","max_tokens":12,
		"system":[{"type":"text","text":"You are terse."},{"type":"text","text":"Answer in English."}],
		"messages":[{"role":"user","content":[{"type":"text","text":"Say hello."}]}],
		"metadata":{"user_id":"claude-agent"},"temperature":0.2}`, anthropicHeaders...)
	if code != http.StatusOK {
		t.Fatalf("HTTP %d: %s", code, b)
	}
	m := decodeMessage(t, b)
	if m.Model != "sim-test" || len(m.Content) != 1 || m.Content[0].Type != "text" || m.Content[0].Text == nil || *m.Content[0].Text == "" {
		t.Fatalf("content: %s", b)
	}
	if r := *m.StopReason; r != api.StopEndTurn && r != api.StopMaxTokens {
		t.Fatalf("stop_reason %q", r)
	}
	if m.StopSequence != nil || m.Usage.InputTokens <= 0 || m.Usage.OutputTokens <= 0 || m.Usage.OutputTokens > 12 {
		t.Fatalf("usage or stop_sequence: %s", b)
	}
	// Without X-AIOS-Agent, metadata.user_id names the agent the call is charged to.
	if n := h.srv.k.UsageOf("claude-agent").Calls; n != 1 {
		t.Fatalf("calls of claude-agent: %d", n)
	}
	// X-AIOS-Agent wins, and a Bearer key is accepted as well as x-api-key.
	code, b, _ = h.post("/v1/messages", `{"model":"sim-test","max_tokens":3,"messages":[{"role":"user","content":"hi"}],"metadata":{"user_id":"ignored"}}`,
		"Authorization", "Bearer unused", api.HeaderAgent, "named-agent", api.HeaderSession, "s1")
	if code != http.StatusOK || h.srv.k.UsageOf("named-agent").Calls != 1 || h.srv.k.UsageOf("ignored").Calls != 0 {
		t.Fatalf("HTTP %d %s; usage %+v", code, b, h.srv.k.UsageOf("named-agent"))
	}
	code, b, _ = h.post("/v1/messages", `{"model":"sim-test","max_tokens":3,"messages":[{"role":"user","content":"hi"}]}`)
	if code != http.StatusOK || h.srv.k.UsageOf("anonymous").Calls != 1 {
		t.Fatalf("HTTP %d %s", code, b)
	}
}

// A tool round trip as Claude's agents make it: a forced tool call, then its result
// sent back as a tool_result block, then the answer in text.
func TestAnthropicMessagesToolUse(t *testing.T) {
	h := startSystem(t, nil)
	user := `{"role":"user","content":"What is the weather in Paris?"}`
	code, b, _ := h.post("/v1/messages", `{"model":"sim-test","max_tokens":64,"tools":[`+weatherTool+`],
		"tool_choice":{"type":"tool","name":"get_weather"},"messages":[`+user+`]}`, anthropicHeaders...)
	if code != http.StatusOK {
		t.Fatalf("HTTP %d: %s", code, b)
	}
	m := decodeMessage(t, b)
	if *m.StopReason != api.StopToolUse {
		t.Fatalf("stop_reason %q: %s", *m.StopReason, b)
	}
	var use *api.ResponseBlock
	for i := range m.Content {
		if m.Content[i].Type == "tool_use" {
			use = &m.Content[i]
		}
	}
	if use == nil || use.ID == "" || use.Name != "get_weather" || !isJSONObject(use.Input) {
		t.Fatalf("no tool_use block: %s", b)
	}
	assistant, _ := json.Marshal(map[string]any{"role": "assistant", "content": m.Content})
	result := `{"role":"user","content":[{"type":"tool_result","tool_use_id":"` + use.ID + `","content":[{"type":"text","text":"18C and sunny"}]}]}`
	code, b, _ = h.post("/v1/messages", `{"model":"sim-test","max_tokens":16,"tools":[`+weatherTool+`],
		"messages":[`+user+`,`+string(assistant)+`,`+result+`]}`, anthropicHeaders...)
	if code != http.StatusOK {
		t.Fatalf("HTTP %d: %s", code, b)
	}
	m = decodeMessage(t, b)
	if *m.StopReason == api.StopToolUse || m.Content[0].Type != "text" || *m.Content[0].Text == "" {
		t.Fatalf("after the tool result, want text: %s", b)
	}
	// tool_choice any asks for some tool.
	code, b, _ = h.post("/v1/messages", `{"model":"sim-test","max_tokens":64,"tools":[`+weatherTool+`],
		"tool_choice":{"type":"any"},"messages":[`+user+`]}`)
	if m := decodeMessage(t, b); code != http.StatusOK || *m.StopReason != api.StopToolUse {
		t.Fatalf("any: HTTP %d %s", code, b)
	}
}

// The translation onto the kernel's call shape.
func TestAnthropicMessagesTranslation(t *testing.T) {
	var req api.MessagesRequest
	body := `{"model":"m","max_tokens":5,"system":"Be brief.","stop_sequences":["END"],
		"messages":[
			{"role":"user","content":"Weather?"},
			{"role":"assistant","content":[{"type":"thinking","thinking":"hm"},{"type":"text","text":"Let me look."},
				{"type":"tool_use","id":"toolu_1","name":"get_weather","input":{"city": "Paris"}}]},
			{"role":"user","content":[{"type":"tool_result","tool_use_id":"toolu_1","content":"18C"},
				{"type":"tool_result","tool_use_id":"toolu_2","is_error":true},{"type":"text","text":"And tomorrow?"}]}],
		"tools":[` + weatherTool + `,{"type":"custom","name":"noop"}],
		"tool_choice":{"type":"tool","name":"noop"},
		"output_config":{"format":{"type":"json_schema","schema":{"type":"object"}}}}`
	if err := decodeJSON([]byte(body), &req, "request body"); err != nil {
		t.Fatal(err)
	}
	got, err := messagesToLLM(&req, "default")
	if err != nil {
		t.Fatal(err)
	}
	want := []api.Message{
		{Role: "system", Content: "Be brief."},
		{Role: "user", Content: "Weather?"},
		{Role: "assistant", Content: "Let me look.", ToolCalls: []api.ToolCall{{ID: "toolu_1", Type: "function",
			Function: api.FunctionCall{Name: "get_weather", Arguments: `{"city":"Paris"}`}}}},
		{Role: "tool", ToolCallID: "toolu_1", Content: "18C"},
		{Role: "tool", ToolCallID: "toolu_2", Content: "Error: "},
		{Role: "user", Content: "And tomorrow?"},
	}
	gb, _ := json.Marshal(got.Messages)
	wb, _ := json.Marshal(want)
	if string(gb) != string(wb) {
		t.Fatalf("messages\n got %s\nwant %s", gb, wb)
	}
	if got.Model != "m" || got.MaxTokens != 5 || len(got.Tools) != 2 || got.Tools[1].Function.Name != "noop" ||
		string(got.Tools[1].Function.Parameters) != `{"type":"object","properties":{}}` {
		t.Fatalf("request %+v", got)
	}
	if string(got.ToolChoice) != `{"function":{"name":"noop"},"type":"function"}` {
		t.Fatalf("tool_choice %s", got.ToolChoice)
	}
	if got.ResponseFormat == nil || got.ResponseFormat.Type != "json_schema" || !strings.Contains(string(got.ResponseFormat.JSONSchema), `"schema":{"type":"object"}`) {
		t.Fatalf("response format %+v", got.ResponseFormat)
	}
	for choice, want := range map[string]string{`{"type":"auto"}`: `"auto"`, `{"type":"any"}`: `"required"`, `{"type":"none"}`: `"none"`} {
		req := api.MessagesRequest{}
		_ = json.Unmarshal([]byte(`{"max_tokens":1,"messages":[{"role":"user","content":"x"}],"tools":[`+weatherTool+`],"tool_choice":`+choice+`}`), &req)
		got, err := messagesToLLM(&req, "default")
		if err != nil || string(got.ToolChoice) != want || got.Model != "default" {
			t.Errorf("%s: %s %v", choice, got.ToolChoice, err)
		}
	}
}

// Every malformed request is a 400 in Anthropic's shape that names what is wrong.
func TestAnthropicMessagesBadRequests(t *testing.T) {
	h := start(t, Options{})
	msg := `"messages":[{"role":"user","content":"hi"}]`
	for _, c := range []struct{ body, want string }{
		{`{"model":"sim-test",` + msg + `}`, "max_tokens: field required"},
		{`{"model":"sim-test","max_tokens":0,` + msg + `}`, "max_tokens: must be at least 1"},
		{`{"model":"sim-test","max_tokens":"ten",` + msg + `}`, `"max_tokens" must be a number`},
		{`{"model":"sim-test","max_tokens":5}`, "messages: at least one message"},
		{`{"max_tokens":5,"messages":[{"role":"user","content":[{"type":"image","source":{"type":"base64","media_type":"image/png","data":"AA=="}}]}]}`, "image input is not supported"},
		{`{"max_tokens":5,"messages":[{"role":"user","content":[{"type":"tool_result","tool_use_id":"t","content":[{"type":"image"}]}]}]}`, "image input is not supported"},
		{`{"max_tokens":5,"messages":[{"role":"user","content":[{"type":"server_tool_use"}]}]}`, `"server_tool_use" is not supported in a user message`},
		{`{"max_tokens":5,"messages":[{"role":"tool","content":"x"}]}`, "messages[0].role: must be user or assistant"},
		{`{"max_tokens":5,"messages":[{"role":"user"}]}`, "messages[0].content: field required"},
		{`{"max_tokens":5,"messages":[{"role":"user","content":7}]}`, "content must be a string or an array"},
		{`{"max_tokens":5,"messages":[{"role":"assistant","content":[{"type":"tool_use","id":"a","name":"f","input":[1]}]}]}`, "input: must be a JSON object"},
		{`{"max_tokens":5,"messages":[{"role":"user","content":[{"type":"tool_result"}]}]}`, "tool_use_id: field required"},
		{`{"max_tokens":5,` + msg + `,"tools":[{"type":"web_search_20250305","name":"web_search"}]}`, `tool type "web_search_20250305" is not supported`},
		{`{"max_tokens":5,` + msg + `,"tools":[{"description":"x"}]}`, "tools[0].name: field required"},
		{`{"max_tokens":5,` + msg + `,"tools":[` + weatherTool + `,` + weatherTool + `]}`, "used twice"},
		{`{"max_tokens":5,` + msg + `,"tool_choice":{"type":"any"}}`, `type "any" needs tools`},
		{`{"max_tokens":5,` + msg + `,"tools":[` + weatherTool + `],"tool_choice":{"type":"tool","name":"other"}}`, `"other" is not among the request's tools`},
		{`{"max_tokens":5,` + msg + `,"tool_choice":{"type":"sometimes"}}`, "tool_choice.type: must be auto, any, tool or none"},
		{`{"max_tokens":5,` + msg + `,"stop_sequences":[""]}`, "stop_sequences[0]: must not be empty"},
		{`{"max_tokens":5,` + msg + `,"output_config":{"format":{"type":"regex"}}}`, "output_config.format.type"},
		{`{"max_tokens":5,` + msg + `,"system":[{"type":"image"}]}`, "system[0]: image input is not supported"},
		{`{"max_tokens":5,`, "not valid JSON"},
	} {
		code, b, _ := h.post("/v1/messages", c.body, anthropicHeaders...)
		var e api.AnthropicError
		if err := json.Unmarshal(b, &e); err != nil || code != http.StatusBadRequest || e.Type != "error" ||
			e.Error.Type != "invalid_request_error" || !strings.Contains(e.Error.Message, c.want) {
			t.Errorf("%s:\nHTTP %d %s\nwant a 400 invalid_request_error saying %q", c.body, code, b, c.want)
		}
	}
	code, b, _ := h.post("/v1/messages", `{"model":"claude-nonesuch","max_tokens":5,`+msg+`}`)
	if code != http.StatusNotFound || !strings.Contains(string(b), `"type":"not_found_error"`) || !strings.Contains(string(b), "claude-nonesuch") {
		t.Fatalf("unknown model: HTTP %d %s", code, b)
	}
	code, b, _ = h.post("/v1/messages", `{"model":"claude-nonesuch","max_tokens":5,"stream":true,`+msg+`}`)
	if code != http.StatusNotFound || !strings.Contains(string(b), `"type":"not_found_error"`) {
		t.Fatalf("unknown model, streaming: HTTP %d %s", code, b)
	}
}

// Every kind maps to an Anthropic error type that its HTTP status agrees with, so the
// SDK raises the matching error class.
func TestAnthropicErrorTypes(t *testing.T) {
	statuses := map[string][]int{
		"invalid_request_error": {400, 499}, "not_found_error": {404}, "request_too_large": {413},
		"authentication_error": {401}, "permission_error": {403}, "rate_limit_error": {429},
		"timeout_error": {504}, "overloaded_error": {503}, "api_error": {500, 501, 502},
	}
	for _, k := range api.Kinds() {
		typ := anthropicErrorType(k)
		ok := false
		for _, s := range statuses[typ] {
			ok = ok || s == k.HTTPStatus()
		}
		if !ok {
			t.Errorf("kind %s: type %s with HTTP %d", k, typ, k.HTTPStatus())
		}
	}
}

// sseEvent is one event of a stream: its name and data.
type sseEvent struct {
	name string
	data json.RawMessage
}

func readNamedSSE(t testing.TB, r io.Reader) []sseEvent {
	t.Helper()
	var out []sseEvent
	var name string
	sc := bufio.NewScanner(r)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if n, ok := strings.CutPrefix(line, "event: "); ok {
			name = n
		} else if d, ok := strings.CutPrefix(line, "data: "); ok {
			if !json.Valid([]byte(d)) {
				t.Fatalf("event %s: data is not JSON: %s", name, d)
			}
			out = append(out, sseEvent{name, json.RawMessage(d)})
			name = ""
		}
	}
	return out
}

func (h *harness) stream(path, body string, headers ...string) []sseEvent {
	h.t.Helper()
	code, b, hdr := h.post(path, body, headers...)
	if code != 200 || hdr.Get("Content-Type") != "text/event-stream" {
		h.t.Fatalf("HTTP %d %s: %s", code, hdr.Get("Content-Type"), b)
	}
	return readNamedSSE(h.t, bytes.NewReader(b))
}

// streamed replays a Messages stream as the SDK's MessageStream accumulates it, checking
// that every event's name matches its type and that blocks open and close in order.
func streamed(t *testing.T, events []sseEvent) (api.MessagesResponse, []string) {
	t.Helper()
	var names []string
	var msg api.MessagesResponse
	inputs := map[int]*strings.Builder{}
	open := -1
	for _, e := range events {
		names = append(names, e.name)
		var head struct {
			Type  string `json:"type"`
			Index int    `json:"index"`
		}
		_ = json.Unmarshal(e.data, &head)
		if head.Type != e.name {
			t.Fatalf("event %q carries type %q", e.name, head.Type)
		}
		switch e.name {
		case "message_start":
			var ev api.MessageStartEvent
			_ = json.Unmarshal(e.data, &ev)
			msg = ev.Message
			if msg.Content == nil || len(msg.Content) != 0 || msg.StopReason != nil {
				t.Fatalf("message_start: %s", e.data)
			}
		case "content_block_start":
			var ev api.ContentBlockStartEvent
			_ = json.Unmarshal(e.data, &ev)
			if open != -1 || ev.Index != len(msg.Content) {
				t.Fatalf("block %d starts while %d is open: %s", ev.Index, open, e.data)
			}
			open = ev.Index
			msg.Content = append(msg.Content, ev.ContentBlock)
			inputs[ev.Index] = &strings.Builder{}
		case "content_block_delta":
			var ev api.ContentBlockDeltaEvent
			_ = json.Unmarshal(e.data, &ev)
			if ev.Index != open {
				t.Fatalf("delta for block %d while %d is open", ev.Index, open)
			}
			b := &msg.Content[ev.Index]
			switch ev.Delta.Type {
			case "text_delta":
				s := *b.Text + *ev.Delta.Text
				b.Text = &s
			case "input_json_delta":
				inputs[ev.Index].WriteString(*ev.Delta.PartialJSON)
			default:
				t.Fatalf("delta type %q", ev.Delta.Type)
			}
		case "content_block_stop":
			var ev api.ContentBlockStopEvent
			_ = json.Unmarshal(e.data, &ev)
			if ev.Index != open {
				t.Fatalf("stop of block %d while %d is open", ev.Index, open)
			}
			open = -1
			if in := inputs[ev.Index].String(); in != "" {
				msg.Content[ev.Index].Input = json.RawMessage(in)
			}
		case "message_delta":
			var ev api.MessageDeltaEvent
			_ = json.Unmarshal(e.data, &ev)
			msg.StopReason, msg.StopSequence = ev.Delta.StopReason, ev.Delta.StopSequence
			msg.Usage.OutputTokens = ev.Usage.OutputTokens
			if ev.Usage.InputTokens != nil {
				msg.Usage.InputTokens = *ev.Usage.InputTokens
			}
		}
	}
	return msg, names
}

func TestAnthropicMessagesStream(t *testing.T) {
	h := startSystem(t, nil)
	events := h.stream("/v1/messages", `{"model":"sim-test","max_tokens":9,"stream":true,"system":"Be brief.",
		"messages":[{"role":"user","content":"hello"}]}`, anthropicHeaders...)
	msg, names := streamed(t, events)
	n := len(names)
	if n < 7 || names[0] != "message_start" || names[1] != "ping" || names[2] != "content_block_start" ||
		names[n-3] != "content_block_stop" || names[n-2] != "message_delta" || names[n-1] != "message_stop" {
		t.Fatalf("event order: %v", names)
	}
	if len(msg.Content) != 1 || msg.Content[0].Type != "text" || *msg.Content[0].Text == "" ||
		msg.StopReason == nil || msg.Usage.OutputTokens <= 0 || msg.Usage.InputTokens <= 0 {
		t.Fatalf("accumulated message: %+v", msg)
	}
	if r := *msg.StopReason; r != api.StopEndTurn && r != api.StopMaxTokens {
		t.Fatalf("stop_reason %q", r)
	}

	// A forced tool call streams as a tool_use block whose input comes in
	// input_json_delta pieces.
	events = h.stream("/v1/messages", `{"model":"sim-test","max_tokens":64,"stream":true,"tools":[`+weatherTool+`],
		"tool_choice":{"type":"tool","name":"get_weather"},"messages":[{"role":"user","content":"Weather in Oslo?"}]}`)
	msg, names = streamed(t, events)
	last := msg.Content[len(msg.Content)-1]
	if *msg.StopReason != api.StopToolUse || last.Type != "tool_use" || last.Name != "get_weather" || last.ID == "" || !isJSONObject(last.Input) {
		t.Fatalf("tool use stream: %v\n%+v", names, msg)
	}
}

// A backend failure after the stream started ends it with an error event, which the
// SDK raises, instead of message_stop.
func TestAnthropicMessagesStreamFailure(t *testing.T) {
	core := &funcCore{gen: func(ctx context.Context, req *llm.Request, emit func(llm.Delta)) (*llm.Result, error) {
		emit(llm.Delta{Text: "partial "})
		return nil, api.Errorf(api.BackendRejected, "the backend refused the rest")
	}}
	h := start(t, Options{}, kernel.CoreConfig{Model: "m", Backend: "test", Core: core})
	events := h.stream("/v1/messages", `{"model":"m","max_tokens":5,"stream":true,"messages":[{"role":"user","content":"hi"}]}`)
	last := events[len(events)-1]
	var e api.AnthropicError
	if err := json.Unmarshal(last.data, &e); err != nil || last.name != "error" || e.Type != "error" ||
		e.Error.Type != "invalid_request_error" || !strings.Contains(e.Error.Message, "refused the rest") {
		t.Fatalf("want an error event last: %+v", events)
	}
}

// Stop sequences end the answer before them, streamed or not, and say which one did.
func TestAnthropicMessagesStopSequences(t *testing.T) {
	core := &funcCore{gen: func(ctx context.Context, req *llm.Request, emit func(llm.Delta)) (*llm.Result, error) {
		toks := []string{"Hello", " wor", "ld", " ST", "OP", " more"}
		for _, tok := range toks {
			emit(llm.Delta{Text: tok})
		}
		return &llm.Result{Text: strings.Join(toks, ""), FinishReason: "stop",
			Usage: api.Usage{PromptTokens: 7, CompletionTokens: 6, TotalTokens: 13, PromptTokensDetails: &api.PromptTokensDetails{CachedTokens: 4}}}, nil
	}}
	h := start(t, Options{}, kernel.CoreConfig{Model: "m", Backend: "test", Core: core})
	body := `{"model":"m","max_tokens":20,"stop_sequences":["zzz"," STOP"],"messages":[{"role":"user","content":"hi"}]`
	code, b, _ := h.post("/v1/messages", body+`}`)
	m := decodeMessage(t, b)
	if code != 200 || *m.Content[0].Text != "Hello world" || *m.StopReason != api.StopSequence || m.StopSequence == nil || *m.StopSequence != " STOP" {
		t.Fatalf("HTTP %d %s", code, b)
	}
	if m.Usage != (api.AnthropicUsage{InputTokens: 3, CacheReadInputTokens: 4, OutputTokens: 6}) {
		t.Fatalf("usage %+v", m.Usage)
	}
	msg, _ := streamed(t, h.stream("/v1/messages", body+`,"stream":true}`))
	if *msg.Content[0].Text != "Hello world" || *msg.StopReason != api.StopSequence || *msg.StopSequence != " STOP" {
		t.Fatalf("stream: %+v", msg)
	}
	code, b, _ = h.post("/v1/messages", `{"model":"m","max_tokens":20,"stop_sequences":["nope"],"messages":[{"role":"user","content":"hi"}]}`)
	if m := decodeMessage(t, b); code != 200 || *m.Content[0].Text != "Hello world STOP more" || *m.StopReason != api.StopEndTurn || m.StopSequence != nil {
		t.Fatalf("no stop: HTTP %d %s", code, b)
	}
}

func TestStopText(t *testing.T) {
	for _, c := range []struct {
		seqs   []string
		deltas []string
		want   string
		hit    string
	}{
		{nil, []string{"a", "b"}, "ab", ""},
		{[]string{"\n\n"}, []string{"one\n", "\ntwo"}, "one", "\n\n"},
		{[]string{"abc"}, []string{"xa", "b", "d"}, "xabd", ""},
		{[]string{"abc"}, []string{"xab"}, "xab", ""}, // held back, then flushed
		{[]string{"bc", "abcd"}, []string{"abcd"}, "a", "bc"},
		{[]string{"cd", "ab"}, []string{"xabcd"}, "x", "ab"},
		{[]string{"é!"}, []string{"caf", "é", "!", "no"}, "caf", "é!"},
	} {
		s := newStopText(c.seqs)
		var out strings.Builder
		for _, d := range c.deltas {
			out.WriteString(s.Push(d))
		}
		out.WriteString(s.Flush())
		if out.String() != c.want || s.Hit() != c.hit {
			t.Errorf("%q over %q: got %q (hit %q), want %q (hit %q)", c.seqs, c.deltas, out.String(), s.Hit(), c.want, c.hit)
		}
	}
}

func TestAnthropicCountTokens(t *testing.T) {
	h := start(t, Options{})
	code, b, _ := h.post("/v1/messages/count_tokens", `{"model":"sim-test","messages":[{"role":"user","content":"How many tokens is this?"}]}`, anthropicHeaders...)
	var c api.CountTokensResponse
	if err := json.Unmarshal(b, &c); err != nil || code != 200 || c.InputTokens <= 0 {
		t.Fatalf("HTTP %d %s", code, b)
	}
}

// FuzzMessagesRequest: decoding and translating any body never panics, and every body
// refused is refused with a caller error.
func FuzzMessagesRequest(f *testing.F) {
	for _, s := range []string{
		`{"model":"m","max_tokens":5,"messages":[{"role":"user","content":"hi"}]}`,
		`{"max_tokens":5,"system":[{"type":"text","text":"s"}],"messages":[{"role":"assistant","content":[{"type":"tool_use","id":"a","name":"f","input":{"x":1}}]},{"role":"user","content":[{"type":"tool_result","tool_use_id":"a","content":[{"type":"text","text":"r"}],"is_error":true}]}],"tools":[{"name":"f","input_schema":{"type":"object"}}],"tool_choice":{"type":"tool","name":"f"}}`,
		`{"max_tokens":1,"messages":[{"role":"user","content":[{"type":"image","source":{}}]}]}`,
		`{"max_tokens":1,"messages":[{"role":"user","content":null}],"stop_sequences":["x"],"output_config":{"format":{"type":"json_schema","schema":{}}}}`,
		`{"max_tokens":-1}`, `{"messages":{}}`, `[]`, `null`, `{`, `{"max_tokens":1,"messages":[{"role":"user","content":[{"type":"tool_result","tool_use_id":"t","content":{"a":1}}]}]}`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body string) {
		var req api.MessagesRequest
		err := decodeJSON([]byte(body), &req, "request body")
		if err == nil {
			_, err = messagesToLLM(&req, "default")
		}
		if err == nil {
			return
		}
		var ae *api.Error
		if !errors.As(err, &ae) || ae.Kind != api.CallerBadRequest || ae.Message == "" {
			t.Fatalf("%q: not a caller error: %#v", body, err)
		}
	})
}
