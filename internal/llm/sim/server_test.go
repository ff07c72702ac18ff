package sim

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
)

func newTestServer(t *testing.T, cfg Config) (*Server, *httptest.Server) {
	t.Helper()
	s, err := NewServer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(s.Handler())
	t.Cleanup(func() {
		ts.Close()
		s.Close()
	})
	return s, ts
}

func post(t *testing.T, url, body string) *http.Response {
	t.Helper()
	resp, err := http.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

func decodeJSON(t *testing.T, r io.Reader, v any) {
	t.Helper()
	if err := json.NewDecoder(r).Decode(v); err != nil {
		t.Fatal(err)
	}
}

// readSSE returns the data payloads of an event stream, checking it ends with [DONE].
func readSSE(t *testing.T, resp *http.Response) []json.RawMessage {
	t.Helper()
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("content type %q", ct)
	}
	var events []json.RawMessage
	sc := bufio.NewScanner(resp.Body)
	done := false
	for sc.Scan() {
		line := sc.Text()
		if line == "" {
			continue
		}
		data, ok := strings.CutPrefix(line, "data: ")
		if !ok {
			t.Fatalf("line %q is not an SSE data line", line)
		}
		if done {
			t.Fatalf("event after [DONE]: %s", data)
		}
		if data == "[DONE]" {
			done = true
			continue
		}
		events = append(events, json.RawMessage(data))
	}
	if !done {
		t.Fatal("stream did not end with data: [DONE]")
	}
	return events
}

const chatBody = `{"model":"sim-test","messages":[{"role":"system","content":"You are terse."},{"role":"user","content":[{"type":"text","text":"Tell me about caches."}]}],"max_tokens":50%s}`

func TestChatCompletion(t *testing.T) {
	_, ts := newTestServer(t, fast)
	resp := post(t, ts.URL+"/v1/chat/completions", strings.Replace(chatBody, "%s", "", 1))
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	var got struct {
		ID      string `json:"id"`
		Object  string `json:"object"`
		Created int64  `json:"created"`
		Model   string `json:"model"`
		Choices []struct {
			Index   int `json:"index"`
			Message struct {
				Role      string            `json:"role"`
				Content   *string           `json:"content"`
				ToolCalls []json.RawMessage `json:"tool_calls"`
			} `json:"message"`
			FinishReason string `json:"finish_reason"`
		} `json:"choices"`
		Usage struct {
			PromptTokens        int `json:"prompt_tokens"`
			CompletionTokens    int `json:"completion_tokens"`
			TotalTokens         int `json:"total_tokens"`
			PromptTokensDetails struct {
				CachedTokens *int `json:"cached_tokens"`
			} `json:"prompt_tokens_details"`
		} `json:"usage"`
	}
	decodeJSON(t, resp.Body, &got)
	if !strings.HasPrefix(got.ID, "chatcmpl-") || got.Object != "chat.completion" || got.Created == 0 || got.Model != "sim-test" {
		t.Errorf("envelope: %+v", got)
	}
	if len(got.Choices) != 1 || got.Choices[0].Message.Role != "assistant" || got.Choices[0].Message.Content == nil {
		t.Fatalf("choices: %+v", got.Choices)
	}
	c := got.Choices[0]
	u := got.Usage
	if n := len(strings.Fields(*c.Message.Content)); n != u.CompletionTokens || u.TotalTokens != u.PromptTokens+u.CompletionTokens {
		t.Errorf("%d words, usage %+v", n, u)
	}
	if u.PromptTokensDetails.CachedTokens == nil {
		t.Error("usage lacks prompt_tokens_details.cached_tokens")
	}
	if c.FinishReason != "stop" && c.FinishReason != "length" {
		t.Errorf("finish reason %q", c.FinishReason)
	}
}

func TestChatCompletionStream(t *testing.T) {
	_, ts := newTestServer(t, fast)
	plain := post(t, ts.URL+"/v1/chat/completions", strings.Replace(chatBody, "%s", "", 1))
	var whole struct {
		Choices []struct {
			Message struct{ Content string } `json:"message"`
		} `json:"choices"`
	}
	decodeJSON(t, plain.Body, &whole)

	resp := post(t, ts.URL+"/v1/chat/completions", strings.Replace(chatBody, "%s", `,"stream":true,"stream_options":{"include_usage":true}`, 1))
	events := readSSE(t, resp)
	var text strings.Builder
	var finish string
	var usage map[string]any
	for i, raw := range events {
		var ch struct {
			ID      string `json:"id"`
			Object  string `json:"object"`
			Choices []struct {
				Delta struct {
					Role    string  `json:"role"`
					Content *string `json:"content"`
				} `json:"delta"`
				FinishReason *string `json:"finish_reason"`
			} `json:"choices"`
			Usage map[string]any `json:"usage"`
		}
		if err := json.Unmarshal(raw, &ch); err != nil {
			t.Fatal(err)
		}
		if ch.Object != "chat.completion.chunk" || !strings.HasPrefix(ch.ID, "chatcmpl-") {
			t.Fatalf("chunk %d: %s", i, raw)
		}
		if i == 0 && (len(ch.Choices) != 1 || ch.Choices[0].Delta.Role != "assistant") {
			t.Errorf("first chunk does not open the assistant message: %s", raw)
		}
		if ch.Usage != nil {
			if i != len(events)-1 || len(ch.Choices) != 0 {
				t.Errorf("usage chunk %d of %d has %d choices", i, len(events), len(ch.Choices))
			}
			usage = ch.Usage
			continue
		}
		if d := ch.Choices[0].Delta.Content; d != nil {
			text.WriteString(*d)
		}
		if f := ch.Choices[0].FinishReason; f != nil {
			finish = *f
		}
	}
	if text.String() != whole.Choices[0].Message.Content {
		t.Errorf("streamed %q, non-streamed %q", text.String(), whole.Choices[0].Message.Content)
	}
	if finish == "" || usage == nil || usage["prompt_tokens_details"] == nil {
		t.Errorf("finish %q, usage %v", finish, usage)
	}
}

func TestChatToolCallShapes(t *testing.T) {
	_, ts := newTestServer(t, fast)
	body := `{"messages":[{"role":"user","content":"weather?"}],
		"tools":[{"type":"function","function":{"name":"get_weather","parameters":{"type":"object","properties":{"city":{"type":"string"}}}}}],
		"tool_choice":{"type":"function","function":{"name":"get_weather"}}%s}`
	resp := post(t, ts.URL+"/v1/chat/completions", strings.Replace(body, "%s", "", 1))
	var got struct {
		Choices []struct {
			Message struct {
				Content   *string `json:"content"`
				ToolCalls []struct {
					ID       string `json:"id"`
					Type     string `json:"type"`
					Function struct{ Name, Arguments string }
				} `json:"tool_calls"`
			} `json:"message"`
			FinishReason string `json:"finish_reason"`
		} `json:"choices"`
	}
	decodeJSON(t, resp.Body, &got)
	m := got.Choices[0].Message
	if m.Content != nil || len(m.ToolCalls) != 1 || m.ToolCalls[0].Type != "function" || m.ToolCalls[0].Function.Name != "get_weather" ||
		!json.Valid([]byte(m.ToolCalls[0].Function.Arguments)) || got.Choices[0].FinishReason != "tool_calls" {
		t.Fatalf("tool call response: %+v", got)
	}

	events := readSSE(t, post(t, ts.URL+"/v1/chat/completions", strings.Replace(body, "%s", `,"stream":true`, 1)))
	var name, args string
	for _, raw := range events {
		var ch struct {
			Choices []struct {
				Delta struct {
					ToolCalls []struct {
						Index    int
						Function struct{ Name, Arguments string }
					} `json:"tool_calls"`
				} `json:"delta"`
			} `json:"choices"`
		}
		json.Unmarshal(raw, &ch)
		for _, tc := range ch.Choices[0].Delta.ToolCalls {
			name += tc.Function.Name
			args += tc.Function.Arguments
		}
	}
	if name != "get_weather" || args != m.ToolCalls[0].Function.Arguments {
		t.Errorf("streamed tool call %q %q, want get_weather %q", name, args, m.ToolCalls[0].Function.Arguments)
	}
}

func TestCompletions(t *testing.T) {
	_, ts := newTestServer(t, fast)
	resp := post(t, ts.URL+"/v1/completions", `{"model":"sim-test","prompt":"Once upon a time","max_tokens":20,"ignore_eos":true}`)
	var got struct {
		ID      string `json:"id"`
		Object  string `json:"object"`
		Choices []struct {
			Text         string `json:"text"`
			FinishReason string `json:"finish_reason"`
		} `json:"choices"`
		Usage usage `json:"usage"`
	}
	decodeJSON(t, resp.Body, &got)
	if !strings.HasPrefix(got.ID, "cmpl-") || got.Object != "text_completion" || len(strings.Fields(got.Choices[0].Text)) != 20 ||
		got.Usage.CompletionTokens != 20 || got.Choices[0].FinishReason != "length" {
		t.Fatalf("completion: %+v", got)
	}

	events := readSSE(t, post(t, ts.URL+"/v1/completions", `{"prompt":["Once upon a time"],"max_tokens":20,"ignore_eos":true,"stream":true}`))
	var text strings.Builder
	for _, raw := range events {
		var ch struct {
			Object  string                  `json:"object"`
			Choices []struct{ Text string } `json:"choices"`
		}
		json.Unmarshal(raw, &ch)
		if ch.Object != "text_completion" {
			t.Fatalf("chunk %s", raw)
		}
		text.WriteString(ch.Choices[0].Text)
	}
	if text.String() != got.Choices[0].Text {
		t.Errorf("streamed %q, non-streamed %q", text.String(), got.Choices[0].Text)
	}
}

func TestModelsHealthMetrics(t *testing.T) {
	_, ts := newTestServer(t, Config{Profile: "test", Speed: 1000, Model: "my-model"})
	resp, err := http.Get(ts.URL + "/v1/models")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var models struct {
		Object string
		Data   []struct {
			ID          string `json:"id"`
			Object      string `json:"object"`
			MaxModelLen int    `json:"max_model_len"`
		}
	}
	decodeJSON(t, resp.Body, &models)
	if models.Object != "list" || len(models.Data) != 1 || models.Data[0].ID != "my-model" || models.Data[0].MaxModelLen != 4096 {
		t.Errorf("models: %+v", models)
	}
	if h, err := http.Get(ts.URL + "/health"); err != nil || h.StatusCode != 200 {
		t.Errorf("health: %v %v", h, err)
	} else {
		h.Body.Close()
	}
	m := scrape(t, ts.URL)
	for _, name := range []string{
		"vllm:num_requests_running", "vllm:num_requests_waiting", "vllm:kv_cache_usage_perc",
		"vllm:prefix_cache_queries_total", "vllm:prefix_cache_hits_total", "vllm:num_preemptions_total",
		"vllm:prompt_tokens_total", "vllm:generation_tokens_total", "vllm:cache_config_info",
	} {
		if _, ok := m[name]; !ok {
			t.Errorf("/metrics lacks %s", name)
		}
	}
	post(t, ts.URL+"/v1/chat/completions", `{"messages":[{"role":"user","content":"hi"}],"max_tokens":5,"ignore_eos":true}`).Body.Close()
	m = scrape(t, ts.URL)
	for _, name := range []string{
		"vllm:time_to_first_token_seconds_count", "vllm:inter_token_latency_seconds_count",
		"vllm:e2e_request_latency_seconds_count", "vllm:request_queue_time_seconds_count",
	} {
		if m[name] < 1 {
			t.Errorf("%s = %v after a request", name, m[name])
		}
	}
	if m["vllm:generation_tokens_total"] != 5 {
		t.Errorf("generation tokens %v, want 5", m["vllm:generation_tokens_total"])
	}
}

// scrape reads /metrics into name -> value, checking each sample carries model_name.
func scrape(t *testing.T, base string) map[string]float64 {
	t.Helper()
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		series, val, _ := strings.Cut(line, " ")
		name, labels, _ := strings.Cut(series, "{")
		// vLLM's info gauges carry the config's fields instead of model_name.
		if strings.HasPrefix(name, "vllm:") && !strings.HasSuffix(name, "_info") && !strings.Contains(labels, `model_name="`) {
			t.Errorf("%s lacks model_name", series)
		}
		if strings.HasSuffix(name, "_bucket") {
			continue
		}
		f, _ := strconv.ParseFloat(val, 64)
		out[name] += f
	}
	return out
}

// Two requests sharing a 4k-token system prompt: the second is served its prefix from
// the cache, says so in usage, and the hit shows in /metrics.
func TestSharedPrefixOverHTTP(t *testing.T) {
	_, ts := newTestServer(t, Config{Profile: "llama3-8b-h100", Speed: 1000})
	system := strings.TrimSpace(strings.Repeat("policy clause ", 2048)) // 4096 tokens
	ask := func(question string) usage {
		body, _ := json.Marshal(map[string]any{
			"messages":   []map[string]string{{"role": "system", "content": system}, {"role": "user", "content": question}},
			"max_tokens": 5,
		})
		resp := post(t, ts.URL+"/v1/chat/completions", string(body))
		var got struct{ Usage usage }
		decodeJSON(t, resp.Body, &got)
		return got.Usage
	}
	first := ask("What is rule one?")
	before := scrape(t, ts.URL)
	second := ask("And rule two, please?")
	after := scrape(t, ts.URL)

	if first.PromptTokensDetails.CachedTokens != 0 {
		t.Errorf("first request found %d cached tokens", first.PromptTokensDetails.CachedTokens)
	}
	if c := second.PromptTokensDetails.CachedTokens; c < 4096 || c > second.PromptTokens-1 {
		t.Errorf("second request: %d of %d prompt tokens cached, want the 4k prefix", c, second.PromptTokens)
	}
	hits := after["vllm:prefix_cache_hits_total"] - before["vllm:prefix_cache_hits_total"]
	if hits != float64(second.PromptTokensDetails.CachedTokens) {
		t.Errorf("metrics show %v hit tokens for the second request, usage says %d", hits, second.PromptTokensDetails.CachedTokens)
	}
	if q := after["vllm:prefix_cache_queries_total"] - before["vllm:prefix_cache_queries_total"]; q != float64(second.PromptTokens) {
		t.Errorf("metrics show %v queried tokens, want %d", q, second.PromptTokens)
	}
}

func TestHTTPErrors(t *testing.T) {
	_, ts := newTestServer(t, fast)
	_, naive := newTestServer(t, Config{Profile: "test", Mode: ModeNaive, Speed: 1000})
	big := `{"messages":[{"role":"user","content":"` + strings.Repeat("a ", maxBodyBytes/2) + `"}]}`
	cases := []struct {
		name, url, body string
		status          int
		typ             string
	}{
		{"malformed", ts.URL + "/v1/chat/completions", `{"messages":`, 400, "BadRequestError"},
		{"trailing", ts.URL + "/v1/chat/completions", `{"messages":[{"role":"user","content":"x"}]} {}`, 400, "BadRequestError"},
		{"wrong type", ts.URL + "/v1/chat/completions", `{"messages":"hi"}`, 400, "BadRequestError"},
		{"no messages", ts.URL + "/v1/chat/completions", `{"messages":[]}`, 400, "BadRequestError"},
		{"bad role", ts.URL + "/v1/chat/completions", `{"messages":[{"role":"robot","content":"x"}]}`, 400, "BadRequestError"},
		{"image", ts.URL + "/v1/chat/completions", `{"messages":[{"role":"user","content":[{"type":"image_url"}]}]}`, 400, "BadRequestError"},
		{"unknown model", ts.URL + "/v1/chat/completions", `{"model":"gpt-9","messages":[{"role":"user","content":"x"}]}`, 404, "NotFoundError"},
		{"n", ts.URL + "/v1/chat/completions", `{"n":2,"messages":[{"role":"user","content":"x"}]}`, 400, "BadRequestError"},
		{"max_tokens 0", ts.URL + "/v1/chat/completions", `{"max_tokens":0,"messages":[{"role":"user","content":"x"}]}`, 400, "BadRequestError"},
		{"priority under fcfs", ts.URL + "/v1/chat/completions", `{"priority":1,"messages":[{"role":"user","content":"x"}]}`, 400, "BadRequestError"},
		{"context length", ts.URL + "/v1/chat/completions", `{"max_tokens":5000,"messages":[{"role":"user","content":"x"}]}`, 400, "BadRequestError"},
		{"continue without assistant", ts.URL + "/v1/chat/completions", `{"continue_final_message":true,"add_generation_prompt":false,"messages":[{"role":"user","content":"x"}]}`, 400, "BadRequestError"},
		{"continue with generation prompt", ts.URL + "/v1/chat/completions", `{"continue_final_message":true,"messages":[{"role":"assistant","content":"x"}]}`, 400, "BadRequestError"},
		{"unknown tool", ts.URL + "/v1/chat/completions", `{"tool_choice":{"type":"function","function":{"name":"f"}},"messages":[{"role":"user","content":"x"}]}`, 400, "BadRequestError"},
		{"token prompt", ts.URL + "/v1/completions", `{"prompt":[1,2,3]}`, 400, "BadRequestError"},
		{"too large", ts.URL + "/v1/chat/completions", big, 413, "BadRequestError"},
		{"naive oom", naive.URL + "/v1/chat/completions", `{"max_tokens":3000,"messages":[{"role":"user","content":"x"}]}`, 503, "ServiceUnavailableError"},
		{"naive oom stream", naive.URL + "/v1/chat/completions", `{"stream":true,"max_tokens":3000,"messages":[{"role":"user","content":"x"}]}`, 503, "ServiceUnavailableError"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			resp := post(t, c.url, c.body)
			if resp.StatusCode != c.status {
				b, _ := io.ReadAll(resp.Body)
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, c.status, b)
			}
			var e errorBody
			decodeJSON(t, resp.Body, &e)
			if e.Error.Type != c.typ || e.Error.Code != c.status || e.Error.Message == "" {
				t.Errorf("error body %+v", e)
			}
		})
	}
}

// continue_final_message over HTTP joins like the in-process API.
func TestHTTPContinueFinalMessage(t *testing.T) {
	_, ts := newTestServer(t, fast)
	var whole struct {
		Choices []struct{ Message struct{ Content string } } `json:"choices"`
	}
	decodeJSON(t, post(t, ts.URL+"/v1/chat/completions", `{"messages":[{"role":"user","content":"go"}],"max_tokens":40,"ignore_eos":true}`).Body, &whole)
	text := whole.Choices[0].Message.Content
	words := strings.Fields(text)
	prefix := strings.Join(words[:15], " ") + " "
	body, _ := json.Marshal(map[string]any{
		"messages":               []map[string]string{{"role": "user", "content": "go"}, {"role": "assistant", "content": prefix}},
		"continue_final_message": true, "add_generation_prompt": false, "max_tokens": 25, "ignore_eos": true,
	})
	var rest struct {
		Choices []struct{ Message struct{ Content string } } `json:"choices"`
		Usage   usage
	}
	decodeJSON(t, post(t, ts.URL+"/v1/chat/completions", string(body)).Body, &rest)
	if prefix+rest.Choices[0].Message.Content != text {
		t.Errorf("joined %q, whole %q", prefix+rest.Choices[0].Message.Content, text)
	}
	if rest.Usage.PromptTokensDetails.CachedTokens == 0 {
		t.Error("the continuation did not reuse the interrupted generation's cache")
	}
}

func TestPriorityOverHTTP(t *testing.T) {
	_, ts := newTestServer(t, Config{Profile: "test", Policy: PolicyPriority, Speed: 1000})
	resp := post(t, ts.URL+"/v1/chat/completions", `{"priority":-3,"kv_ttl_ms":1000,"messages":[{"role":"user","content":"x"}],"max_tokens":3}`)
	if resp.StatusCode != 200 {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("status %d: %s", resp.StatusCode, b)
	}
}

func TestServerForSharedLive(t *testing.T) {
	l := newTestLive(t, fast)
	s := NewServerFor(l)
	rec := httptest.NewRecorder()
	s.Handler().ServeHTTP(rec, httptest.NewRequest("POST", "/v1/completions", bytes.NewBufferString(`{"prompt":"hi","max_tokens":2}`)))
	if rec.Code != 200 {
		t.Fatalf("status %d: %s", rec.Code, rec.Body)
	}
	s.Close()
	if _, err := probe(l); err != nil {
		t.Errorf("closing a server built on a shared engine stopped the engine: %v", err)
	}
}

// The eviction hint is an extension field like kv_ttl_ms: a positive wait is taken, a
// wait of 0 or less is refused.
func TestReuseHintOverHTTP(t *testing.T) {
	_, ts := newTestServer(t, Config{Profile: "test", Speed: 1000})
	for body, want := range map[string]int{
		`{"kv_reuse_after_ms":2500,"messages":[{"role":"user","content":"x"}],"max_tokens":3}`: 200,
		`{"kv_reuse_after_ms":0,"messages":[{"role":"user","content":"x"}],"max_tokens":3}`:    400,
	} {
		resp := post(t, ts.URL+"/v1/chat/completions", body)
		if resp.StatusCode != want {
			b, _ := io.ReadAll(resp.Body)
			t.Errorf("%s: status %d, want %d: %s", body, resp.StatusCode, want, b)
		}
	}
}
