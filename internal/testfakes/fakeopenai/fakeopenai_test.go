package fakeopenai

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/aios-go/aios/api"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func newServer(t *testing.T, opts Options) *Server {
	t.Helper()
	s := New(opts)
	t.Cleanup(s.Close)
	return s
}

// post sends body to /v1/chat/completions with a client that closes its connections,
// so no keep-alive goroutine outlives the test.
func post(t *testing.T, ctx context.Context, s *Server, body any) *http.Response {
	t.Helper()
	b, err := json.Marshal(body)
	if err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.URL()+"/v1/chat/completions", bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	tr := &http.Transport{DisableKeepAlives: true}
	t.Cleanup(tr.CloseIdleConnections)
	res, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { res.Body.Close() })
	return res
}

func decodeCompletion(t *testing.T, res *http.Response) completion {
	t.Helper()
	if res.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(res.Body)
		t.Fatalf("status %d: %s", res.StatusCode, b)
	}
	var c completion
	if err := json.NewDecoder(res.Body).Decode(&c); err != nil {
		t.Fatal(err)
	}
	return c
}

type streamResult struct {
	chunks []api.ChatCompletionChunk
	text   string
	calls  map[int]*api.ToolCall
	finish string
	usage  *api.Usage
	done   bool
	err    error
}

// readStream parses SSE the way a strict client does: every event is "data: ..." and a
// blank line, and the stream must end with [DONE].
func readStream(t *testing.T, res *http.Response) streamResult {
	t.Helper()
	if res.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(res.Body)
		t.Fatalf("status %d: %s", res.StatusCode, b)
	}
	if ct := res.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/event-stream") {
		t.Fatalf("Content-Type = %q", ct)
	}
	r := streamResult{calls: map[int]*api.ToolCall{}}
	sc := bufio.NewScanner(res.Body)
	for sc.Scan() {
		line := sc.Text()
		if line == "" {
			continue
		}
		data, ok := strings.CutPrefix(line, "data: ")
		if !ok {
			t.Fatalf("line %q is not a data line", line)
		}
		if r.done {
			t.Fatalf("data after [DONE]: %q", line)
		}
		if data == "[DONE]" {
			r.done = true
			continue
		}
		var c api.ChatCompletionChunk
		if err := json.Unmarshal([]byte(data), &c); err != nil {
			t.Fatalf("chunk %q: %v", data, err)
		}
		if c.Object != "chat.completion.chunk" || c.ID == "" {
			t.Fatalf("chunk %q lacks object or id", data)
		}
		r.chunks = append(r.chunks, c)
		if c.Usage != nil {
			r.usage = c.Usage
		}
		for _, ch := range c.Choices {
			if ch.Delta.Content != nil {
				r.text += *ch.Delta.Content
			}
			for _, tc := range ch.Delta.ToolCalls {
				if tc.Index == nil {
					t.Fatalf("tool-call delta without index: %q", data)
				}
				acc := r.calls[*tc.Index]
				if acc == nil {
					acc = &api.ToolCall{}
					r.calls[*tc.Index] = acc
				}
				if tc.ID != "" {
					acc.ID, acc.Type = tc.ID, tc.Type
				}
				acc.Function.Name += tc.Function.Name
				acc.Function.Arguments += tc.Function.Arguments
			}
			if ch.FinishReason != nil {
				r.finish = *ch.FinishReason
			}
		}
	}
	r.err = sc.Err()
	return r
}

func user(text string) []api.Message {
	return []api.Message{{Role: "user", Content: api.Content(text)}}
}

func TestNonStreamingText(t *testing.T) {
	s := newServer(t, Options{})
	msgs := user("hello")
	c := decodeCompletion(t, post(t, t.Context(), s, map[string]any{"model": "m", "messages": msgs}))
	if c.Object != "chat.completion" || len(c.Choices) != 1 {
		t.Fatalf("completion = %+v", c)
	}
	want := Text(Seed(msgs), 0, 16)
	if got := c.Choices[0].Message.Content; got == nil || *got != want {
		t.Fatalf("content = %v, want %q", got, want)
	}
	if c.Choices[0].FinishReason != "stop" || c.Choices[0].Message.Role != "assistant" {
		t.Fatalf("choice = %+v", c.Choices[0])
	}
	if c.Usage == nil || c.Usage.CompletionTokens != 16 || c.Usage.PromptTokens != 5 || c.Usage.TotalTokens != 21 {
		t.Fatalf("usage = %+v", c.Usage)
	}
	if len(strings.Fields(want)) != 16 || !strings.HasSuffix(want, " ") {
		t.Fatalf("text %q is not 16 words each followed by a space", want)
	}
}

func TestStreamMatchesNonStream(t *testing.T) {
	s := newServer(t, Options{DefaultTokens: 7})
	msgs := user("stream please")
	c := decodeCompletion(t, post(t, t.Context(), s, map[string]any{"model": "m", "messages": msgs}))
	r := readStream(t, post(t, t.Context(), s, map[string]any{
		"model": "m", "messages": msgs, "stream": true, "stream_options": map[string]any{"include_usage": true},
	}))
	if !r.done || r.err != nil {
		t.Fatalf("stream ended without [DONE] (err %v)", r.err)
	}
	if r.text != *c.Choices[0].Message.Content {
		t.Fatalf("streamed %q, non-streamed %q", r.text, *c.Choices[0].Message.Content)
	}
	if r.finish != "stop" {
		t.Fatalf("finish = %q", r.finish)
	}
	last := r.chunks[len(r.chunks)-1]
	if last.Usage == nil || len(last.Choices) != 0 || last.Usage.CompletionTokens != 7 {
		t.Fatalf("last chunk = %+v, want usage only", last)
	}
	if first := r.chunks[0].Choices[0].Delta; first.Role != "assistant" {
		t.Fatalf("first delta = %+v, want the assistant role", first)
	}

	r = readStream(t, post(t, t.Context(), s, map[string]any{"model": "m", "messages": msgs, "stream": true}))
	if r.usage != nil {
		t.Fatalf("usage %+v sent without include_usage", r.usage)
	}
}

func TestMaxTokens(t *testing.T) {
	s := newServer(t, Options{})
	msgs := user("x")
	for _, field := range []string{"max_tokens", "max_completion_tokens"} {
		c := decodeCompletion(t, post(t, t.Context(), s, map[string]any{"model": "m", "messages": msgs, field: 3}))
		if got, want := *c.Choices[0].Message.Content, Text(Seed(msgs), 0, 3); got != want {
			t.Errorf("%s: content %q, want %q", field, got, want)
		}
		if c.Choices[0].FinishReason != "length" {
			t.Errorf("%s: finish %q, want length", field, c.Choices[0].FinishReason)
		}
	}
}

func TestContinuationJoinsToUninterrupted(t *testing.T) {
	s := newServer(t, Options{DefaultTokens: 12})
	msgs := []api.Message{{Role: "system", Content: "be brief"}, {Role: "user", Content: "tell me"}}
	full := Text(Seed(msgs), 0, 12)
	for _, k := range []int{0, 1, 5, 11, 12} {
		prefix := Text(Seed(msgs), 0, k)
		cont := append(append([]api.Message{}, msgs...), api.Message{Role: "assistant", Content: api.Content(prefix)})
		r := readStream(t, post(t, t.Context(), s, map[string]any{
			"model": "m", "messages": cont, "stream": true,
			"continue_final_message": true, "add_generation_prompt": false,
		}))
		if prefix+r.text != full {
			t.Errorf("k=%d: %q + %q != %q", k, prefix, r.text, full)
		}
		if r.finish != "stop" {
			t.Errorf("k=%d: finish %q", k, r.finish)
		}
	}
	// Without continue_final_message a trailing assistant message is ordinary context.
	cont := append(append([]api.Message{}, msgs...), api.Message{Role: "assistant", Content: "lorem "})
	c := decodeCompletion(t, post(t, t.Context(), s, map[string]any{"model": "m", "messages": cont}))
	if *c.Choices[0].Message.Content == Text(Seed(msgs), 1, 12) {
		t.Fatal("a trailing assistant message was continued without continue_final_message")
	}
	res := post(t, t.Context(), s, map[string]any{"model": "m", "messages": msgs, "continue_final_message": true})
	if res.StatusCode != http.StatusBadRequest {
		t.Fatalf("continuing a user message: status %d, want 400", res.StatusCode)
	}
}

var weatherTool = api.Tool{Type: "function", Function: api.FunctionDef{
	Name: "get_weather",
	Parameters: json.RawMessage(`{"type":"object","properties":{"city":{"type":"string"},` +
		`"days":{"type":"integer"},"unit":{"type":"string","enum":["c","f"]}},"required":["city"]}`),
}}

var clockTool = api.Tool{Type: "function", Function: api.FunctionDef{Name: "now"}}

func TestToolCalls(t *testing.T) {
	tools := []api.Tool{clockTool, weatherTool}
	cases := []struct {
		name     string
		opts     Options
		choice   any
		msgs     []api.Message
		wantTool string
	}{
		{"named", Options{}, map[string]any{"type": "function", "function": map[string]any{"name": "get_weather"}}, user("weather?"), "get_weather"},
		{"required", Options{}, "required", user("time?"), "now"},
		{"auto without AutoToolCall", Options{}, "auto", user("time?"), ""},
		{"absent with AutoToolCall", Options{AutoToolCall: true}, nil, user("time?"), "now"},
		{"none", Options{AutoToolCall: true}, "none", user("time?"), ""},
		{"auto after a tool result", Options{AutoToolCall: true}, "auto", []api.Message{
			{Role: "user", Content: "time?"},
			{Role: "assistant", ToolCalls: []api.ToolCall{{ID: "c1", Type: "function", Function: api.FunctionCall{Name: "now", Arguments: "{}"}}}},
			{Role: "tool", ToolCallID: "c1", Content: "noon"},
		}, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := newServer(t, tc.opts)
			body := map[string]any{"model": "m", "messages": tc.msgs, "tools": tools}
			if tc.choice != nil {
				body["tool_choice"] = tc.choice
			}
			c := decodeCompletion(t, post(t, t.Context(), s, body))
			body["stream"] = true
			r := readStream(t, post(t, t.Context(), s, body))
			msg := c.Choices[0].Message
			if tc.wantTool == "" {
				if len(msg.ToolCalls) != 0 || len(r.calls) != 0 || c.Choices[0].FinishReason != "stop" {
					t.Fatalf("unexpected tool call: %+v / %+v", msg, r.calls)
				}
				return
			}
			if c.Choices[0].FinishReason != "tool_calls" || r.finish != "tool_calls" {
				t.Fatalf("finish = %q / %q", c.Choices[0].FinishReason, r.finish)
			}
			if msg.Content != nil || len(msg.ToolCalls) != 1 || r.text != "" {
				t.Fatalf("message = %+v, streamed text %q", msg, r.text)
			}
			got := msg.ToolCalls[0]
			if got.Function.Name != tc.wantTool || got.Type != "function" || !strings.HasPrefix(got.ID, "call_") {
				t.Fatalf("tool call = %+v", got)
			}
			var args map[string]any
			if err := json.Unmarshal([]byte(got.Function.Arguments), &args); err != nil {
				t.Fatalf("arguments %q: %v", got.Function.Arguments, err)
			}
			if tc.wantTool == "get_weather" {
				if _, ok := args["city"].(string); !ok || args["unit"] != "c" {
					t.Fatalf("arguments %v do not fit the schema", args)
				}
			}
			st := r.calls[0]
			if st == nil || st.ID != got.ID || st.Function.Name != got.Function.Name || st.Function.Arguments != got.Function.Arguments {
				t.Fatalf("streamed call %+v != %+v", st, got)
			}
			if len(r.chunks) < 4 {
				t.Fatalf("tool call was not streamed in fragments: %d chunks", len(r.chunks))
			}
		})
	}
	s := newServer(t, Options{})
	res := post(t, t.Context(), s, map[string]any{"model": "m", "messages": user("x"), "tools": tools,
		"tool_choice": map[string]any{"type": "function", "function": map[string]any{"name": "missing"}}})
	if res.StatusCode != http.StatusBadRequest {
		t.Fatalf("unknown named tool: status %d, want 400", res.StatusCode)
	}
}

func TestJSONOutput(t *testing.T) {
	s := newServer(t, Options{})
	for _, rf := range []map[string]any{
		{"type": "json_object"},
		{"type": "json_schema", "json_schema": map[string]any{"name": "answer", "schema": map[string]any{
			"type": "object", "properties": map[string]any{"answer": map[string]any{"type": "string"}, "score": map[string]any{"type": "number"}},
		}}},
	} {
		body := map[string]any{"model": "m", "messages": user("json"), "response_format": rf, "stream": true}
		r := readStream(t, post(t, t.Context(), s, body))
		var v map[string]any
		if err := json.Unmarshal([]byte(r.text), &v); err != nil {
			t.Fatalf("%v: output %q is not a JSON object: %v", rf["type"], r.text, err)
		}
		if rf["type"] == "json_schema" {
			if _, ok := v["answer"].(string); !ok {
				t.Fatalf("output %v does not fit the schema", v)
			}
			if _, ok := v["score"].(float64); !ok {
				t.Fatalf("output %v does not fit the schema", v)
			}
		}
	}
}

func TestCachedTokens(t *testing.T) {
	s := newServer(t, Options{})
	msgs := user("one two three")
	c := decodeCompletion(t, post(t, t.Context(), s, map[string]any{"model": "m", "messages": msgs}))
	if c.Usage.PromptTokensDetails.CachedTokens != 0 {
		t.Fatalf("cold prompt reported %d cached tokens", c.Usage.PromptTokensDetails.CachedTokens)
	}
	next := append(msgs, api.Message{Role: "assistant", Content: api.Content(*c.Choices[0].Message.Content)}, api.Message{Role: "user", Content: "more"})
	c2 := decodeCompletion(t, post(t, t.Context(), s, map[string]any{"model": "m", "messages": next}))
	if got := c2.Usage.PromptTokensDetails.CachedTokens; got != c.Usage.PromptTokens {
		t.Fatalf("cached = %d, want the first prompt's %d", got, c.Usage.PromptTokens)
	}
}

func TestModelsAndAuth(t *testing.T) {
	s := newServer(t, Options{Model: "served", APIKey: "sekret"})
	get := func(key string) *http.Response {
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, s.URL()+"/v1/models", nil)
		if key != "" {
			req.Header.Set("Authorization", "Bearer "+key)
		}
		tr := &http.Transport{DisableKeepAlives: true}
		res, err := (&http.Client{Transport: tr}).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { res.Body.Close() })
		return res
	}
	if res := get("wrong"); res.StatusCode != http.StatusUnauthorized {
		t.Fatalf("wrong key: status %d", res.StatusCode)
	}
	res := get("sekret")
	var list api.ModelList
	if err := json.NewDecoder(res.Body).Decode(&list); err != nil {
		t.Fatal(err)
	}
	if list.Object != "list" || len(list.Data) != 1 || list.Data[0].ID != "served" || list.Data[0].Object != "model" {
		t.Fatalf("models = %+v", list)
	}
	if res := post(t, t.Context(), s, map[string]any{"model": "served", "messages": user("x")}); res.StatusCode != http.StatusUnauthorized {
		t.Fatalf("chat without key: status %d", res.StatusCode)
	}
}

func TestUnknownModel(t *testing.T) {
	s := newServer(t, Options{Model: "served"})
	res := post(t, t.Context(), s, map[string]any{"model": "other", "messages": user("x")})
	var body api.OpenAIError
	if err := json.NewDecoder(res.Body).Decode(&body); err != nil {
		t.Fatal(err)
	}
	if res.StatusCode != http.StatusNotFound || !strings.Contains(body.Error.Message, "other") {
		t.Fatalf("status %d, body %+v", res.StatusCode, body)
	}
}

func TestStatusFaults(t *testing.T) {
	s := newServer(t, Options{})
	s.InjectFault(Fault{Kind: FaultRateLimited, Count: 2, RetryAfter: 1500 * time.Millisecond})
	s.InjectFault(Fault{Kind: FaultInternal})
	s.InjectFault(Fault{Kind: FaultOverloaded})
	s.InjectFault(Fault{Kind: FaultStatus, Status: http.StatusUnprocessableEntity, Message: "bad field"})
	want := []int{429, 429, 500, 503, 422, 200}
	body := map[string]any{"model": "m", "messages": user("x")}
	for i, st := range want {
		res := post(t, t.Context(), s, body)
		if res.StatusCode != st {
			t.Fatalf("request %d: status %d, want %d", i, res.StatusCode, st)
		}
		if st == 429 && res.Header.Get("Retry-After") != "2" {
			t.Fatalf("Retry-After = %q, want 2 (whole seconds, rounded up)", res.Header.Get("Retry-After"))
		}
		if st == 422 {
			var e api.OpenAIError
			if err := json.NewDecoder(res.Body).Decode(&e); err != nil || e.Error.Message != "bad field" {
				t.Fatalf("error body %+v (%v)", e, err)
			}
		}
	}
	if s.Requests() != len(want) {
		t.Fatalf("Requests = %d, want %d", s.Requests(), len(want))
	}
	s.InjectFault(Fault{Kind: FaultInternal, Count: 5})
	s.ClearFaults()
	if res := post(t, t.Context(), s, body); res.StatusCode != 200 {
		t.Fatalf("after ClearFaults: status %d", res.StatusCode)
	}
}

func TestHangEndsWhenClientGivesUp(t *testing.T) {
	s := newServer(t, Options{})
	s.InjectFault(Fault{Kind: FaultHang})
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	b, _ := json.Marshal(map[string]any{"model": "m", "messages": user("x")})
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, s.URL()+"/v1/chat/completions", bytes.NewReader(b))
	tr := &http.Transport{DisableKeepAlives: true}
	defer tr.CloseIdleConnections()
	_, err := (&http.Client{Transport: tr}).Do(req)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want the client's deadline", err)
	}
	waitFor(t, func() bool { return s.InFlight() == 0 })
}

func TestCloseEndsHang(t *testing.T) {
	s := New(Options{})
	s.InjectFault(Fault{Kind: FaultHang})
	errc := make(chan error, 1)
	go func() {
		b, _ := json.Marshal(map[string]any{"model": "m", "messages": user("x")})
		tr := &http.Transport{DisableKeepAlives: true}
		defer tr.CloseIdleConnections()
		res, err := (&http.Client{Transport: tr}).Post(s.URL()+"/v1/chat/completions", "application/json", bytes.NewReader(b))
		if err == nil {
			res.Body.Close()
		}
		errc <- err
	}()
	waitFor(t, func() bool { return s.InFlight() == 1 })
	done := make(chan struct{})
	go func() { s.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Close blocked on a hung request")
	}
	<-errc
}

func TestDisconnectMidStream(t *testing.T) {
	s := newServer(t, Options{DefaultTokens: 10})
	s.InjectFault(Fault{Kind: FaultDisconnect, AfterTokens: 3})
	msgs := user("x")
	r := readStream(t, post(t, t.Context(), s, map[string]any{"model": "m", "messages": msgs, "stream": true}))
	if r.done || r.finish != "" {
		t.Fatalf("stream completed (done %v, finish %q) despite the disconnect", r.done, r.finish)
	}
	if r.err == nil {
		t.Fatal("the dropped connection read as a clean end of stream")
	}
	if want := Text(Seed(msgs), 0, 3); r.text != want {
		t.Fatalf("text before the drop %q, want %q", r.text, want)
	}
	// Only the next request was affected.
	r = readStream(t, post(t, t.Context(), s, map[string]any{"model": "m", "messages": msgs, "stream": true}))
	if !r.done || r.text != Text(Seed(msgs), 0, 10) {
		t.Fatalf("after the fault: done %v text %q", r.done, r.text)
	}
}

func TestDisconnectNonStreaming(t *testing.T) {
	s := newServer(t, Options{})
	s.InjectFault(Fault{Kind: FaultDisconnect})
	b, _ := json.Marshal(map[string]any{"model": "m", "messages": user("x")})
	tr := &http.Transport{DisableKeepAlives: true}
	defer tr.CloseIdleConnections()
	res, err := (&http.Client{Transport: tr}).Post(s.URL()+"/v1/chat/completions", "application/json", bytes.NewReader(b))
	if err == nil {
		res.Body.Close()
		t.Fatalf("got status %d, want a dropped connection", res.StatusCode)
	}
}

func TestPacingAndConcurrency(t *testing.T) {
	s := newServer(t, Options{DefaultTokens: 5, Latency: 30 * time.Millisecond, TokenDelay: 10 * time.Millisecond})
	var wg sync.WaitGroup
	start := time.Now()
	for i := range 4 {
		wg.Go(func() {
			r := readStream(t, post(t, t.Context(), s, map[string]any{"model": "m", "messages": user(string(rune('a' + i))), "stream": true}))
			if !r.done {
				t.Error("stream did not finish")
			}
		})
	}
	wg.Wait()
	// A lower bound only: pacing must not be skipped; a slow machine may take longer.
	if el := time.Since(start); el < 70*time.Millisecond {
		t.Fatalf("4 paced streams took %v, less than one stream's 70ms", el)
	}
	if s.MaxInFlight() < 2 || s.InFlight() != 0 {
		t.Fatalf("MaxInFlight %d InFlight %d", s.MaxInFlight(), s.InFlight())
	}
	var last chatRequest
	if err := json.Unmarshal(s.LastBody(), &last); err != nil || !last.Stream {
		t.Fatalf("LastBody = %s (%v)", s.LastBody(), err)
	}
	if s.LastHeader().Get("Content-Type") != "application/json" {
		t.Fatalf("LastHeader = %v", s.LastHeader())
	}
}

func TestSplitKeepsUTF8(t *testing.T) {
	s := `{"k":"héllo wörld ✓✓✓"}`
	parts := split(s, 8)
	if strings.Join(parts, "") != s {
		t.Fatal("split lost bytes")
	}
	for _, p := range parts {
		if !utf8.ValidString(p) {
			t.Fatalf("piece %q splits a UTF-8 sequence", p)
		}
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached within 5s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}
