package server

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/aios-go/aios/api"
	"github.com/aios-go/aios/internal/kernel"
	"github.com/aios-go/aios/internal/llm"
	"github.com/aios-go/aios/internal/llm/sim"
	"github.com/aios-go/aios/internal/llm/simcore"
	"github.com/aios-go/aios/internal/testleak"
)

// The Gemini backend's dependencies start a goroutine for the life of the process.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m, testleak.Ignore()...) }

// funcCore lets a test decide what the backend does.
type funcCore struct {
	gen func(ctx context.Context, req *llm.Request, emit func(llm.Delta)) (*llm.Result, error)
}

func (f *funcCore) Generate(ctx context.Context, req *llm.Request, emit func(llm.Delta)) (*llm.Result, error) {
	return f.gen(ctx, req, emit)
}
func (f *funcCore) Capabilities() llm.Capabilities { return llm.Capabilities{} }
func (f *funcCore) Capacity() llm.Capacity         { return llm.Capacity{MaxInflight: 4} }
func (f *funcCore) Health(context.Context) error   { return nil }
func (f *funcCore) Close() error                   { return nil }

// fastSim is the simulated engine running 200 times faster than real time.
func fastSim(tb testing.TB, maxInflight int) *simcore.Core {
	tb.Helper()
	c, err := simcore.New(simcore.Config{Config: sim.Config{Model: "sim-test", Speed: 200}, MaxInflight: maxInflight})
	if err != nil {
		tb.Fatal(err)
	}
	return c
}

type harness struct {
	t   testing.TB
	url string
	srv *Server
}

func start(t *testing.T, opts Options, cores ...kernel.CoreConfig) *harness {
	t.Helper()
	if len(cores) == 0 {
		cores = []kernel.CoreConfig{{Model: "sim-test", Backend: "sim", Core: fastSim(t, 64)}}
	}
	k, err := kernel.New(kernel.Options{}, cores)
	if err != nil {
		t.Fatal(err)
	}
	s := New(k, opts)
	ts := httptest.NewServer(s.Handler())
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = k.Shutdown(ctx)
		ts.Close()
	})
	return &harness{t: t, url: ts.URL, srv: s}
}

func (h *harness) post(path, body string, headers ...string) (int, []byte, http.Header) {
	h.t.Helper()
	req, _ := http.NewRequest("POST", h.url+path, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b, resp.Header
}

func (h *harness) get(path string, v any) {
	h.t.Helper()
	resp, err := http.Get(h.url + path)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		h.t.Fatalf("GET %s: %d", path, resp.StatusCode)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		h.t.Fatal(err)
	}
}

// llmQuery sends an AIOS llm query and decodes the response with its LLM payload.
func (h *harness) llmQuery(data string) (api.QueryResponse, api.LLMResponse) {
	h.t.Helper()
	code, b, _ := h.post("/query", `{"agent_name":"tester","query_type":"llm","query_data":`+data+`}`)
	if code != 200 {
		h.t.Fatalf("status %d: %s", code, b)
	}
	var raw struct {
		api.QueryResponse
		Response api.LLMResponse `json:"response"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		h.t.Fatalf("%v: %s", err, b)
	}
	return raw.QueryResponse, raw.Response
}

const hello = `[{"role":"user","content":"hello"}]`

func TestQueryActionTypes(t *testing.T) {
	h := start(t, Options{})
	tools := `[{"type":"function","function":{"name":"demo/search","description":"search","parameters":{"type":"object","properties":{"query":{"type":"string"}}}}}]`

	qr, r := h.llmQuery(`{"query_class":"llm","llms":[{"name":"sim-test","backend":"sim"}],"messages":` + hello + `,"action_type":"chat","max_new_tokens":12,"temperature":0.5}`)
	if !r.Finished || r.StatusCode != 200 || r.ResponseMessage == nil || len(strings.Fields(*r.ResponseMessage)) != 12 || r.ResponseClass != "llm" {
		t.Fatalf("chat: %+v", r)
	}
	if len(qr.StartTimes) != 1 || len(qr.EndTimes) != 1 || len(qr.WaitingTimes) != 1 || len(qr.TurnaroundTimes) != 1 {
		t.Fatalf("chat: timing arrays %+v", qr)
	}
	if qr.EndTimes[0] < qr.StartTimes[0] || qr.TurnaroundTimes[0] < qr.WaitingTimes[0] {
		t.Fatalf("chat: inconsistent timings %+v", qr)
	}

	_, r = h.llmQuery(`{"messages":` + hello + `,"action_type":"chat_with_json_output","max_new_tokens":5}`)
	var obj map[string]any
	if r.ResponseMessage == nil || json.Unmarshal([]byte(*r.ResponseMessage), &obj) != nil {
		t.Fatalf("json output is not a JSON object: %+v", r)
	}

	for _, action := range []string{"chat_with_tool_call_output", "call_tool"} {
		_, r = h.llmQuery(`{"messages":` + hello + `,"tools":` + tools + `,"action_type":"` + action + `"}`)
		if !r.Finished || len(r.ToolCalls) != 1 || r.ToolCalls[0].Name != "demo/search" || r.ToolCalls[0].ID == "" {
			t.Fatalf("%s: %+v", action, r)
		}
		if _, ok := r.ToolCalls[0].Parameters["query"]; !ok {
			t.Fatalf("%s: parameters %v lack the argument", action, r.ToolCalls[0].Parameters)
		}
	}

	_, r = h.llmQuery(`{"messages":` + hello + `,"action_type":"operate_file"}`)
	if r.Finished || r.StatusCode != 501 || r.Error == nil {
		t.Fatalf("operate_file: %+v", r)
	}
}

func TestQueryModulesNotEnabled(t *testing.T) {
	h := start(t, Options{})
	for _, qt := range []string{"storage", "tool", "memory"} {
		code, b, _ := h.post("/query", `{"agent_name":"a","query_type":"`+qt+`","query_data":{"query_class":"`+qt+`"}}`)
		if code != 200 {
			t.Fatalf("%s: status %d", qt, code)
		}
		var raw struct {
			Response map[string]any `json:"response"`
		}
		if err := json.Unmarshal(b, &raw); err != nil {
			t.Fatal(err)
		}
		if raw.Response["response_class"] != qt || !strings.Contains(raw.Response["error"].(string), "not enabled") {
			t.Fatalf("%s: %s", qt, b)
		}
		if qt != "memory" && raw.Response["status_code"].(float64) != 501 {
			t.Fatalf("%s: %s", qt, b)
		}
	}
}

func TestQueryRejectsBadRequests(t *testing.T) {
	h := start(t, Options{MaxBodyBytes: 4096})
	for _, tc := range []struct {
		name, body string
		status     int
		detail     string
	}{
		{"malformed", `{"agent_name": "a",`, 400, "not valid JSON"},
		{"empty", ``, 400, "empty"},
		{"not an object", `[1,2]`, 400, "must be a JSON an object"},
		{"wrong type", `{"agent_name": 7}`, 400, `"agent_name" must be a string`},
		{"no agent", `{"query_type":"llm","query_data":{}}`, 400, "agent_name is required"},
		{"unknown type", `{"agent_name":"a","query_type":"dance","query_data":{}}`, 400, "unknown query_type"},
		{"no type", `{"agent_name":"a","query_data":{}}`, 400, "query_type is required"},
		{"messages wrong type", `{"agent_name":"a","query_type":"llm","query_data":{"messages":"hi"}}`, 400, `"messages" must be an array`},
		{"content wrong type", `{"agent_name":"a","query_type":"llm","query_data":{"messages":[{"role":"user","content":5}]}}`, 400, "content"},
		{"no messages", `{"agent_name":"a","query_type":"llm","query_data":{"messages":[]}}`, 400, "at least one message"},
		{"bad action", `{"agent_name":"a","query_type":"llm","query_data":{"messages":` + hello + `,"action_type":"fly"}}`, 400, "unknown action_type"},
		{"tools missing", `{"agent_name":"a","query_type":"llm","query_data":{"messages":` + hello + `,"action_type":"call_tool"}}`, 400, "non-empty tools"},
		{"bad max tokens", `{"agent_name":"a","query_type":"llm","query_data":{"messages":` + hello + `,"max_new_tokens":0}}`, 400, "max_new_tokens"},
		{"unknown model", `{"agent_name":"a","query_type":"llm","query_data":{"messages":` + hello + `,"llms":[{"name":"gpt-9"}]}}`, 404, "gpt-9"},
		{"oversize", `{"agent_name":"` + strings.Repeat("a", 5000) + `"}`, 413, "exceeds the limit"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, b, _ := h.post("/query", tc.body)
			var e api.ErrorBody
			if err := json.Unmarshal(b, &e); err != nil {
				t.Fatalf("body is not JSON: %s", b)
			}
			if code != tc.status || !strings.Contains(e.Detail, tc.detail) || e.Kind == "" {
				t.Fatalf("got %d %+v; want %d with detail containing %q", code, e, tc.status, tc.detail)
			}
		})
	}
}

func TestQueryBackendErrorInsideResponse(t *testing.T) {
	core := &funcCore{gen: func(ctx context.Context, req *llm.Request, emit func(llm.Delta)) (*llm.Result, error) {
		return nil, &api.Error{Kind: api.BackendRateLimited, Message: "upstream said 429", RetryAfter: 2 * time.Second}
	}}
	h := start(t, Options{}, kernel.CoreConfig{Model: "m", Backend: "test", Core: core})
	_, r := h.llmQuery(`{"messages":` + hello + `}`)
	if r.Finished || r.StatusCode != 429 || r.Error == nil || !strings.Contains(*r.Error, "429") {
		t.Fatalf("%+v", r)
	}
	// On /v1 the same failure is an HTTP error in OpenAI's shape, with Retry-After.
	code, b, hdr := h.post("/v1/chat/completions", `{"model":"m","messages":`+hello+`}`)
	var e api.OpenAIError
	_ = json.Unmarshal(b, &e)
	if code != 429 || e.Error.Code != string(api.BackendRateLimited) || hdr.Get("Retry-After") != "2" {
		t.Fatalf("v1: %d %s %v", code, b, hdr)
	}
}

func TestStatusRoutes(t *testing.T) {
	h := start(t, Options{Version: "v-test"})
	var st api.StatusResponse
	h.get("/status", &st)
	if st.Status != "running" || st.Version != "v-test" {
		t.Fatalf("%+v", st)
	}
	var cs api.CoreStatus
	h.get("/core/status", &cs)
	if cs.Scheduler != "psjf" || len(cs.LLMCores) != 1 || cs.LLMCores[0].Name != "sim-test" || cs.Modules["llm"] != "enabled" {
		t.Fatalf("%+v", cs)
	}
	var ll api.LLMList
	h.get("/core/llms/list", &ll)
	if len(ll.LLMs) != 1 || ll.LLMs[0].Name != "sim-test" || ll.LLMs[0].Backend != "sim" {
		t.Fatalf("%+v", ll)
	}
	var ml api.ModelList
	h.get("/v1/models", &ml)
	if len(ml.Data) != 1 || ml.Data[0].ID != "sim-test" || ml.Object != "list" {
		t.Fatalf("%+v", ml)
	}
	req, _ := http.NewRequest("DELETE", h.url+"/sessions/agent-1-7", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != http.StatusNoContent {
		t.Fatalf("DELETE /sessions: %v %v", err, resp)
	}
	resp.Body.Close()
	code, b, _ := h.post("/nowhere", `{}`)
	if code != 404 || !bytes.Contains(b, []byte("detail")) {
		t.Fatalf("%d %s", code, b)
	}
}

func TestChatCompletions(t *testing.T) {
	h := start(t, Options{})
	code, b, _ := h.post("/v1/chat/completions", `{"model":"sim-test","messages":`+hello+`,"max_tokens":7}`, api.HeaderAgent, "agent-1")
	if code != 200 {
		t.Fatalf("%d %s", code, b)
	}
	var cc api.ChatCompletion
	if err := json.Unmarshal(b, &cc); err != nil {
		t.Fatal(err)
	}
	if cc.Object != "chat.completion" || len(cc.Choices) != 1 || len(strings.Fields(string(cc.Choices[0].Message.Content))) != 7 ||
		cc.Choices[0].FinishReason != "length" || cc.Usage == nil || cc.Usage.CompletionTokens != 7 {
		t.Fatalf("%s", b)
	}

	// Tool call with tool_choice naming the function: content is null, a tool call comes back.
	code, b, _ = h.post("/v1/chat/completions", `{"model":"sim-test","messages":`+hello+`,
		"tools":[{"type":"function","function":{"name":"lookup","parameters":{"type":"object"}}}],
		"tool_choice":{"type":"function","function":{"name":"lookup"}}}`)
	if code != 200 || !bytes.Contains(b, []byte(`"content":null`)) || !bytes.Contains(b, []byte(`"finish_reason":"tool_calls"`)) {
		t.Fatalf("%d %s", code, b)
	}
	_ = json.Unmarshal(b, &cc)
	if tc := cc.Choices[0].Message.ToolCalls; len(tc) != 1 || tc[0].Function.Name != "lookup" || tc[0].Type != "function" || tc[0].Index != nil {
		t.Fatalf("%s", b)
	}

	for _, tc := range []struct{ body, want string }{
		{`{"model":"sim-test","messages":"hi"}`, `"messages" must be an array`},
		{`{"model":"sim-test"}`, "messages is required"},
		{`{"model":"nope","messages":` + hello + `}`, "not served"},
		{`{"model":"sim-test","messages":` + hello + `,"max_tokens":"ten"}`, `"max_tokens" must be a number`},
	} {
		code, b, _ := h.post("/v1/chat/completions", tc.body)
		var e api.OpenAIError
		if json.Unmarshal(b, &e) != nil || code/100 != 4 || !strings.Contains(e.Error.Message, tc.want) || e.Detail == "" {
			t.Fatalf("%s: %d %s", tc.body, code, b)
		}
	}
}

// readSSE returns the data payloads of an event stream.
func readSSE(t *testing.T, r io.Reader) []string {
	t.Helper()
	var out []string
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		if line, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
			out = append(out, line)
		}
	}
	return out
}

func TestChatCompletionsStream(t *testing.T) {
	h := start(t, Options{})
	resp, err := http.Post(h.url+"/v1/chat/completions", "application/json", strings.NewReader(
		`{"model":"sim-test","messages":`+hello+`,"max_tokens":9,"stream":true,"stream_options":{"include_usage":true}}`))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("content type %q", ct)
	}
	events := readSSE(t, resp.Body)
	if events[len(events)-1] != "[DONE]" {
		t.Fatalf("stream does not end with [DONE]: %v", events)
	}
	var text strings.Builder
	var finish string
	var usage *api.Usage
	for _, e := range events[:len(events)-1] {
		var c api.ChatCompletionChunk
		if err := json.Unmarshal([]byte(e), &c); err != nil {
			t.Fatalf("%v: %s", err, e)
		}
		if c.Object != "chat.completion.chunk" || !strings.HasPrefix(c.ID, "chatcmpl-") {
			t.Fatalf("bad chunk %s", e)
		}
		if c.Usage != nil {
			usage = c.Usage
		}
		for _, ch := range c.Choices {
			if ch.Delta.Content != nil {
				text.WriteString(*ch.Delta.Content)
			}
			if ch.FinishReason != nil {
				finish = *ch.FinishReason
			}
		}
	}
	if len(strings.Fields(text.String())) != 9 || finish != "length" || usage == nil || usage.CompletionTokens != 9 {
		t.Fatalf("text %q finish %q usage %+v", text.String(), finish, usage)
	}
}

func TestStreamFailureMidway(t *testing.T) {
	core := &funcCore{gen: func(ctx context.Context, req *llm.Request, emit func(llm.Delta)) (*llm.Result, error) {
		emit(llm.Delta{Text: "partial "})
		return nil, api.Errorf(api.BackendUnavailable, "stream ended before the response was complete")
	}}
	h := start(t, Options{}, kernel.CoreConfig{Model: "m", Backend: "test", Core: core})
	resp, err := http.Post(h.url+"/v1/chat/completions", "application/json", strings.NewReader(`{"model":"m","messages":`+hello+`,"stream":true}`))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	events := readSSE(t, resp.Body)
	last := events[len(events)-1]
	if last == "[DONE]" || !strings.Contains(last, `"error"`) || !strings.Contains(last, "backend_unavailable") {
		t.Fatalf("a broken stream must end with an error event, not [DONE]: %v", events)
	}
}
