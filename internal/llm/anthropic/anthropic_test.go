package anthropic

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
	"github.com/aios-go/aios/internal/testfakes/fakeanthropic"
	"github.com/aios-go/aios/internal/testfakes/fakegen"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func newFake(t *testing.T, opts fakeanthropic.Options) *fakeanthropic.Server {
	t.Helper()
	s := fakeanthropic.New(opts)
	t.Cleanup(s.Close)
	return s
}

func newCore(t *testing.T, cfg Config) *Core {
	t.Helper()
	if cfg.Name == "" {
		cfg.Name = fakeanthropic.DefaultModel
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

func lastBody(t *testing.T, s *fakeanthropic.Server) map[string]any {
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

func TestBaseURL(t *testing.T) {
	for in, want := range map[string]string{
		"":                              "https://api.anthropic.com/",
		"https://api.anthropic.com/v1/": "https://api.anthropic.com/",
		"http://127.0.0.1:9/":           "http://127.0.0.1:9/",
		"proxy.local/anthropic/v1":      "https://proxy.local/anthropic/",
	} {
		if got, err := normalizeBaseURL(in); err != nil || got != want {
			t.Errorf("normalizeBaseURL(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	if _, err := normalizeBaseURL("ftp://x"); err == nil {
		t.Error("ftp URL accepted")
	}
}

func TestPlainChat(t *testing.T) {
	s := newFake(t, fakeanthropic.Options{Model: "claude-x", APIKey: "sk-ant"})
	c := newCore(t, Config{Name: "claude-x", BaseURL: s.URL(), APIKey: "sk-ant"})
	temp := 0.2
	msgs := []api.Message{{Role: "system", Content: "be brief"}, {Role: "user", Content: "hello"}}
	res, ds, err := collect(t.Context(), c, &llm.Request{Messages: msgs, Temperature: &temp, MaxTokens: 100})
	if err != nil {
		t.Fatal(err)
	}
	if len(ds) != 16 || joinText(ds) != res.Text || res.FinishReason != "stop" || len(res.ToolCalls) != 0 {
		t.Fatalf("result %+v from %d deltas", res, len(ds))
	}
	if len(strings.Fields(res.Text)) != 16 || strings.HasPrefix(res.Text, " ") {
		t.Fatalf("text %q", res.Text)
	}
	body := lastBody(t, s)
	if body["model"] != "claude-x" || body["stream"] != true || body["max_tokens"] != 100.0 {
		t.Fatalf("body %v", body)
	}
	// API version 2026-10-21 refuses sampling parameters; the fake would have said 400.
	if _, ok := body["temperature"]; ok {
		t.Fatalf("temperature sent: %v", body)
	}
	sys := body["system"].([]any)[0].(map[string]any)
	if sys["type"] != "text" || sys["text"] != "be brief" {
		t.Fatalf("system sent as %v", body["system"])
	}
	h := s.LastHeader()
	if h.Get("Authorization") != "Bearer sk-ant" || h.Get("anthropic-version") == "" {
		t.Fatalf("headers %v", h)
	}
	if s.Requests() != 1 {
		t.Fatalf("%d requests", s.Requests())
	}
}

func TestDefaultMaxTokens(t *testing.T) {
	s := newFake(t, fakeanthropic.Options{})
	c := newCore(t, Config{BaseURL: s.URL(), DefaultMaxTokens: 77})
	if _, _, err := collect(t.Context(), c, &llm.Request{Messages: user("x")}); err != nil {
		t.Fatal(err)
	}
	if lastBody(t, s)["max_tokens"] != 77.0 {
		t.Fatalf("body %v", lastBody(t, s))
	}
}

func TestEnvironmentDoesNotLeak(t *testing.T) {
	t.Setenv("ANTHROPIC_API_KEY", "sk-from-env")
	t.Setenv("ANTHROPIC_BASE_URL", "http://127.0.0.1:1")
	t.Setenv("ANTHROPIC_CUSTOM_HEADERS", "X-Leak: yes")
	s := newFake(t, fakeanthropic.Options{})
	c := newCore(t, Config{BaseURL: s.URL(), APIKey: "sk-config"})
	if _, _, err := collect(t.Context(), c, &llm.Request{Messages: user("x")}); err != nil {
		t.Fatal(err)
	}
	h := s.LastHeader()
	if h.Get("Authorization") != "Bearer sk-config" || h.Get("X-Leak") != "" || h.Get("x-api-key") != "" {
		t.Fatalf("headers %v", h)
	}
}

func TestUsageCountsCachedPrompt(t *testing.T) {
	s := newFake(t, fakeanthropic.Options{})
	c := newCore(t, Config{BaseURL: s.URL()})
	msgs := user("one two three")
	res, _, err := collect(t.Context(), c, &llm.Request{Messages: msgs, MaxTokens: 5})
	if err != nil {
		t.Fatal(err)
	}
	u := res.Usage
	if u.PromptTokens != 7 || u.CompletionTokens != 5 || u.TotalTokens != 12 || u.PromptTokensDetails.CachedTokens != 0 || res.FinishReason != "length" {
		t.Fatalf("usage %+v finish %q", u, res.FinishReason)
	}
	next := append(msgs, api.Message{Role: "assistant", Content: api.Content(res.Text)}, api.Message{Role: "user", Content: "more"})
	res2, _, err := collect(t.Context(), c, &llm.Request{Messages: next})
	if err != nil {
		t.Fatal(err)
	}
	// input_tokens leaves out cache reads; prompt_tokens must include them.
	if d := res2.Usage.PromptTokensDetails; d.CachedTokens != 7 || res2.Usage.PromptTokens != 7+4+5+4+1 {
		t.Fatalf("second turn usage %+v", res2.Usage)
	}
}

var weatherTool = api.Tool{Type: "function", Function: api.FunctionDef{
	Name:        "get_weather",
	Description: "Weather for a city",
	Parameters:  json.RawMessage(`{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]}`),
}}

// An agent loop through the backend: Claude says a few words and calls the tool, the
// agent answers with the tool's result, Claude answers in text. The fake checks each
// request as the API does, so a tool_result out of place would be a 400 here.
func TestToolCallingConversation(t *testing.T) {
	s := newFake(t, fakeanthropic.Options{AutoToolCall: true})
	c := newCore(t, Config{BaseURL: s.URL()})
	msgs := []api.Message{{Role: "system", Content: "use tools"}, {Role: "user", Content: "weather in Paris?"}}
	res, ds, err := collect(t.Context(), c, &llm.Request{Messages: msgs, Tools: []api.Tool{weatherTool}})
	if err != nil {
		t.Fatal(err)
	}
	if res.FinishReason != "tool_calls" || len(res.ToolCalls) != 1 || res.Text == "" {
		t.Fatalf("first turn %+v", res)
	}
	call := res.ToolCalls[0]
	var args map[string]any
	if call.Type != "function" || call.Function.Name != "get_weather" || !strings.HasPrefix(call.ID, "toolu_") ||
		json.Unmarshal([]byte(call.Function.Arguments), &args) != nil || args["city"] == nil {
		t.Fatalf("tool call %+v", call)
	}
	// The deltas are OpenAI fragments: id and name first, then the arguments in pieces.
	var id, name, argText, text string
	for _, d := range ds {
		text += d.Text
		for _, tc := range d.ToolCalls {
			if tc.Index == nil || *tc.Index != 0 {
				t.Fatalf("fragment %+v", tc)
			}
			id, name, argText = id+tc.ID, name+tc.Function.Name, argText+tc.Function.Arguments
		}
	}
	if id != call.ID || name != call.Function.Name || argText != call.Function.Arguments || text != res.Text {
		t.Fatalf("fragments assembled to %q %q %q %q; result %+v", id, name, argText, text, res)
	}
	sentTools := lastBody(t, s)["tools"].([]any)[0].(map[string]any)
	if sentTools["name"] != "get_weather" || sentTools["input_schema"].(map[string]any)["required"] == nil {
		t.Fatalf("tool sent as %v", sentTools)
	}

	msgs = append(msgs,
		api.Message{Role: "assistant", Content: api.Content(res.Text), ToolCalls: res.ToolCalls},
		api.Message{Role: "tool", ToolCallID: call.ID, Content: `{"temp_c":21}`})
	res2, _, err := collect(t.Context(), c, &llm.Request{Messages: msgs, Tools: []api.Tool{weatherTool}})
	if err != nil {
		t.Fatal(err)
	}
	if res2.FinishReason != "stop" || res2.Text == "" || len(res2.ToolCalls) != 0 {
		t.Fatalf("second turn %+v", res2)
	}
	sent := lastBody(t, s)["messages"].([]any)
	if len(sent) != 3 {
		t.Fatalf("sent %d messages: %v", len(sent), sent)
	}
	asst := sent[1].(map[string]any)["content"].([]any)
	use := asst[1].(map[string]any)
	if use["type"] != "tool_use" || use["id"] != call.ID || use["input"].(map[string]any)["city"] == nil {
		t.Fatalf("assistant turn sent as %v", asst)
	}
	result := sent[2].(map[string]any)
	block := result["content"].([]any)[0].(map[string]any)
	if result["role"] != "user" || block["type"] != "tool_result" || block["tool_use_id"] != call.ID {
		t.Fatalf("tool result sent as %v", result)
	}
}

// Two calls in one turn: both results must go back in one user message, followed by
// the user's next words in that same turn.
func TestParallelToolResultsShareATurn(t *testing.T) {
	s := newFake(t, fakeanthropic.Options{})
	c := newCore(t, Config{BaseURL: s.URL()})
	msgs := []api.Message{
		{Role: "user", Content: "compare Paris and Rome"},
		{Role: "assistant", ToolCalls: []api.ToolCall{
			{ID: "toolu_a", Type: "function", Function: api.FunctionCall{Name: "get_weather", Arguments: `{"city":"Paris"}`}},
			{ID: "toolu_b", Type: "function", Function: api.FunctionCall{Name: "get_weather", Arguments: ""}},
		}},
		{Role: "tool", ToolCallID: "toolu_a", Content: "21C"},
		{Role: "tool", ToolCallID: "toolu_b", Content: "25C"},
		{Role: "user", Content: "which is warmer?"},
	}
	if _, _, err := collect(t.Context(), c, &llm.Request{Messages: msgs, Tools: []api.Tool{weatherTool}}); err != nil {
		t.Fatal(err)
	}
	sent := lastBody(t, s)["messages"].([]any)
	if len(sent) != 3 {
		t.Fatalf("sent %d messages: %v", len(sent), sent)
	}
	turn := sent[2].(map[string]any)["content"].([]any)
	if len(turn) != 3 || turn[0].(map[string]any)["tool_use_id"] != "toolu_a" || turn[1].(map[string]any)["tool_use_id"] != "toolu_b" || turn[2].(map[string]any)["type"] != "text" {
		t.Fatalf("user turn sent as %v", turn)
	}
	if in := sent[1].(map[string]any)["content"].([]any)[1].(map[string]any)["input"]; fmt.Sprint(in) != "map[]" {
		t.Fatalf("empty arguments sent as %v", in)
	}
}

func TestToolChoice(t *testing.T) {
	s := newFake(t, fakeanthropic.Options{})
	c := newCore(t, Config{BaseURL: s.URL()})
	cases := []struct {
		choice string
		want   string
		calls  int
	}{
		{`"required"`, `{"type":"any"}`, 1},
		{`{"type":"function","function":{"name":"get_weather"}}`, `{"name":"get_weather","type":"tool"}`, 1},
		{`"none"`, `{"type":"none"}`, 0},
		{`"auto"`, `{"type":"auto"}`, 0},
	}
	for _, tc := range cases {
		res, ds, err := collect(t.Context(), c, &llm.Request{Messages: user("x"), Tools: []api.Tool{weatherTool}, ToolChoice: json.RawMessage(tc.choice)})
		if err != nil {
			t.Fatalf("%s: %v", tc.choice, err)
		}
		got, _ := json.Marshal(lastBody(t, s)["tool_choice"])
		if string(got) != tc.want || len(res.ToolCalls) != tc.calls {
			t.Fatalf("%s: sent %s, %d calls", tc.choice, got, len(res.ToolCalls))
		}
		if tc.calls == 1 && ds[0].ToolCalls == nil {
			t.Fatalf("%s: a forced call began with text: %+v", tc.choice, ds[0])
		}
	}
	_, _, err := collect(t.Context(), c, &llm.Request{Messages: user("x"), Tools: []api.Tool{weatherTool}, ToolChoice: json.RawMessage(`"sometimes"`)})
	wantKind(t, err, api.CallerBadRequest)
}

func TestToolWithoutArgumentsGetsAnObject(t *testing.T) {
	s := newFake(t, fakeanthropic.Options{})
	c := newCore(t, Config{BaseURL: s.URL()})
	noArgs := api.Tool{Type: "function", Function: api.FunctionDef{Name: "now"}}
	res, _, err := collect(t.Context(), c, &llm.Request{Messages: user("time?"), Tools: []api.Tool{noArgs}, ToolChoice: json.RawMessage(`"required"`)})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.ToolCalls) != 1 || res.ToolCalls[0].Function.Arguments != "{}" {
		t.Fatalf("result %+v", res)
	}
}

func TestJSONOutput(t *testing.T) {
	s := newFake(t, fakeanthropic.Options{})
	c := newCore(t, Config{BaseURL: s.URL()})
	schema := json.RawMessage(`{"name":"answer","strict":true,"schema":{"type":"object","properties":{"answer":{"type":"string"}},"required":["answer"],"additionalProperties":false}}`)
	res, _, err := collect(t.Context(), c, &llm.Request{Messages: user("json please"), ResponseFormat: &api.ResponseFormat{Type: "json_schema", JSONSchema: schema}})
	if err != nil {
		t.Fatal(err)
	}
	var v map[string]any
	if json.Unmarshal([]byte(res.Text), &v) != nil || v["answer"] == nil {
		t.Fatalf("output %q does not fit the schema", res.Text)
	}
	format := lastBody(t, s)["output_config"].(map[string]any)["format"].(map[string]any)
	if format["type"] != "json_schema" || format["schema"].(map[string]any)["required"] == nil || format["name"] != nil {
		t.Fatalf("format sent as %v", format)
	}

	if _, _, err := collect(t.Context(), c, &llm.Request{Messages: user("json please"), ResponseFormat: &api.ResponseFormat{Type: "json_object"}}); err != nil {
		t.Fatal(err)
	}
	sys, _ := json.Marshal(lastBody(t, s)["system"])
	if !strings.Contains(string(sys), "JSON object") {
		t.Fatalf("json_object sent no instruction: %s", sys)
	}
	for _, rf := range []*api.ResponseFormat{{Type: "yaml"}, {Type: "json_schema"}, {Type: "json_schema", JSONSchema: json.RawMessage(`{"name":"x"}`)}} {
		_, _, err := collect(t.Context(), c, &llm.Request{Messages: user("x"), ResponseFormat: rf})
		wantKind(t, err, api.CallerBadRequest)
	}
}

type partial struct {
	text string
	n    int
}

// A call stopped after k tokens and continued from a prefill of what it had produced
// joins to the uninterrupted answer, whether or not the partial text ends in a space
// (which the API refuses at the end of a prefill).
func TestResumeJoinsToUninterrupted(t *testing.T) {
	s := newFake(t, fakeanthropic.Options{DefaultTokens: 20, TokenDelay: time.Millisecond})
	c := newCore(t, Config{BaseURL: s.URL(), Resume: true})
	msgs := []api.Message{{Role: "system", Content: "sys"}, {Role: "user", Content: "write a story"}}
	full, _, err := collect(t.Context(), c, &llm.Request{Messages: msgs})
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []int{1, 7, 19} {
		preempt := errors.New("preempted")
		ctx, cancel := context.WithCancelCause(t.Context())
		var so partial
		_, err := c.Generate(ctx, &llm.Request{Messages: msgs}, func(d llm.Delta) {
			so.text += d.Text
			if so.n++; so.n == k {
				cancel(preempt)
			}
		})
		cancel(nil)
		wantKind(t, err, api.CallerCancelled)
		if !errors.Is(err, preempt) || so.n != k {
			t.Fatalf("k=%d: err %v, %d deltas", k, err, so.n)
		}
		for _, prefix := range []string{so.text, so.text + " "} {
			res, _, err := collect(t.Context(), c, &llm.Request{Messages: msgs, Resume: prefix})
			if err != nil {
				t.Fatalf("k=%d prefix %q: %v", k, prefix, err)
			}
			if prefix+res.Text != full.Text {
				t.Fatalf("k=%d: %q + %q != %q", k, prefix, res.Text, full.Text)
			}
			sent := lastBody(t, s)["messages"].([]any)
			last := sent[len(sent)-1].(map[string]any)
			if last["role"] != "assistant" || last["content"].([]any)[0].(map[string]any)["text"] != so.text {
				t.Fatalf("prefill sent as %v", last)
			}
		}
	}
}

func TestResumeRefusedWhenOff(t *testing.T) {
	s := newFake(t, fakeanthropic.Options{})
	c := newCore(t, Config{BaseURL: s.URL()})
	if c.Capabilities().Resume {
		t.Fatal("resume on by default")
	}
	_, _, err := collect(t.Context(), c, &llm.Request{Messages: user("x"), Resume: "partial"})
	wantKind(t, err, api.KernelInternal)
	if s.Requests() != 0 {
		t.Fatal("a prefill was sent to a core configured without resume")
	}
}

func TestPrefillRefusedByModel(t *testing.T) {
	s := newFake(t, fakeanthropic.Options{RejectPrefill: true})
	c := newCore(t, Config{Name: "claude-new", BaseURL: s.URL(), Resume: true})
	_, _, err := collect(t.Context(), c, &llm.Request{Messages: user("x"), Resume: "partial"})
	e := wantKind(t, err, api.BackendRejected)
	if !strings.Contains(e.Message, "resume: false") || !strings.Contains(e.Message, "prefill") {
		t.Fatalf("message %q should say to turn resume off", e.Message)
	}
}

func TestFaultsClassified(t *testing.T) {
	cases := []struct {
		name  string
		fault fakegen.Fault
		kind  api.Kind
		after time.Duration
		msg   string
	}{
		{"429", fakegen.Fault{Kind: fakegen.RateLimited, RetryAfter: 3 * time.Second}, api.BackendRateLimited, 3 * time.Second, "rate limit"},
		{"529", fakegen.Fault{Kind: fakegen.Overloaded}, api.BackendOverloaded, 0, "overloaded_error"},
		{"500", fakegen.Fault{Kind: fakegen.Internal}, api.BackendUnavailable, 0, "api_error"},
		{"504", fakegen.Fault{Kind: fakegen.Status, Status: 504}, api.BackendTimeout, 0, "timeout_error"},
		{"400", fakegen.Fault{Kind: fakegen.Status, Status: 400, Message: "prompt is too long"}, api.BackendRejected, 0, "prompt is too long"},
		{"403", fakegen.Fault{Kind: fakegen.Status, Status: 403}, api.BackendRejected, 0, "api_key"},
		{"disconnect", fakegen.Fault{Kind: fakegen.Disconnect, AfterTokens: 3}, api.BackendUnavailable, 0, "stream ended"},
		{"error event", fakegen.Fault{Kind: fakegen.StreamError, AfterTokens: 2}, api.BackendOverloaded, 0, "Overloaded"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := newFake(t, fakeanthropic.Options{})
			c := newCore(t, Config{BaseURL: s.URL()})
			s.InjectFault(tc.fault)
			res, ds, err := collect(t.Context(), c, &llm.Request{Messages: user("x")})
			if res != nil {
				t.Fatalf("result %+v with error %v", res, err)
			}
			e := wantKind(t, err, tc.kind)
			if e.RetryAfter != tc.after || !strings.Contains(e.Error(), tc.msg) {
				t.Fatalf("error %v (RetryAfter %v), want %q and %v", e, e.RetryAfter, tc.msg, tc.after)
			}
			if s.Requests() != 1 {
				t.Fatalf("upstream saw %d requests: the SDK retried", s.Requests())
			}
			if tc.fault.AfterTokens > 0 && len(ds) != tc.fault.AfterTokens {
				t.Fatalf("%d deltas before the fault, want %d", len(ds), tc.fault.AfterTokens)
			}
		})
	}
}

func TestTimeoutsAndCancellation(t *testing.T) {
	s := newFake(t, fakeanthropic.Options{})
	c := newCore(t, Config{BaseURL: s.URL(), IdleTimeout: 200 * time.Millisecond})
	s.InjectFault(fakegen.Fault{Kind: fakegen.Hang})
	_, _, err := collect(t.Context(), c, &llm.Request{Messages: user("x")})
	if e := wantKind(t, err, api.BackendTimeout); !errors.Is(e, upstream.ErrIdle) {
		t.Fatalf("err %v is not the idle timeout", err)
	}

	slow := newFake(t, fakeanthropic.Options{Latency: 5 * time.Second})
	c2 := newCore(t, Config{BaseURL: slow.URL()})
	cause := errors.New("agent killed")
	ctx, cancel := context.WithCancelCause(t.Context())
	time.AfterFunc(50*time.Millisecond, func() { cancel(cause) })
	_, _, err = collect(ctx, c2, &llm.Request{Messages: user("x")})
	if wantKind(t, err, api.CallerCancelled); !errors.Is(err, cause) {
		t.Fatalf("err %v does not wrap the cause", err)
	}
	dctx, dcancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer dcancel()
	_, _, err = collect(dctx, c2, &llm.Request{Messages: user("x")})
	if wantKind(t, err, api.PolicyTimeout); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err %v does not wrap the deadline", err)
	}
}

func TestConnectionRefusedAndHealth(t *testing.T) {
	s := newFake(t, fakeanthropic.Options{Model: "claude-x", APIKey: "k"})
	c := newCore(t, Config{Name: "claude-x", BaseURL: s.URL() + "/v1", APIKey: "k"})
	ms, err := c.ListModels(t.Context())
	if err != nil || len(ms) != 1 || ms[0].ID != "claude-x" || ms[0].OwnedBy != "anthropic" {
		t.Fatalf("models %+v, %v", ms, err)
	}
	bad := newCore(t, Config{BaseURL: s.URL(), APIKey: "wrong"})
	wantKind(t, bad.Health(t.Context()), api.BackendRejected)

	gone := fakeanthropic.New(fakeanthropic.Options{})
	url := gone.URL()
	gone.Close()
	c3 := newCore(t, Config{BaseURL: url})
	wantKind(t, c3.Health(t.Context()), api.BackendUnavailable)
	_, _, err = collect(t.Context(), c3, &llm.Request{Messages: user("x")})
	wantKind(t, err, api.BackendUnavailable)
}

func TestCloseEndsCalls(t *testing.T) {
	s := newFake(t, fakeanthropic.Options{})
	c, err := New(Config{Name: "m", BaseURL: s.URL()})
	if err != nil {
		t.Fatal(err)
	}
	s.InjectFault(fakegen.Fault{Kind: fakegen.Hang})
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
		t.Fatal("Close did not end the call")
	}
	_, _, err = collect(t.Context(), c, &llm.Request{Messages: user("x")})
	wantKind(t, err, api.KernelShuttingDown)
}

func rawServer(t *testing.T, handler http.HandlerFunc) *Core {
	t.Helper()
	srv := httptest.NewServer(handler)
	t.Cleanup(srv.Close)
	return newCore(t, Config{BaseURL: srv.URL})
}

func events(evs ...string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		for _, e := range evs {
			typ, data, _ := strings.Cut(e, " ")
			fmt.Fprintf(w, "event: %s\ndata: %s\n\n", typ, data)
		}
	}
}

const (
	evStart = `message_start {"type":"message_start","message":{"id":"m","type":"message","role":"assistant","model":"x","content":[],"stop_reason":null,"usage":{"input_tokens":3,"output_tokens":1}}}`
	evBlock = `content_block_start {"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}`
	evText  = `content_block_delta {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"hello"}}`
	evStop  = `content_block_stop {"type":"content_block_stop","index":0}`
	evDelta = `message_delta {"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"output_tokens":1}}`
)

func TestIncompleteStreams(t *testing.T) {
	cases := []struct {
		name string
		evs  []string
		kind api.Kind
		msg  string
	}{
		{"no message_delta", []string{evStart, evBlock, evText, evStop}, api.BackendUnavailable, "no stop_reason"},
		{"empty 200", nil, api.BackendUnavailable, "no stop_reason"},
		{"malformed event", []string{evStart, `content_block_delta {"type":"content_block_delta","index":0,"delta":`}, api.BackendBadResponse, "malformed"},
		{"api_error event", []string{evStart, `error {"type":"error","error":{"type":"api_error","message":"engine died"}}`}, api.BackendUnavailable, "engine died"},
		{"unknown error event", []string{evStart, `error {"type":"error","error":{"type":"mystery","message":"boom"}}`}, api.BackendUnavailable, "boom"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := rawServer(t, events(tc.evs...))
			_, _, err := collect(t.Context(), c, &llm.Request{Messages: user("x")})
			if e := wantKind(t, err, tc.kind); !strings.Contains(e.Error(), tc.msg) {
				t.Fatalf("error %q lacks %q", e.Error(), tc.msg)
			}
		})
	}
	c := rawServer(t, events(evStart, evBlock, evText, evStop, evDelta))
	res, _, err := collect(t.Context(), c, &llm.Request{Messages: user("x")})
	if err != nil || res.Text != "hello" || res.Usage.PromptTokens != 3 {
		t.Fatalf("res %+v err %v", res, err)
	}
}

func TestProxyErrorBodies(t *testing.T) {
	c := rawServer(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Retry-After", "7")
		w.WriteHeader(http.StatusServiceUnavailable)
		io.WriteString(w, "<html>upstream busy</html>")
	})
	_, _, err := collect(t.Context(), c, &llm.Request{Messages: user("x")})
	if e := wantKind(t, err, api.BackendOverloaded); e.RetryAfter != 7*time.Second || !strings.Contains(e.Message, "upstream busy") {
		t.Fatalf("error %v RetryAfter %v", e, e.RetryAfter)
	}
}

func TestTranslationErrors(t *testing.T) {
	s := newFake(t, fakeanthropic.Options{})
	c := newCore(t, Config{BaseURL: s.URL()})
	bad := []*llm.Request{
		{Messages: []api.Message{{Role: "wizard", Content: "x"}}},
		{Messages: []api.Message{{Role: "system", Content: "only a system prompt"}}},
		{Messages: user("x"), Tools: []api.Tool{{Function: api.FunctionDef{Name: ""}}}},
		{Messages: user("x"), Tools: []api.Tool{{Function: api.FunctionDef{Name: "f", Parameters: json.RawMessage(`{`)}}}},
		{Messages: []api.Message{{Role: "user", Content: "x"}, {Role: "assistant", ToolCalls: []api.ToolCall{{ID: "1", Function: api.FunctionCall{Name: "f", Arguments: "[1]"}}}}}},
		{Messages: []api.Message{{Role: "tool", Content: "x"}}},
	}
	for i, req := range bad {
		_, _, err := collect(t.Context(), c, req)
		wantKind(t, err, api.CallerBadRequest)
		if s.Requests() != 0 {
			t.Fatalf("case %d: a malformed request was sent", i)
		}
	}
}

func TestConcurrentCalls(t *testing.T) {
	s := newFake(t, fakeanthropic.Options{DefaultTokens: 10, TokenDelay: time.Millisecond})
	c := newCore(t, Config{BaseURL: s.URL(), MaxInflight: 8})
	errs := make(chan error, 16)
	for i := range 16 {
		go func() {
			res, ds, err := collect(t.Context(), c, &llm.Request{Messages: user(fmt.Sprint("question ", i))})
			switch {
			case err != nil:
				errs <- err
			case len(strings.Fields(res.Text)) != 10 || joinText(ds) != res.Text:
				errs <- fmt.Errorf("call %d: %q", i, res.Text)
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
