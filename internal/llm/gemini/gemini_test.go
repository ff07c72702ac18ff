package gemini

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
	"github.com/aios-go/aios/internal/testfakes/fakegemini"
	"github.com/aios-go/aios/internal/testfakes/fakegen"
	"github.com/aios-go/aios/internal/testleak"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m, testleak.Ignore()...) }

func newFake(t *testing.T, opts fakegemini.Options) *fakegemini.Server {
	t.Helper()
	s := fakegemini.New(opts)
	t.Cleanup(s.Close)
	return s
}

func newCore(t *testing.T, cfg Config) *Core {
	t.Helper()
	if cfg.Name == "" {
		cfg.Name = fakegemini.DefaultModel
	}
	if cfg.APIKey == "" {
		cfg.APIKey = "key"
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

func lastBody(t *testing.T, s *fakegemini.Server) map[string]any {
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

func TestBaseURLAndVersion(t *testing.T) {
	cases := []struct{ in, base, version string }{
		{"", "https://generativelanguage.googleapis.com/", "v1beta"},
		{"https://generativelanguage.googleapis.com/v1beta", "https://generativelanguage.googleapis.com/", "v1beta"},
		{"http://proxy:8080/gemini/v1/", "http://proxy:8080/gemini/", "v1"},
	}
	for _, tc := range cases {
		c := newCore(t, Config{BaseURL: tc.in})
		if c.base != tc.base || c.cfg.APIVersion != tc.version {
			t.Errorf("%q -> %q %q, want %q %q", tc.in, c.base, c.cfg.APIVersion, tc.base, tc.version)
		}
	}
	if _, err := New(Config{BaseURL: "ftp://x"}); err == nil {
		t.Error("ftp URL accepted")
	}
}

func TestPlainChat(t *testing.T) {
	s := newFake(t, fakegemini.Options{Model: "gemini-x", APIKey: "gk"})
	c := newCore(t, Config{Name: "gemini-x", BaseURL: s.URL(), APIKey: "gk"})
	temp := 0.3
	msgs := []api.Message{{Role: "system", Content: "be brief"}, {Role: "user", Content: "hello"}}
	res, ds, err := collect(t.Context(), c, &llm.Request{Messages: msgs, Temperature: &temp, MaxTokens: 100})
	if err != nil {
		t.Fatal(err)
	}
	var joined string
	for _, d := range ds {
		joined += d.Text
	}
	if len(ds) != 16 || joined != res.Text || res.FinishReason != "stop" || len(strings.Fields(res.Text)) != 16 {
		t.Fatalf("result %+v from %d deltas", res, len(ds))
	}
	if res.Usage.PromptTokens != 4+1+2 || res.Usage.CompletionTokens != 16 {
		t.Fatalf("usage %+v", res.Usage)
	}
	body := lastBody(t, s)
	gc := body["generationConfig"].(map[string]any)
	if gc["maxOutputTokens"] != 100.0 || fmt.Sprintf("%.2f", gc["temperature"]) != "0.30" {
		t.Fatalf("generationConfig %v", gc)
	}
	si := body["systemInstruction"].(map[string]any)["parts"].([]any)[0].(map[string]any)
	if si["text"] != "be brief" {
		t.Fatalf("system instruction %v", body["systemInstruction"])
	}
	if h := s.LastHeader(); h.Get("x-goog-api-key") != "gk" {
		t.Fatalf("headers %v", h)
	}
	if s.Requests() != 1 {
		t.Fatalf("%d requests", s.Requests())
	}
}

func TestEnvironmentDoesNotLeak(t *testing.T) {
	t.Setenv("GEMINI_API_KEY", "from-env")
	t.Setenv("GOOGLE_API_KEY", "from-env-too")
	t.Setenv("GOOGLE_GENAI_USE_VERTEXAI", "true")
	t.Setenv("GOOGLE_GEMINI_BASE_URL", "http://127.0.0.1:1/")
	s := newFake(t, fakegemini.Options{})
	c, err := New(Config{Name: "m", BaseURL: s.URL()})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, _, err := collect(t.Context(), c, &llm.Request{Messages: user("x")}); err != nil {
		t.Fatal(err)
	}
	if got := s.LastHeader().Get("x-goog-api-key"); got != placeholderAPIKey {
		t.Fatalf("key sent %q, want the placeholder rather than the environment's", got)
	}
}

var weatherTool = api.Tool{Type: "function", Function: api.FunctionDef{
	Name:        "get_weather",
	Description: "Weather for a city",
	Parameters:  json.RawMessage(`{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]}`),
}}

// An agent loop through the backend against a Gemini 3 style upstream: the model calls
// the tool with a signed call, the agent sends the call back in OpenAI's shape (which
// has no room for the signature) with the result, and the model answers. The signature
// must come back byte for byte or the upstream refuses the turn.
func TestToolCallingConversation(t *testing.T) {
	s := newFake(t, fakegemini.Options{Model: "gemini-3-pro", AutoToolCall: true, RequireThoughtSignatures: true})
	c := newCore(t, Config{Name: "gemini-3-pro", BaseURL: s.URL()})
	msgs := []api.Message{{Role: "system", Content: "use tools"}, {Role: "user", Content: "weather in Paris?"}}
	res, ds, err := collect(t.Context(), c, &llm.Request{Messages: msgs, Tools: []api.Tool{weatherTool}})
	if err != nil {
		t.Fatal(err)
	}
	if res.FinishReason != "tool_calls" || len(res.ToolCalls) != 1 || res.Text != "" {
		t.Fatalf("first turn %+v", res)
	}
	call := res.ToolCalls[0]
	var args map[string]any
	if call.Type != "function" || call.Function.Name != "get_weather" || !strings.HasPrefix(call.ID, mintPrefix) ||
		json.Unmarshal([]byte(call.Function.Arguments), &args) != nil || args["city"] == nil {
		t.Fatalf("tool call %+v", call)
	}
	if len(ds) != 1 || ds[0].ToolCalls[0].ID != call.ID || *ds[0].ToolCalls[0].Index != 0 || ds[0].ToolCalls[0].Function.Arguments != call.Function.Arguments {
		t.Fatalf("deltas %+v", ds)
	}
	decl := lastBody(t, s)["tools"].([]any)[0].(map[string]any)["functionDeclarations"].([]any)[0].(map[string]any)
	if decl["name"] != "get_weather" || decl["parametersJsonSchema"].(map[string]any)["required"] == nil {
		t.Fatalf("declaration sent as %v", decl)
	}

	msgs = append(msgs,
		api.Message{Role: "assistant", ToolCalls: res.ToolCalls},
		api.Message{Role: "tool", ToolCallID: call.ID, Content: `{"temp_c":21}`})
	res2, _, err := collect(t.Context(), c, &llm.Request{Messages: msgs, Tools: []api.Tool{weatherTool}})
	if err != nil {
		t.Fatal(err)
	}
	if res2.FinishReason != "stop" || res2.Text == "" || len(res2.ToolCalls) != 0 {
		t.Fatalf("second turn %+v", res2)
	}
	contents := lastBody(t, s)["contents"].([]any)
	model := contents[1].(map[string]any)
	fc := model["parts"].([]any)[0].(map[string]any)
	if model["role"] != "model" || fc["functionCall"].(map[string]any)["id"] != nil ||
		string(fakegemini.DecodeSignature(fc["thoughtSignature"].(string)))[:4] != "sig:" {
		t.Fatalf("model turn sent as %v", model)
	}
	resp := contents[2].(map[string]any)["parts"].([]any)[0].(map[string]any)["functionResponse"].(map[string]any)
	if resp["name"] != "get_weather" || resp["response"].(map[string]any)["temp_c"] != 21.0 {
		t.Fatalf("function response sent as %v", resp)
	}
}

// Calls the core never saw (history from elsewhere) get Google's placeholder signature
// on Gemini 3, and none on older models, which never asked for one.
func TestUnknownCallsSignatures(t *testing.T) {
	history := []api.Message{
		{Role: "user", Content: "compare Paris and Rome"},
		{Role: "assistant", ToolCalls: []api.ToolCall{
			{ID: "call_a", Type: "function", Function: api.FunctionCall{Name: "get_weather", Arguments: `{"city":"Paris"}`}},
			{ID: "call_b", Type: "function", Function: api.FunctionCall{Name: "get_weather", Arguments: ""}},
		}},
		{Role: "tool", ToolCallID: "call_a", Content: "21C"},
		{Role: "tool", ToolCallID: "call_b", Content: "25C"},
		{Role: "user", Content: "which is warmer?"},
	}
	s3 := newFake(t, fakegemini.Options{Model: "gemini-3-flash", RequireThoughtSignatures: true})
	c3 := newCore(t, Config{Name: "gemini-3-flash", BaseURL: s3.URL()})
	if _, _, err := collect(t.Context(), c3, &llm.Request{Messages: history, Tools: []api.Tool{weatherTool}}); err != nil {
		t.Fatal(err)
	}
	contents := lastBody(t, s3)["contents"].([]any)
	if len(contents) != 4 {
		t.Fatalf("sent %d contents: %v", len(contents), contents)
	}
	for _, p := range contents[1].(map[string]any)["parts"].([]any) {
		part := p.(map[string]any)
		if string(fakegemini.DecodeSignature(part["thoughtSignature"].(string))) != skipSignature || part["functionCall"].(map[string]any)["id"] != "call_a" && part["functionCall"].(map[string]any)["id"] != "call_b" {
			t.Fatalf("part sent as %v", part)
		}
	}
	if parts := contents[2].(map[string]any)["parts"].([]any); len(parts) != 2 {
		t.Fatalf("both responses must share one content: %v", contents[2])
	}

	s2 := newFake(t, fakegemini.Options{Model: "gemini-2.5-flash"})
	c2 := newCore(t, Config{Name: "gemini-2.5-flash", BaseURL: s2.URL()})
	if _, _, err := collect(t.Context(), c2, &llm.Request{Messages: history, Tools: []api.Tool{weatherTool}}); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(s2.LastBody()), "thoughtSignature") {
		t.Fatalf("a signature was made up for an older model: %s", s2.LastBody())
	}

	_, _, err := collect(t.Context(), c2, &llm.Request{Messages: []api.Message{{Role: "user", Content: "x"}, {Role: "tool", ToolCallID: "nobody", Content: "r"}}})
	wantKind(t, err, api.CallerBadRequest)
}

func TestNeedsSignatures(t *testing.T) {
	for model, want := range map[string]bool{
		"gemini-3-pro-preview": true, "models/gemini-3.1-flash": true, "gemini-4-argon": true, "gemini-10": true,
		"gemini-2.5-flash": false, "gemini-1.5-pro": false, "gemma-3": false, "gemini-pro": false,
	} {
		if got := needsSignatures(model); got != want {
			t.Errorf("needsSignatures(%q) = %v", model, got)
		}
	}
}

func TestVertexStyleIDsGoBack(t *testing.T) {
	s := newFake(t, fakegemini.Options{FunctionCallIDs: true})
	c := newCore(t, Config{BaseURL: s.URL()})
	res, _, err := collect(t.Context(), c, &llm.Request{Messages: user("x"), Tools: []api.Tool{weatherTool}, ToolChoice: json.RawMessage(`"required"`)})
	if err != nil {
		t.Fatal(err)
	}
	id := res.ToolCalls[0].ID
	if !strings.HasPrefix(id, "fc-") {
		t.Fatalf("upstream id not kept: %q", id)
	}
	msgs := append(user("x"), api.Message{Role: "assistant", ToolCalls: res.ToolCalls}, api.Message{Role: "tool", ToolCallID: id, Content: "plain text"})
	if _, _, err := collect(t.Context(), c, &llm.Request{Messages: msgs, Tools: []api.Tool{weatherTool}}); err != nil {
		t.Fatal(err)
	}
	resp := lastBody(t, s)["contents"].([]any)[2].(map[string]any)["parts"].([]any)[0].(map[string]any)["functionResponse"].(map[string]any)
	if resp["id"] != id || resp["response"].(map[string]any)["output"] != "plain text" {
		t.Fatalf("response sent as %v", resp)
	}
}

func TestToolChoice(t *testing.T) {
	s := newFake(t, fakegemini.Options{})
	c := newCore(t, Config{BaseURL: s.URL()})
	other := api.Tool{Type: "function", Function: api.FunctionDef{Name: "get_time"}}
	cases := []struct {
		choice, want, called string
	}{
		{`"required"`, `{"mode":"ANY"}`, "get_weather"},
		{`{"type":"function","function":{"name":"get_time"}}`, `{"allowedFunctionNames":["get_time"],"mode":"ANY"}`, "get_time"},
		{`"none"`, `{"mode":"NONE"}`, ""},
		{`"auto"`, `{"mode":"AUTO"}`, ""},
	}
	for _, tc := range cases {
		res, _, err := collect(t.Context(), c, &llm.Request{Messages: user("x"), Tools: []api.Tool{weatherTool, other}, ToolChoice: json.RawMessage(tc.choice)})
		if err != nil {
			t.Fatalf("%s: %v", tc.choice, err)
		}
		got, _ := json.Marshal(lastBody(t, s)["toolConfig"].(map[string]any)["functionCallingConfig"])
		called := ""
		if len(res.ToolCalls) > 0 {
			called = res.ToolCalls[0].Function.Name
		}
		if string(got) != tc.want || called != tc.called {
			t.Fatalf("%s: sent %s, called %q", tc.choice, got, called)
		}
	}
	// A function without parameters gets no schema and an empty arguments object back.
	res, _, err := collect(t.Context(), c, &llm.Request{Messages: user("x"), Tools: []api.Tool{other}, ToolChoice: json.RawMessage(`"required"`)})
	if err != nil || res.ToolCalls[0].Function.Arguments != "{}" {
		t.Fatalf("no-argument call %+v, %v", res, err)
	}
}

func TestJSONOutput(t *testing.T) {
	s := newFake(t, fakegemini.Options{})
	c := newCore(t, Config{BaseURL: s.URL()})
	schema := json.RawMessage(`{"name":"answer","schema":{"type":"object","properties":{"answer":{"type":"string"},"score":{"type":"integer"}},"required":["answer","score"]}}`)
	res, _, err := collect(t.Context(), c, &llm.Request{Messages: user("json please"), ResponseFormat: &api.ResponseFormat{Type: "json_schema", JSONSchema: schema}})
	if err != nil {
		t.Fatal(err)
	}
	var v map[string]any
	if json.Unmarshal([]byte(res.Text), &v) != nil || v["answer"] == nil || v["score"] == nil {
		t.Fatalf("output %q does not fit the schema", res.Text)
	}
	gc := lastBody(t, s)["generationConfig"].(map[string]any)
	if gc["responseMimeType"] != "application/json" || gc["responseJsonSchema"].(map[string]any)["required"] == nil {
		t.Fatalf("generationConfig %v", gc)
	}
	res, _, err = collect(t.Context(), c, &llm.Request{Messages: user("json please"), ResponseFormat: &api.ResponseFormat{Type: "json_object"}})
	if err != nil || json.Unmarshal([]byte(res.Text), &v) != nil {
		t.Fatalf("json_object: %q %v", res.Text, err)
	}
	for _, rf := range []*api.ResponseFormat{{Type: "yaml"}, {Type: "json_schema"}} {
		_, _, err := collect(t.Context(), c, &llm.Request{Messages: user("x"), ResponseFormat: rf})
		wantKind(t, err, api.CallerBadRequest)
	}
}

func TestUsageAndMaxTokens(t *testing.T) {
	s := newFake(t, fakegemini.Options{})
	c := newCore(t, Config{BaseURL: s.URL()})
	msgs := user("one two three")
	res, _, err := collect(t.Context(), c, &llm.Request{Messages: msgs, MaxTokens: 5})
	if err != nil {
		t.Fatal(err)
	}
	if res.FinishReason != "length" || res.Usage.CompletionTokens != 5 || res.Usage.PromptTokens != 7 || res.Usage.TotalTokens != 12 {
		t.Fatalf("result %+v", res)
	}
	next := append(msgs, api.Message{Role: "assistant", Content: api.Content(res.Text)}, api.Message{Role: "user", Content: "more"})
	res2, _, err := collect(t.Context(), c, &llm.Request{Messages: next})
	if err != nil || res2.Usage.PromptTokensDetails.CachedTokens != 7 {
		t.Fatalf("second turn %+v %v", res2, err)
	}
}

func TestResumeIsNotOffered(t *testing.T) {
	s := newFake(t, fakegemini.Options{})
	c := newCore(t, Config{BaseURL: s.URL()})
	if c.Capabilities().Resume {
		t.Fatal("gemini claims to resume")
	}
	_, _, err := collect(t.Context(), c, &llm.Request{Messages: user("x"), Resume: "partial"})
	wantKind(t, err, api.KernelInternal)
	if s.Requests() != 0 {
		t.Fatal("a resume was sent")
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
		{"429", fakegen.Fault{Kind: fakegen.RateLimited, RetryAfter: 1500 * time.Millisecond}, api.BackendRateLimited, 1500 * time.Millisecond, "RESOURCE_EXHAUSTED"},
		{"503", fakegen.Fault{Kind: fakegen.Overloaded}, api.BackendOverloaded, 0, "overloaded"},
		{"500", fakegen.Fault{Kind: fakegen.Internal}, api.BackendUnavailable, 0, "INTERNAL"},
		{"504", fakegen.Fault{Kind: fakegen.Status, Status: 504}, api.BackendTimeout, 0, "DEADLINE_EXCEEDED"},
		{"400", fakegen.Fault{Kind: fakegen.Status, Status: 400, Message: "token limit exceeded"}, api.BackendRejected, 0, "token limit exceeded"},
		{"disconnect", fakegen.Fault{Kind: fakegen.Disconnect, AfterTokens: 3}, api.BackendUnavailable, 0, "stream ended"},
		{"error chunk", fakegen.Fault{Kind: fakegen.StreamError, AfterTokens: 2}, api.BackendOverloaded, 0, "overloaded"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := newFake(t, fakegemini.Options{})
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

func TestWrongKeyAndHealth(t *testing.T) {
	s := newFake(t, fakegemini.Options{Model: "gemini-x", APIKey: "right"})
	c := newCore(t, Config{Name: "gemini-x", BaseURL: s.URL(), APIKey: "right"})
	ms, err := c.ListModels(t.Context())
	if err != nil || len(ms) != 1 || ms[0].ID != "gemini-x" || ms[0].OwnedBy != "google" {
		t.Fatalf("models %+v, %v", ms, err)
	}
	bad := newCore(t, Config{Name: "gemini-x", BaseURL: s.URL(), APIKey: "wrong"})
	e := wantKind(t, bad.Health(t.Context()), api.BackendRejected)
	if !strings.Contains(e.Message, "api_key") {
		t.Fatalf("message %q", e.Message)
	}
	_, _, err = collect(t.Context(), bad, &llm.Request{Messages: user("x")})
	wantKind(t, err, api.BackendRejected)

	gone := fakegemini.New(fakegemini.Options{})
	url := gone.URL()
	gone.Close()
	c3 := newCore(t, Config{BaseURL: url})
	wantKind(t, c3.Health(t.Context()), api.BackendUnavailable)
}

func TestTimeoutsAndCancellation(t *testing.T) {
	s := newFake(t, fakegemini.Options{})
	c := newCore(t, Config{BaseURL: s.URL(), IdleTimeout: 200 * time.Millisecond})
	s.InjectFault(fakegen.Fault{Kind: fakegen.Hang})
	_, _, err := collect(t.Context(), c, &llm.Request{Messages: user("x")})
	if e := wantKind(t, err, api.BackendTimeout); !errors.Is(e, upstream.ErrIdle) {
		t.Fatalf("err %v is not the idle timeout", err)
	}
	slow := newFake(t, fakegemini.Options{Latency: 5 * time.Second})
	c2 := newCore(t, Config{BaseURL: slow.URL()})
	cause := errors.New("agent killed")
	ctx, cancel := context.WithCancelCause(t.Context())
	time.AfterFunc(50*time.Millisecond, func() { cancel(cause) })
	_, _, err = collect(ctx, c2, &llm.Request{Messages: user("x")})
	if wantKind(t, err, api.CallerCancelled); !errors.Is(err, cause) {
		t.Fatalf("err %v does not wrap the cause", err)
	}
}

func TestCloseEndsCalls(t *testing.T) {
	s := newFake(t, fakegemini.Options{})
	c, err := New(Config{Name: "m", APIKey: "k", BaseURL: s.URL()})
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
}

func rawServer(t *testing.T, handler http.HandlerFunc) *Core {
	t.Helper()
	srv := httptest.NewServer(handler)
	t.Cleanup(srv.Close)
	return newCore(t, Config{BaseURL: srv.URL})
}

func chunks(cs ...string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		for _, c := range cs {
			fmt.Fprintf(w, "data: %s\r\n\r\n", c)
		}
	}
}

const (
	chunkText = `{"candidates":[{"content":{"parts":[{"text":"hello"}],"role":"model"},"index":0}]}`
	chunkStop = `{"candidates":[{"content":{"parts":[{"text":" world"}],"role":"model"},"finishReason":"STOP","index":0}],"usageMetadata":{"promptTokenCount":3,"candidatesTokenCount":2,"thoughtsTokenCount":5,"totalTokenCount":10}}`
)

func TestStreamShapes(t *testing.T) {
	cases := []struct {
		name string
		cs   []string
		kind api.Kind
		msg  string
	}{
		{"no finishReason", []string{chunkText}, api.BackendUnavailable, "no finishReason"},
		{"empty 200", nil, api.BackendUnavailable, "no finishReason"},
		{"malformed chunk", []string{chunkText, `{"candidates":[`}, api.BackendBadResponse, "malformed"},
		{"blocked prompt", []string{`{"promptFeedback":{"blockReason":"SAFETY"}}`}, api.BackendRejected, "SAFETY"},
		{"malformed call", []string{`{"candidates":[{"content":{"parts":[{"text":""}],"role":"model"},"finishReason":"MALFORMED_FUNCTION_CALL","index":0}]}`}, api.BackendBadResponse, "invalid function call"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := rawServer(t, chunks(tc.cs...))
			_, _, err := collect(t.Context(), c, &llm.Request{Messages: user("x")})
			if e := wantKind(t, err, tc.kind); !strings.Contains(e.Error(), tc.msg) {
				t.Fatalf("error %q lacks %q", e.Error(), tc.msg)
			}
		})
	}
	// Thoughts are not the answer, but their tokens are output the key pays for.
	thought := `{"candidates":[{"content":{"parts":[{"text":"let me think","thought":true}],"role":"model"},"index":0}]}`
	c := rawServer(t, chunks(thought, chunkText, chunkStop))
	res, ds, err := collect(t.Context(), c, &llm.Request{Messages: user("x")})
	if err != nil || res.Text != "hello world" || len(ds) != 2 || res.Usage.CompletionTokens != 7 || res.Usage.TotalTokens != 10 {
		t.Fatalf("res %+v deltas %d err %v", res, len(ds), err)
	}
	safety := `{"candidates":[{"content":{"parts":[{"text":"x"}],"role":"model"},"finishReason":"SAFETY","index":0}]}`
	c = rawServer(t, chunks(safety))
	if res, _, err := collect(t.Context(), c, &llm.Request{Messages: user("x")}); err != nil || res.FinishReason != "content_filter" {
		t.Fatalf("safety stop: %+v %v", res, err)
	}
}

func TestRetryAfterHeaderWithoutRetryInfo(t *testing.T) {
	c := rawServer(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Retry-After", "4")
		w.WriteHeader(http.StatusTooManyRequests)
		io.WriteString(w, `{"error":{"code":429,"message":"quota","status":"RESOURCE_EXHAUSTED"}}`)
	})
	_, _, err := collect(t.Context(), c, &llm.Request{Messages: user("x")})
	if e := wantKind(t, err, api.BackendRateLimited); e.RetryAfter != 4*time.Second {
		t.Fatalf("RetryAfter %v", e.RetryAfter)
	}
	html := rawServer(t, func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusBadGateway)
		io.WriteString(w, "<html>bad gateway</html>")
	})
	_, _, err = collect(t.Context(), html, &llm.Request{Messages: user("x")})
	wantKind(t, err, api.BackendUnavailable)
}

func TestTranslationErrors(t *testing.T) {
	s := newFake(t, fakegemini.Options{})
	c := newCore(t, Config{BaseURL: s.URL()})
	bad := []*llm.Request{
		{Messages: []api.Message{{Role: "wizard", Content: "x"}}},
		{Messages: []api.Message{{Role: "system", Content: "only system"}}},
		{Messages: user("x"), Tools: []api.Tool{{Function: api.FunctionDef{Name: ""}}}},
		{Messages: user("x"), Tools: []api.Tool{{Function: api.FunctionDef{Name: "f", Parameters: json.RawMessage(`{`)}}}},
		{Messages: user("x"), ToolChoice: json.RawMessage(`"sometimes"`)},
		{Messages: []api.Message{{Role: "user", Content: "x"}, {Role: "assistant", ToolCalls: []api.ToolCall{{ID: "1", Function: api.FunctionCall{Name: "f", Arguments: "[1]"}}}}}},
	}
	for i, req := range bad {
		_, _, err := collect(t.Context(), c, req)
		wantKind(t, err, api.CallerBadRequest)
		if s.Requests() != 0 {
			t.Fatalf("case %d: a malformed request was sent", i)
		}
	}
}

func TestSignatureStoreBounded(t *testing.T) {
	st := &signatureStore{m: map[string][]byte{}}
	for i := range maxSignatures + 10 {
		st.put(fmt.Sprint(i), []byte{1})
	}
	if _, ok := st.get("0"); ok {
		t.Fatal("oldest signature kept past the bound")
	}
	if _, ok := st.get(fmt.Sprint(maxSignatures + 9)); !ok || len(st.m) != maxSignatures {
		t.Fatalf("store holds %d", len(st.m))
	}
}
