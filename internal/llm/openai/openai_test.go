package openai

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/aios-go/aios/api"
	"github.com/aios-go/aios/internal/llm"
	"github.com/aios-go/aios/internal/llm/upstream"
	"github.com/aios-go/aios/internal/testfakes/fakeopenai"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func newFake(t *testing.T, opts fakeopenai.Options) *fakeopenai.Server {
	t.Helper()
	s := fakeopenai.New(opts)
	t.Cleanup(s.Close)
	return s
}

func newCore(t *testing.T, cfg Config) *Core {
	t.Helper()
	if cfg.Name == "" {
		cfg.Name = "m"
	}
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func user(text string) []api.Message {
	return []api.Message{{Role: "user", Content: api.Content(text)}}
}

// collect runs Generate and returns the result, the deltas and the error.
func collect(ctx context.Context, c *Core, req *llm.Request) (*llm.Result, []llm.Delta, error) {
	var ds []llm.Delta
	res, err := c.Generate(ctx, req, func(d llm.Delta) { ds = append(ds, d) })
	return res, ds, err
}

func joinText(ds []llm.Delta) string {
	var sb strings.Builder
	for _, d := range ds {
		sb.WriteString(d.Text)
	}
	return sb.String()
}

func lastBody(t *testing.T, s *fakeopenai.Server) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(s.LastBody(), &m); err != nil {
		t.Fatalf("last body %q: %v", s.LastBody(), err)
	}
	return m
}

func wantKind(t *testing.T, err error, k api.Kind) *api.Error {
	t.Helper()
	var e *api.Error
	if !errors.As(err, &e) {
		t.Fatalf("err = %v (%T), want *api.Error of kind %s", err, err, k)
	}
	if e.Kind != k {
		t.Fatalf("kind = %s (%v), want %s", e.Kind, err, k)
	}
	return e
}

func TestNormalizeBaseURL(t *testing.T) {
	cases := []struct{ in, want string }{
		{"http://host:8000", "http://host:8000/v1/"},
		{"http://host:8000/", "http://host:8000/v1/"},
		{"http://host:8000/v1", "http://host:8000/v1/"},
		{"http://host:8000/v1/", "http://host:8000/v1/"},
		{"  http://host:8000/v1//  ", "http://host:8000/v1/"},
		{"host:8000", "http://host:8000/v1/"},
		{"localhost:11434/v1", "http://localhost:11434/v1/"},
		{"https://api.openai.com/v1", "https://api.openai.com/v1/"},
		{"https://api.groq.com/openai/v1", "https://api.groq.com/openai/v1/"},
		{"https://generativelanguage.googleapis.com/v1beta/openai/", "https://generativelanguage.googleapis.com/v1beta/openai/"},
		{"http://[::1]:8000", "http://[::1]:8000/v1/"},
	}
	for _, tc := range cases {
		got, err := NormalizeBaseURL(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("NormalizeBaseURL(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
	for _, bad := range []string{"", "   ", "ftp://host/", "http://", "http://host:8000/v1?x=1", "http://ho st/"} {
		if got, err := NormalizeBaseURL(bad); err == nil {
			t.Errorf("NormalizeBaseURL(%q) = %q, want an error", bad, got)
		} else {
			wantKind(t, err, api.CallerBadRequest)
		}
	}
	if _, err := New(Config{Name: "m"}); err == nil {
		t.Fatal("New without a base URL succeeded")
	}
}

func TestPlainChat(t *testing.T) {
	s := newFake(t, fakeopenai.Options{Model: "served"})
	c := newCore(t, Config{Name: "served", BaseURL: s.URL()})
	msgs := []api.Message{{Role: "system", Content: "be brief"}, {Role: "user", Content: "hello"}}
	res, ds, err := collect(t.Context(), c, &llm.Request{Messages: msgs})
	if err != nil {
		t.Fatal(err)
	}
	want := fakeopenai.Text(fakeopenai.Seed(msgs), 0, 16)
	if res.Text != want || res.FinishReason != "stop" || len(res.ToolCalls) != 0 {
		t.Fatalf("result = %+v, want text %q", res, want)
	}
	if len(ds) != 16 || joinText(ds) != res.Text {
		t.Fatalf("%d deltas joining to %q, want 16 joining to the result", len(ds), joinText(ds))
	}
	body := lastBody(t, s)
	if body["model"] != "served" || body["stream"] != true {
		t.Fatalf("body = %v", body)
	}
	if so, _ := body["stream_options"].(map[string]any); so["include_usage"] != true {
		t.Fatalf("stream_options = %v", body["stream_options"])
	}
	for _, absent := range []string{"priority", "continue_final_message", "max_tokens", "temperature", "tools", "response_format"} {
		if _, ok := body[absent]; ok {
			t.Errorf("body has %q: %v", absent, body)
		}
	}
	if got := s.LastHeader().Get("Authorization"); got != "Bearer EMPTY" {
		t.Fatalf("Authorization = %q, want the placeholder key", got)
	}
	if s.Requests() != 1 {
		t.Fatalf("requests = %d", s.Requests())
	}
}

func TestEnvironmentDoesNotLeak(t *testing.T) {
	t.Setenv("OPENAI_BASE_URL", "http://127.0.0.1:1/v1")
	t.Setenv("OPENAI_API_KEY", "sk-from-env")
	t.Setenv("OPENAI_ORG_ID", "org-from-env")
	t.Setenv("OPENAI_PROJECT_ID", "proj-from-env")
	s := newFake(t, fakeopenai.Options{})
	c := newCore(t, Config{BaseURL: s.URL()})
	if _, _, err := collect(t.Context(), c, &llm.Request{Messages: user("x")}); err != nil {
		t.Fatal(err)
	}
	h := s.LastHeader()
	if h.Get("Authorization") != "Bearer EMPTY" || h.Get("OpenAI-Organization") != "" || h.Get("OpenAI-Project") != "" {
		t.Fatalf("headers = %v", h)
	}
}

func TestUsage(t *testing.T) {
	s := newFake(t, fakeopenai.Options{})
	c := newCore(t, Config{BaseURL: s.URL() + "/v1"})
	msgs := user("one two three")
	res, _, err := collect(t.Context(), c, &llm.Request{Messages: msgs, MaxTokens: 5})
	if err != nil {
		t.Fatal(err)
	}
	u := res.Usage
	if u.PromptTokens != 7 || u.CompletionTokens != 5 || u.TotalTokens != 12 || u.PromptTokensDetails == nil || u.PromptTokensDetails.CachedTokens != 0 {
		t.Fatalf("usage = %+v", u)
	}
	if res.FinishReason != "length" {
		t.Fatalf("finish = %q", res.FinishReason)
	}
	if lastBody(t, s)["max_tokens"] != 5.0 {
		t.Fatalf("body = %v, want max_tokens 5", lastBody(t, s))
	}
	next := append(msgs, api.Message{Role: "assistant", Content: api.Content(res.Text)}, api.Message{Role: "user", Content: "more"})
	res2, _, err := collect(t.Context(), c, &llm.Request{Messages: next})
	if err != nil {
		t.Fatal(err)
	}
	if d := res2.Usage.PromptTokensDetails; d == nil || d.CachedTokens != u.PromptTokens {
		t.Fatalf("cached tokens = %+v, want %d", d, u.PromptTokens)
	}
}

func TestUsageEstimatedWhenNotReported(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		for _, d := range []string{`{"role":"assistant","content":"a "}`, `{"content":"b "}`} {
			fmt.Fprintf(w, "data: {\"id\":\"x\",\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,\"delta\":%s}]}\n\n", d)
		}
		fmt.Fprint(w, "data: {\"id\":\"x\",\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\ndata: [DONE]\n\n")
	}))
	defer srv.Close()
	c := newCore(t, Config{BaseURL: srv.URL})
	res, _, err := collect(t.Context(), c, &llm.Request{Messages: user("hi")})
	if err != nil {
		t.Fatal(err)
	}
	if res.Text != "a b " || res.Usage.CompletionTokens != 2 || res.Usage.PromptTokens == 0 {
		t.Fatalf("result = %+v", res)
	}
}

func TestMaxCompletionTokensField(t *testing.T) {
	s := newFake(t, fakeopenai.Options{})
	yes := true
	c := newCore(t, Config{BaseURL: s.URL(), MaxCompletionTokensField: &yes})
	if _, _, err := collect(t.Context(), c, &llm.Request{Messages: user("x"), MaxTokens: 3}); err != nil {
		t.Fatal(err)
	}
	body := lastBody(t, s)
	if body["max_completion_tokens"] != 3.0 || body["max_tokens"] != nil {
		t.Fatalf("body = %v", body)
	}
	oa, err := New(Config{Name: "gpt", BaseURL: "https://api.openai.com/v1"})
	if err != nil {
		t.Fatal(err)
	}
	defer oa.Close()
	if !*oa.cfg.MaxCompletionTokensField {
		t.Fatal("api.openai.com should get max_completion_tokens")
	}
}

func TestTemperatureAPIKeyAndModelFallback(t *testing.T) {
	s := newFake(t, fakeopenai.Options{APIKey: "sk-test"})
	c, err := New(Config{BaseURL: s.URL(), APIKey: "sk-test"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	temp := 0.25
	if _, _, err := collect(t.Context(), c, &llm.Request{Model: "from-request", Messages: user("x"), Temperature: &temp}); err != nil {
		t.Fatal(err)
	}
	body := lastBody(t, s)
	if body["temperature"] != 0.25 || body["model"] != "from-request" {
		t.Fatalf("body = %v", body)
	}
	if _, _, err := collect(t.Context(), c, &llm.Request{Messages: user("x")}); err == nil {
		t.Fatal("a request with no model name anywhere succeeded")
	} else {
		wantKind(t, err, api.CallerBadRequest)
	}
}

var weatherTool = api.Tool{Type: "function", Function: api.FunctionDef{
	Name:        "get_weather",
	Description: "Weather for a city",
	Parameters:  json.RawMessage(`{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]}`),
}}

func TestToolCallRoundTrip(t *testing.T) {
	s := newFake(t, fakeopenai.Options{AutoToolCall: true})
	c := newCore(t, Config{BaseURL: s.URL()})
	msgs := user("weather in Paris?")
	res, ds, err := collect(t.Context(), c, &llm.Request{Messages: msgs, Tools: []api.Tool{weatherTool},
		ToolChoice: json.RawMessage(`{"type":"function","function":{"name":"get_weather"}}`)})
	if err != nil {
		t.Fatal(err)
	}
	if res.FinishReason != "tool_calls" || len(res.ToolCalls) != 1 || res.Text != "" {
		t.Fatalf("result = %+v", res)
	}
	call := res.ToolCalls[0]
	var args map[string]any
	if call.Function.Name != "get_weather" || call.ID == "" || call.Type != "function" ||
		json.Unmarshal([]byte(call.Function.Arguments), &args) != nil || args["city"] == nil {
		t.Fatalf("tool call = %+v", call)
	}
	// The deltas are OpenAI fragments: id and name first, then arguments in pieces.
	var id, name, argText string
	for _, d := range ds {
		for _, tc := range d.ToolCalls {
			if tc.Index == nil || *tc.Index != 0 {
				t.Fatalf("fragment without index 0: %+v", tc)
			}
			id += tc.ID
			name += tc.Function.Name
			argText += tc.Function.Arguments
		}
	}
	if len(ds) < 3 || id != call.ID || name != call.Function.Name || argText != call.Function.Arguments {
		t.Fatalf("%d deltas assembled to %q %q %q, result %+v", len(ds), id, name, argText, call)
	}
	body := lastBody(t, s)
	tools := body["tools"].([]any)
	fn := tools[0].(map[string]any)["function"].(map[string]any)
	if fn["name"] != "get_weather" || fn["description"] != "Weather for a city" || fn["parameters"].(map[string]any)["type"] != "object" {
		t.Fatalf("tools sent = %v", tools)
	}
	if tc := body["tool_choice"].(map[string]any); tc["function"].(map[string]any)["name"] != "get_weather" {
		t.Fatalf("tool_choice sent = %v", body["tool_choice"])
	}

	// Second turn: the call and its result go back; the model answers in text.
	msgs = append(msgs,
		api.Message{Role: "assistant", ToolCalls: res.ToolCalls},
		api.Message{Role: "tool", ToolCallID: call.ID, Content: `{"temp_c":21}`})
	res2, _, err := collect(t.Context(), c, &llm.Request{Messages: msgs, Tools: []api.Tool{weatherTool}})
	if err != nil {
		t.Fatal(err)
	}
	if res2.FinishReason != "stop" || res2.Text == "" || len(res2.ToolCalls) != 0 {
		t.Fatalf("second turn = %+v", res2)
	}
	sent := lastBody(t, s)["messages"].([]any)
	asst := sent[1].(map[string]any)
	tcs := asst["tool_calls"].([]any)
	got := tcs[0].(map[string]any)
	if asst["role"] != "assistant" || got["id"] != call.ID || got["type"] != "function" ||
		got["function"].(map[string]any)["arguments"] != call.Function.Arguments {
		t.Fatalf("assistant message sent = %v", asst)
	}
	if _, hasContent := asst["content"]; hasContent {
		t.Fatalf("assistant tool-call message carries content: %v", asst)
	}
	tool := sent[2].(map[string]any)
	if tool["role"] != "tool" || tool["tool_call_id"] != call.ID || tool["content"] != `{"temp_c":21}` {
		t.Fatalf("tool message sent = %v", tool)
	}
}

func TestToolChoiceRequiredString(t *testing.T) {
	s := newFake(t, fakeopenai.Options{})
	c := newCore(t, Config{BaseURL: s.URL()})
	res, _, err := collect(t.Context(), c, &llm.Request{Messages: user("x"), Tools: []api.Tool{weatherTool}, ToolChoice: json.RawMessage(`"required"`)})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.ToolCalls) != 1 || lastBody(t, s)["tool_choice"] != "required" {
		t.Fatalf("result %+v, body %v", res, lastBody(t, s))
	}
}

func TestJSONOutput(t *testing.T) {
	s := newFake(t, fakeopenai.Options{})
	c := newCore(t, Config{BaseURL: s.URL()})
	schema := json.RawMessage(`{"name":"answer","strict":true,"schema":{"type":"object","properties":{"answer":{"type":"string"}},"required":["answer"]}}`)
	for _, rf := range []*api.ResponseFormat{{Type: "json_object"}, {Type: "json_schema", JSONSchema: schema}} {
		res, _, err := collect(t.Context(), c, &llm.Request{Messages: user("json please"), ResponseFormat: rf})
		if err != nil {
			t.Fatal(err)
		}
		var v map[string]any
		if err := json.Unmarshal([]byte(res.Text), &v); err != nil {
			t.Fatalf("%s: %q is not a JSON object", rf.Type, res.Text)
		}
		sent := lastBody(t, s)["response_format"].(map[string]any)
		if sent["type"] != rf.Type {
			t.Fatalf("response_format sent = %v", sent)
		}
		if rf.Type == "json_schema" {
			if _, ok := v["answer"].(string); !ok {
				t.Fatalf("output %v does not fit the schema", v)
			}
			js := sent["json_schema"].(map[string]any)
			if js["name"] != "answer" || js["strict"] != true {
				t.Fatalf("json_schema sent = %v", js)
			}
		}
	}
	for _, rf := range []*api.ResponseFormat{{Type: "yaml"}, {Type: "json_schema"}} {
		_, _, err := collect(t.Context(), c, &llm.Request{Messages: user("x"), ResponseFormat: rf})
		wantKind(t, err, api.CallerBadRequest)
	}
}

func TestResumeJoinsToUninterrupted(t *testing.T) {
	s := newFake(t, fakeopenai.Options{DefaultTokens: 20, TokenDelay: time.Millisecond})
	c := newCore(t, Config{BaseURL: s.URL(), Resume: true})
	msgs := []api.Message{{Role: "system", Content: "sys"}, {Role: "user", Content: "write a story"}}

	full, _, err := collect(t.Context(), c, &llm.Request{Messages: msgs})
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []int{1, 7, 19} {
		preempt := errors.New("preempted by the scheduler")
		ctx, cancel := context.WithCancelCause(t.Context())
		var so partial
		_, err := c.Generate(ctx, &llm.Request{Messages: msgs}, func(d llm.Delta) {
			so.add(d.Text)
			if so.n == k {
				cancel(preempt)
			}
		})
		cancel(nil)
		e := wantKind(t, err, api.CallerCancelled)
		if !errors.Is(err, preempt) || !errors.Is(e, preempt) {
			t.Fatalf("k=%d: err %v does not wrap the cancel cause", k, err)
		}
		if so.n != k {
			t.Fatalf("k=%d: %d deltas emitted, emission did not stop at the cancel", k, so.n)
		}

		res, _, err := collect(t.Context(), c, &llm.Request{Messages: msgs, Resume: so.text})
		if err != nil {
			t.Fatal(err)
		}
		if so.text+res.Text != full.Text {
			t.Fatalf("k=%d: %q + %q != %q", k, so.text, res.Text, full.Text)
		}
		body := lastBody(t, s)
		if body["continue_final_message"] != true || body["add_generation_prompt"] != false {
			t.Fatalf("body = %v", body)
		}
		sent := body["messages"].([]any)
		if last := sent[len(sent)-1].(map[string]any); last["role"] != "assistant" || last["content"] != so.text {
			t.Fatalf("last message sent = %v", last)
		}
	}
}

type partial struct {
	text string
	n    int
}

func (f *partial) add(s string) { f.text += s; f.n++ }

func TestResumeUnsupported(t *testing.T) {
	s := newFake(t, fakeopenai.Options{})
	c := newCore(t, Config{BaseURL: s.URL()})
	_, _, err := collect(t.Context(), c, &llm.Request{Messages: user("x"), Resume: "lorem "})
	wantKind(t, err, api.KernelInternal)
	if s.Requests() != 0 {
		t.Fatal("a resume the upstream cannot do was sent anyway")
	}
}

func TestPriority(t *testing.T) {
	s := newFake(t, fakeopenai.Options{})
	c := newCore(t, Config{BaseURL: s.URL(), Priority: true})
	if _, _, err := collect(t.Context(), c, &llm.Request{Messages: user("x"), Priority: 5}); err != nil {
		t.Fatal(err)
	}
	if got := lastBody(t, s)["priority"]; got != -5.0 {
		t.Fatalf("priority sent = %v, want -5 (vLLM runs lower first)", got)
	}
	if !c.Capabilities().Priority || c.Capabilities().Resume {
		t.Fatalf("capabilities = %+v", c.Capabilities())
	}
}

func TestCapacity(t *testing.T) {
	c := newCore(t, Config{BaseURL: "http://127.0.0.1:1", MaxInflight: 8, MaxTokens: 4096})
	if got := c.Capacity(); got != (llm.Capacity{MaxInflight: 8, MaxTokens: 4096}) {
		t.Fatalf("capacity = %+v", got)
	}
	d := newCore(t, Config{BaseURL: "http://127.0.0.1:1"})
	if got := d.Capacity(); got.MaxInflight != DefaultMaxInflight || got.MaxTokens != 0 {
		t.Fatalf("default capacity = %+v", got)
	}
}

func TestFaultsMapToKinds(t *testing.T) {
	cases := []struct {
		name       string
		fault      fakeopenai.Fault
		kind       api.Kind
		retryAfter time.Duration
		msg        string
	}{
		{"429", fakeopenai.Fault{Kind: fakeopenai.FaultRateLimited, RetryAfter: 2 * time.Second}, api.BackendRateLimited, 2 * time.Second, "Rate limit"},
		{"500", fakeopenai.Fault{Kind: fakeopenai.FaultInternal}, api.BackendUnavailable, 0, "HTTP 500"},
		{"502", fakeopenai.Fault{Kind: fakeopenai.FaultStatus, Status: 502}, api.BackendUnavailable, 0, "HTTP 502"},
		{"503", fakeopenai.Fault{Kind: fakeopenai.FaultOverloaded}, api.BackendOverloaded, 0, "overloaded"},
		{"400", fakeopenai.Fault{Kind: fakeopenai.FaultStatus, Status: 400, Message: "context too long"}, api.BackendRejected, 0, "context too long"},
		{"404", fakeopenai.Fault{Kind: fakeopenai.FaultStatus, Status: 404, Message: "no such model"}, api.BackendRejected, 0, "no such model"},
		{"422", fakeopenai.Fault{Kind: fakeopenai.FaultStatus, Status: 422, Message: "bad field"}, api.BackendRejected, 0, "bad field"},
		{"401", fakeopenai.Fault{Kind: fakeopenai.FaultStatus, Status: 401, Message: "nope"}, api.BackendRejected, 0, "API key"},
		{"403", fakeopenai.Fault{Kind: fakeopenai.FaultStatus, Status: 403}, api.BackendRejected, 0, "API key"},
		{"disconnect", fakeopenai.Fault{Kind: fakeopenai.FaultDisconnect, AfterTokens: 3}, api.BackendUnavailable, 0, ""},
		{"disconnect before a token", fakeopenai.Fault{Kind: fakeopenai.FaultDisconnect}, api.BackendUnavailable, 0, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := newFake(t, fakeopenai.Options{})
			c := newCore(t, Config{BaseURL: s.URL()})
			s.InjectFault(tc.fault)
			res, ds, err := collect(t.Context(), c, &llm.Request{Messages: user("x")})
			if res != nil {
				t.Fatalf("result %+v returned with error %v", res, err)
			}
			e := wantKind(t, err, tc.kind)
			if e.RetryAfter != tc.retryAfter {
				t.Fatalf("RetryAfter = %v, want %v", e.RetryAfter, tc.retryAfter)
			}
			if !strings.Contains(e.Error(), tc.msg) {
				t.Fatalf("error %q lacks %q", e.Error(), tc.msg)
			}
			if s.Requests() != 1 {
				t.Fatalf("upstream saw %d requests: the SDK retried", s.Requests())
			}
			if tc.fault.Kind == fakeopenai.FaultDisconnect && len(ds) != tc.fault.AfterTokens {
				t.Fatalf("%d deltas before the drop, want %d", len(ds), tc.fault.AfterTokens)
			}
		})
	}
}

func TestWrongAPIKey(t *testing.T) {
	s := newFake(t, fakeopenai.Options{APIKey: "right"})
	c := newCore(t, Config{Name: "backend-a", BaseURL: s.URL(), APIKey: "wrong"})
	_, _, err := collect(t.Context(), c, &llm.Request{Messages: user("x")})
	e := wantKind(t, err, api.BackendRejected)
	if !strings.Contains(e.Message, "API key") || !strings.Contains(e.Message, "backend-a") || !strings.Contains(e.Message, "Incorrect API key") {
		t.Fatalf("message %q should name the key problem and the backend", e.Message)
	}
	wantKind(t, c.Health(t.Context()), api.BackendRejected)
}

func TestConnectionRefused(t *testing.T) {
	s := fakeopenai.New(fakeopenai.Options{})
	url := s.URL()
	s.Close()
	c := newCore(t, Config{BaseURL: url})
	_, _, err := collect(t.Context(), c, &llm.Request{Messages: user("x")})
	wantKind(t, err, api.BackendUnavailable)
	wantKind(t, c.Health(t.Context()), api.BackendUnavailable)
}

func TestHangTimesOut(t *testing.T) {
	s := newFake(t, fakeopenai.Options{})
	c := newCore(t, Config{BaseURL: s.URL(), IdleTimeout: 200 * time.Millisecond})
	s.InjectFault(fakeopenai.Fault{Kind: fakeopenai.FaultHang})
	start := time.Now()
	_, _, err := collect(t.Context(), c, &llm.Request{Messages: user("x")})
	el := time.Since(start)
	e := wantKind(t, err, api.BackendTimeout)
	if !errors.Is(e, upstream.ErrIdle) {
		t.Fatalf("err %v is not the idle timeout", err)
	}
	// Lower bound exact; the upper bound only catches a hang, not a slow machine.
	if el < 200*time.Millisecond || el > 10*time.Second {
		t.Fatalf("timed out after %v, want about 200ms", el)
	}
}

func TestStallMidStreamTimesOut(t *testing.T) {
	s := newFake(t, fakeopenai.Options{DefaultTokens: 3, TokenDelay: 5 * time.Second})
	c := newCore(t, Config{BaseURL: s.URL(), IdleTimeout: 500 * time.Millisecond})
	_, ds, err := collect(t.Context(), c, &llm.Request{Messages: user("x")})
	wantKind(t, err, api.BackendTimeout)
	if len(ds) != 1 {
		t.Fatalf("%d deltas before the stall, want 1", len(ds))
	}
}

func TestSlowButSteadyStreamSucceeds(t *testing.T) {
	// Total time well past IdleTimeout, but no gap as long: the watchdog must reset.
	s := newFake(t, fakeopenai.Options{DefaultTokens: 8, TokenDelay: 40 * time.Millisecond})
	c := newCore(t, Config{BaseURL: s.URL(), IdleTimeout: 250 * time.Millisecond})
	if _, _, err := collect(t.Context(), c, &llm.Request{Messages: user("x")}); err != nil {
		t.Fatal(err)
	}
}

func TestCallerCancelAndDeadline(t *testing.T) {
	s := newFake(t, fakeopenai.Options{Latency: 5 * time.Second})
	c := newCore(t, Config{BaseURL: s.URL()})

	cause := errors.New("agent killed")
	ctx, cancel := context.WithCancelCause(t.Context())
	time.AfterFunc(50*time.Millisecond, func() { cancel(cause) })
	_, _, err := collect(ctx, c, &llm.Request{Messages: user("x")})
	wantKind(t, err, api.CallerCancelled)
	if !errors.Is(err, cause) {
		t.Fatalf("err %v does not wrap the cause", err)
	}

	ctx, cancel2 := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel2()
	_, _, err = collect(ctx, c, &llm.Request{Messages: user("x")})
	wantKind(t, err, api.PolicyTimeout)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err %v does not wrap DeadlineExceeded", err)
	}

	done, cancel3 := context.WithCancel(t.Context())
	cancel3()
	_, _, err = collect(done, c, &llm.Request{Messages: user("x")})
	wantKind(t, err, api.CallerCancelled)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err %v does not wrap context.Canceled", err)
	}
}

func TestCloseEndsCalls(t *testing.T) {
	s := newFake(t, fakeopenai.Options{})
	c, err := New(Config{Name: "m", BaseURL: s.URL()})
	if err != nil {
		t.Fatal(err)
	}
	s.InjectFault(fakeopenai.Fault{Kind: fakeopenai.FaultHang})
	errc := make(chan error, 1)
	go func() {
		_, _, err := collect(context.Background(), c, &llm.Request{Messages: user("x")})
		errc <- err
	}()
	for deadline := time.Now().Add(10 * time.Second); s.InFlight() == 0; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the call never reached the upstream")
		}
	}
	c.Close()
	select {
	case err := <-errc:
		wantKind(t, err, api.KernelShuttingDown)
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not end the in-flight call")
	}
	_, _, err = collect(t.Context(), c, &llm.Request{Messages: user("x")})
	wantKind(t, err, api.KernelShuttingDown)
	wantKind(t, c.Health(t.Context()), api.KernelShuttingDown)
}

// rawServer answers every request with handler's bytes, for shapes the fake never sends.
func rawServer(t *testing.T, handler http.HandlerFunc) *Core {
	t.Helper()
	srv := httptest.NewServer(handler)
	t.Cleanup(srv.Close)
	return newCore(t, Config{BaseURL: srv.URL})
}

func sse(events ...string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		for _, e := range events {
			fmt.Fprintf(w, "data: %s\n\n", e)
		}
	}
}

const (
	chunkHello = `{"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"role":"assistant","content":"hello "}}]}`
	chunkStop  = `{"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}`
)

func TestIncompleteStreams(t *testing.T) {
	cases := []struct {
		name   string
		events []string
		kind   api.Kind
		msg    string
	}{
		{"clean EOF without finish", []string{chunkHello}, api.BackendUnavailable, "stream ended before the response was complete"},
		{"[DONE] without finish", []string{chunkHello, "[DONE]"}, api.BackendUnavailable, "stream ended before the response was complete"},
		{"empty 200", nil, api.BackendUnavailable, "stream ended before the response was complete"},
		{"malformed chunk", []string{chunkHello, `{"choices":[{"index":0,"delta":{"content":`}, api.BackendBadResponse, "malformed"},
		{"error event 500", []string{chunkHello, `{"error":{"message":"engine died","code":500}}`}, api.BackendUnavailable, "engine died"},
		{"error event 400", []string{`{"error":{"message":"prompt too long","type":"BadRequestError","code":400}}`}, api.BackendRejected, "prompt too long"},
		{"error event no code", []string{`{"error":{"message":"boom"}}`}, api.BackendUnavailable, "boom"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := rawServer(t, sse(tc.events...))
			_, _, err := collect(t.Context(), c, &llm.Request{Messages: user("x")})
			e := wantKind(t, err, tc.kind)
			if !strings.Contains(e.Error(), tc.msg) {
				t.Fatalf("error %q lacks %q", e.Error(), tc.msg)
			}
		})
	}
	// A server minting a new id per chunk still streams a valid answer.
	c := rawServer(t, sse(chunkHello, strings.Replace(chunkStop, `"id":"c"`, `"id":"other"`, 1), "[DONE]"))
	res, _, err := collect(t.Context(), c, &llm.Request{Messages: user("x")})
	if err != nil || res.Text != "hello " {
		t.Fatalf("per-chunk ids: res %+v err %v", res, err)
	}
	// The same stream with a finish_reason but no [DONE] and no usage is complete.
	c = rawServer(t, sse(chunkHello, chunkStop))
	res, _, err = collect(t.Context(), c, &llm.Request{Messages: user("x")})
	if err != nil || res.Text != "hello " || res.FinishReason != "stop" {
		t.Fatalf("res %+v err %v", res, err)
	}
}

func TestErrorBodyShapes(t *testing.T) {
	cases := []struct {
		name   string
		status int
		header map[string]string
		body   string
		kind   api.Kind
		msg    string
		after  time.Duration
	}{
		{"openai", 400, nil, `{"error":{"message":"bad request here","type":"invalid_request_error","param":null,"code":null}}`, api.BackendRejected, "bad request here", 0},
		{"vllm numeric code", 400, nil, `{"error":{"message":"max_tokens too large","type":"BadRequestError","param":null,"code":400}}`, api.BackendRejected, "max_tokens too large", 0},
		{"vllm flat", 404, nil, `{"object":"error","message":"The model x does not exist.","type":"NotFoundError","code":404}`, api.BackendRejected, "does not exist", 0},
		{"ollama string", 404, nil, `{"error":"model \"llama9\" not found, try pulling it first"}`, api.BackendRejected, "try pulling it first", 0},
		{"fastapi detail", 422, nil, `{"detail":[{"loc":["body","messages"],"msg":"field required"}]}`, api.BackendRejected, "field required", 0},
		{"plain text proxy", 502, nil, "Bad Gateway from nginx", api.BackendUnavailable, "nginx", 0},
		{"html 503", 503, map[string]string{"Retry-After": "7"}, "<html>busy</html>", api.BackendOverloaded, "busy", 7 * time.Second},
		{"retry-after-ms", 429, map[string]string{"Retry-After-Ms": "1500", "Retry-After": "9"}, `{"error":{"message":"slow down"}}`, api.BackendRateLimited, "slow down", 1500 * time.Millisecond},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := rawServer(t, func(w http.ResponseWriter, r *http.Request) {
				for k, v := range tc.header {
					w.Header().Set(k, v)
				}
				w.WriteHeader(tc.status)
				io.WriteString(w, tc.body)
			})
			_, _, err := collect(t.Context(), c, &llm.Request{Messages: user("x")})
			e := wantKind(t, err, tc.kind)
			if !strings.Contains(e.Message, tc.msg) {
				t.Fatalf("message %q lacks %q", e.Message, tc.msg)
			}
			if e.RetryAfter != tc.after {
				t.Fatalf("RetryAfter = %v, want %v", e.RetryAfter, tc.after)
			}
		})
	}
}

// TestRetryAfter covers OpenAI's retry-after-ms; Retry-After itself is
// upstream.RetryAfter's (tested there).
func TestRetryAfter(t *testing.T) {
	now := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		ms, secs string
		want     time.Duration
	}{
		{"", "", 0},
		{"", "3", 3 * time.Second},
		{"", "-4", 0},
		{"", now.Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second},
		{"250", "", 250 * time.Millisecond},
		{"250", "2", 250 * time.Millisecond},
		{"x", "2", 2 * time.Second},
		{"0", "2", 2 * time.Second},
	} {
		h := http.Header{}
		if tc.ms != "" {
			h.Set("Retry-After-Ms", tc.ms)
		}
		if tc.secs != "" {
			h.Set("Retry-After", tc.secs)
		}
		if got := upstream.OpenAIRetryAfter(h, now); got != tc.want {
			t.Errorf("retryAfter(ms %q, s %q) = %v, want %v", tc.ms, tc.secs, got, tc.want)
		}
	}
	if got := upstream.OpenAIRetryAfter(nil, now); got != 0 {
		t.Errorf("retryAfter(nil) = %v", got)
	}
}

func TestTranslationErrors(t *testing.T) {
	s := newFake(t, fakeopenai.Options{})
	c := newCore(t, Config{BaseURL: s.URL()})
	bad := []*llm.Request{
		{Messages: []api.Message{{Role: "wizard", Content: "x"}}},
		{Messages: user("x"), ToolChoice: json.RawMessage(`{not json`)},
		{Messages: user("x"), Tools: []api.Tool{{Function: api.FunctionDef{Name: ""}}}},
		{Messages: user("x"), Tools: []api.Tool{{Function: api.FunctionDef{Name: "f", Parameters: json.RawMessage(`{`)}}}},
		{Messages: []api.Message{{Role: "assistant", ToolCalls: []api.ToolCall{{ID: "1"}}}}},
	}
	for i, req := range bad {
		_, _, err := collect(t.Context(), c, req)
		wantKind(t, err, api.CallerBadRequest)
		if s.Requests() != 0 {
			t.Fatalf("case %d: a malformed request was sent", i)
		}
	}
}

func TestMessageTranslation(t *testing.T) {
	s := newFake(t, fakeopenai.Options{})
	c := newCore(t, Config{BaseURL: s.URL()})
	msgs := []api.Message{
		{Role: "system", Content: "sys", Name: "boss"},
		{Role: "developer", Content: "dev"},
		{Role: "user", Content: "hi", Name: "alice"},
		{Role: "assistant", Content: "let me check", ToolCalls: []api.ToolCall{{ID: "c1", Type: "function", Function: api.FunctionCall{Name: "f", Arguments: `{"a":1}`}}}},
		{Role: "tool", ToolCallID: "c1", Content: "42"},
		{Role: "assistant", Content: ""},
		{Role: "user", Content: "thanks"},
	}
	if _, _, err := collect(t.Context(), c, &llm.Request{Messages: msgs, Tools: []api.Tool{{Function: api.FunctionDef{Name: "f"}}}}); err != nil {
		t.Fatal(err)
	}
	var body struct {
		Messages []map[string]any `json:"messages"`
		Tools    []map[string]any `json:"tools"`
	}
	if err := json.Unmarshal(s.LastBody(), &body); err != nil {
		t.Fatal(err)
	}
	want := []map[string]any{
		{"role": "system", "content": "sys", "name": "boss"},
		{"role": "developer", "content": "dev"},
		{"role": "user", "content": "hi", "name": "alice"},
		{"role": "assistant", "content": "let me check", "tool_calls": []any{map[string]any{"id": "c1", "type": "function", "function": map[string]any{"name": "f", "arguments": `{"a":1}`}}}},
		{"role": "tool", "content": "42", "tool_call_id": "c1"},
		{"role": "assistant", "content": ""},
		{"role": "user", "content": "thanks"},
	}
	if len(body.Messages) != len(want) {
		t.Fatalf("sent %d messages: %v", len(body.Messages), body.Messages)
	}
	for i := range want {
		g, _ := json.Marshal(body.Messages[i])
		w, _ := json.Marshal(want[i])
		if string(g) != string(w) {
			t.Errorf("message %d sent as %s, want %s", i, g, w)
		}
	}
	if body.Tools[0]["type"] != "function" {
		t.Fatalf("tool without a type was sent as %v", body.Tools[0])
	}
}

func TestHealthAndListModels(t *testing.T) {
	s := newFake(t, fakeopenai.Options{Model: "served"})
	c := newCore(t, Config{BaseURL: s.URL() + "/v1/"})
	if err := c.Health(t.Context()); err != nil {
		t.Fatal(err)
	}
	ms, err := c.ListModels(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) != 1 || ms[0].ID != "served" || ms[0].Object != "model" {
		t.Fatalf("models = %+v", ms)
	}
}

func TestHealthTimesOut(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-r.Context().Done()
	}))
	defer srv.Close()
	defer srv.CloseClientConnections()
	c := newCore(t, Config{BaseURL: srv.URL, HealthTimeout: 100 * time.Millisecond})
	start := time.Now()
	wantKind(t, c.Health(t.Context()), api.BackendTimeout)
	if el := time.Since(start); el < 100*time.Millisecond {
		t.Fatalf("health gave up after %v", el)
	}
}

func TestConcurrentCalls(t *testing.T) {
	s := newFake(t, fakeopenai.Options{DefaultTokens: 10, TokenDelay: time.Millisecond})
	c := newCore(t, Config{BaseURL: s.URL(), MaxInflight: 8})
	errs := make(chan error, 16)
	for i := range 16 {
		go func() {
			msgs := user(fmt.Sprint("question ", i))
			res, ds, err := collect(t.Context(), c, &llm.Request{Messages: msgs})
			switch {
			case err != nil:
				errs <- err
			case res.Text != fakeopenai.Text(fakeopenai.Seed(msgs), 0, 10) || joinText(ds) != res.Text:
				errs <- fmt.Errorf("call %d: text %q", i, res.Text)
			default:
				errs <- nil
			}
		}()
	}
	for range 16 {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
}
