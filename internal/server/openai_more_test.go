package server

import (
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/aios-go/aios/api"
	"github.com/aios-go/aios/internal/config"
	"github.com/aios-go/aios/internal/kernel"
	"github.com/aios-go/aios/internal/llm"
	"github.com/aios-go/aios/internal/llm/sim"
)

type embeddingsReply struct {
	Object string `json:"object"`
	Model  string `json:"model"`
	Data   []struct {
		Object    string          `json:"object"`
		Index     int             `json:"index"`
		Embedding json.RawMessage `json:"embedding"`
	} `json:"data"`
	Usage api.EmbeddingsUsage `json:"usage"`
}

func decodeEmbeddings(t *testing.T, b []byte) embeddingsReply {
	t.Helper()
	var r embeddingsReply
	if err := json.Unmarshal(b, &r); err != nil || r.Object != "list" {
		t.Fatalf("%v: %s", err, b)
	}
	for i, d := range r.Data {
		if d.Object != "embedding" || d.Index != i {
			t.Fatalf("data[%d]: %s", i, b)
		}
	}
	return r
}

func floats(t *testing.T, raw json.RawMessage) []float32 {
	t.Helper()
	var v []float32
	if err := json.Unmarshal(raw, &v); err == nil {
		return v
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		t.Fatalf("embedding is neither floats nor base64: %s", raw)
	}
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil || len(b)%4 != 0 {
		t.Fatalf("base64 embedding: %v", err)
	}
	v = make([]float32, len(b)/4)
	for i := range v {
		v[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
	}
	return v
}

func near(a, b []float32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if math.Abs(float64(a[i]-b[i])) > 1e-5 {
			return false
		}
	}
	return true
}

// A sim model embeds in process with the simulator's function; an OpenAI-compatible
// model goes to its server's /v1/embeddings (here `aios sim serve`'s, so both give the
// same vectors); an Anthropic model serves none.
func TestEmbeddings(t *testing.T) {
	up, err := sim.NewServer(sim.Config{Model: "remote-embed", Speed: 200})
	if err != nil {
		t.Fatal(err)
	}
	ups := httptest.NewServer(up.Handler())
	t.Cleanup(func() { ups.Close(); _ = up.Close() })
	h := startSystem(t, func(c *config.Config) {
		c.LLMs.Models = append(c.LLMs.Models,
			config.Model{Name: "remote-embed", Backend: "openai", Hostname: ups.URL, APIKey: "k", Cores: 1},
			config.Model{Name: "claude-test", Backend: "anthropic", APIKey: "k", Cores: 1})
	})
	want := sim.Embed("hello world", sim.DefaultEmbedDim)
	for _, model := range []string{"sim-test", "remote-embed", sim.EmbeddingModel} {
		code, b, _ := h.post("/v1/embeddings", `{"model":"`+model+`","input":"hello world"}`)
		if code != 200 {
			t.Fatalf("%s: HTTP %d %s", model, code, b)
		}
		r := decodeEmbeddings(t, b)
		if r.Model != model || len(r.Data) != 1 || !near(floats(t, r.Data[0].Embedding), want) || r.Usage.PromptTokens <= 0 || r.Usage.TotalTokens != r.Usage.PromptTokens {
			t.Fatalf("%s: %.300s", model, b)
		}
	}
	code, b, _ := h.post("/v1/embeddings", `{"model":"sim-test","input":["a cat","hello world"],"dimensions":64,"encoding_format":"base64"}`)
	r := decodeEmbeddings(t, b)
	if code != 200 || len(r.Data) != 2 || !near(floats(t, r.Data[1].Embedding), sim.Embed("hello world", 64)) || !strings.HasPrefix(string(r.Data[0].Embedding), `"`) {
		t.Fatalf("batch: HTTP %d %.300s", code, b)
	}

	for _, c := range []struct {
		body string
		code int
		want string
	}{
		{`{"model":"nonesuch","input":"x"}`, 404, `"code":"model_not_found"`},
		{`{"model":"claude-test","input":"x"}`, 400, "does not serve embeddings"},
		{`{"model":"sim-test","input":[1,2,3]}`, 400, "token-id arrays are not supported"},
		{`{"model":"sim-test","input":[[1,2]]}`, 400, "token-id arrays are not supported"},
		{`{"model":"sim-test","input":[]}`, 400, "must not be an empty array"},
		{`{"model":"sim-test"}`, 400, "input is required"},
		{`{"model":"sim-test","input":{"a":1}}`, 400, "input must be a string or an array of strings"},
		{`{"input":"x"}`, 400, "model is required"},
		{`{"model":"sim-test","input":"x","encoding_format":"int8"}`, 400, "encoding_format"},
		{`{"model":"sim-test","input":"x","dimensions":0}`, 400, "dimensions must be at least 1"},
		{`{"model":"sim-test","input":"x","dimensions":100000}`, 400, "dimensions must be between 1 and"},
		{`{"model":"sim-test","input":"x","dimensions":"8"}`, 400, `"dimensions" must be a number`},
	} {
		code, b, _ := h.post("/v1/embeddings", c.body)
		var e api.OpenAIError
		if err := json.Unmarshal(b, &e); err != nil || code != c.code || e.Error.Type != "invalid_request_error" ||
			!strings.Contains(string(b), c.want) && !strings.Contains(e.Error.Message, c.want) {
			t.Errorf("%s: HTTP %d %s; want %d with %q", c.body, code, b, c.code, c.want)
		}
	}
}

// FuzzEmbeddingsRequest: decoding and checking any body never panics, and every body
// refused is refused with a caller error.
func FuzzEmbeddingsRequest(f *testing.F) {
	for _, s := range []string{
		`{"model":"m","input":"hello"}`, `{"model":"m","input":["a","b"],"dimensions":8,"encoding_format":"base64"}`,
		`{"model":"m","input":[1,2]}`, `{"model":"m","input":[[1]]}`, `{"model":"m","input":null}`, `{"input":"x"}`,
		`{"model":"m","input":"x","dimensions":-1}`, `[]`, `{`, `""`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body string) {
		var req api.EmbeddingRequest
		err := decodeJSON([]byte(body), &req, "request body")
		var texts []string
		if err == nil {
			texts, _, err = embeddingInput(&req)
		}
		if err == nil {
			if len(texts) == 0 || len(texts) > maxEmbedInputs {
				t.Fatalf("%q: %d texts accepted", body, len(texts))
			}
			return
		}
		var ae *api.Error
		if !errors.As(err, &ae) || ae.Kind != api.CallerBadRequest || ae.Message == "" {
			t.Fatalf("%q: not a caller error: %#v", body, err)
		}
	})
}

func TestCompletions(t *testing.T) {
	h := startSystem(t, nil)
	var c api.Completion
	code, b, _ := h.post("/v1/completions", `{"model":"sim-test","prompt":"Once upon a time","max_tokens":5}`)
	if err := json.Unmarshal(b, &c); err != nil || code != 200 || c.Object != "text_completion" || !strings.HasPrefix(c.ID, "cmpl-") ||
		len(c.Choices) != 1 || c.Choices[0].Text == "" || c.Choices[0].FinishReason == nil || c.Usage == nil || c.Usage.CompletionTokens <= 0 || c.Usage.CompletionTokens > 5 {
		t.Fatalf("HTTP %d %s", code, b)
	}
	if !strings.Contains(string(b), `"logprobs":null`) {
		t.Fatalf("choices carry logprobs null as OpenAI's do: %s", b)
	}
	code, b, _ = h.post("/v1/completions", `{"model":"sim-test","prompt":["one","two"],"max_tokens":3,"echo":true}`)
	c = api.Completion{}
	if err := json.Unmarshal(b, &c); err != nil || code != 200 || len(c.Choices) != 2 || c.Choices[1].Index != 1 ||
		!strings.HasPrefix(c.Choices[0].Text, "one") || !strings.HasPrefix(c.Choices[1].Text, "two") {
		t.Fatalf("two prompts: HTTP %d %s", code, b)
	}

	// Streaming: text_completion chunks, one with the finish reason, usage, [DONE].
	resp, err := http.Post(h.url+"/v1/completions", "application/json", strings.NewReader(
		`{"model":"sim-test","prompt":"Tell me","max_tokens":6,"stream":true,"stream_options":{"include_usage":true}}`))
	if err != nil {
		t.Fatal(err)
	}
	events := readSSE(t, resp.Body)
	resp.Body.Close()
	if len(events) < 3 || events[len(events)-1] != "[DONE]" {
		t.Fatalf("stream: %v", events)
	}
	var text strings.Builder
	var finish string
	var usage *api.Usage
	for _, e := range events[:len(events)-1] {
		var ch api.Completion
		if err := json.Unmarshal([]byte(e), &ch); err != nil || ch.Object != "text_completion" || !strings.HasPrefix(ch.ID, "cmpl-") {
			t.Fatalf("chunk %s: %v", e, err)
		}
		if ch.Usage != nil {
			usage = ch.Usage
		}
		for _, c := range ch.Choices {
			text.WriteString(c.Text)
			if c.FinishReason != nil {
				finish = *c.FinishReason
			}
		}
	}
	if text.Len() == 0 || finish == "" || usage == nil || usage.CompletionTokens <= 0 {
		t.Fatalf("text %q finish %q usage %+v", text.String(), finish, usage)
	}

	for _, c := range []struct{ body, want string }{
		{`{"model":"sim-test","prompt":[1,2,3]}`, "token-id prompts are not supported"},
		{`{"model":"sim-test","prompt":[[1,2]]}`, "token-id prompts are not supported"},
		{`{"model":"sim-test"}`, "prompt is required"},
		{`{"model":"sim-test","prompt":[]}`, "must not be an empty array"},
		{`{"model":"sim-test","prompt":"x","n":2}`, "n must be 1"},
		{`{"model":"sim-test","prompt":"x","logprobs":2}`, "logprobs are not supported"},
		{`{"model":"sim-test","prompt":"x","max_tokens":0}`, "max_tokens must be at least 1"},
		{`{"model":"sim-test","prompt":"x","stop":["a","b","c","d","e"]}`, "at most 4"},
		{`{"model":"sim-test","prompt":"x","stop":7}`, "stop must be a string or an array"},
	} {
		code, b, _ := h.post("/v1/completions", c.body)
		var e api.OpenAIError
		if err := json.Unmarshal(b, &e); err != nil || code != 400 || e.Error.Type != "invalid_request_error" || !strings.Contains(e.Error.Message, c.want) {
			t.Errorf("%s: HTTP %d %s; want 400 with %q", c.body, code, b, c.want)
		}
	}
	code, b, _ = h.post("/v1/completions", `{"model":"nonesuch","prompt":"x"}`)
	if code != 404 || !strings.Contains(string(b), `"error"`) {
		t.Fatalf("unknown model: HTTP %d %s", code, b)
	}
}

func TestCompletionsStop(t *testing.T) {
	core := &funcCore{gen: func(ctx context.Context, req *llm.Request, emit func(llm.Delta)) (*llm.Result, error) {
		if req.Messages[0].Content != "say it" || req.MaxTokens != defaultCompletionTokens {
			return nil, api.Errorf(api.CallerBadRequest, "unexpected request %+v", req)
		}
		toks := []string{"Hello", " wor", "ld", "\n\n", "more"}
		for _, tok := range toks {
			emit(llm.Delta{Text: tok})
		}
		return &llm.Result{Text: strings.Join(toks, ""), FinishReason: "length", Usage: api.Usage{PromptTokens: 2, CompletionTokens: 5, TotalTokens: 7}}, nil
	}}
	h := start(t, Options{}, kernel.CoreConfig{Model: "m", Backend: "test", Core: core})
	code, b, _ := h.post("/v1/completions", `{"model":"m","prompt":"say it","stop":"\n\n"}`)
	var c api.Completion
	if err := json.Unmarshal(b, &c); err != nil || code != 200 || c.Choices[0].Text != "Hello world" || *c.Choices[0].FinishReason != "stop" {
		t.Fatalf("HTTP %d %s", code, b)
	}
	resp, err := http.Post(h.url+"/v1/completions", "application/json", strings.NewReader(`{"model":"m","prompt":"say it","stop":["\n\n"],"stream":true}`))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var text strings.Builder
	for _, e := range readSSE(t, resp.Body) {
		var ch api.Completion
		if json.Unmarshal([]byte(e), &ch) == nil && len(ch.Choices) > 0 {
			text.WriteString(ch.Choices[0].Text)
		}
	}
	if text.String() != "Hello world" {
		t.Fatalf("streamed %q", text.String())
	}
}

func TestModelRetrieve(t *testing.T) {
	h := start(t, Options{})
	var m api.Model
	h.get("/v1/models/sim-test", &m)
	if m.ID != "sim-test" || m.Object != "model" || m.OwnedBy == "" || m.Created == 0 {
		t.Fatalf("%+v", m)
	}
	resp, err := http.Get(h.url + "/v1/models/gpt-nonesuch")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var e api.OpenAICodedError
	if err := json.NewDecoder(resp.Body).Decode(&e); err != nil || resp.StatusCode != 404 || e.Error.Code != "model_not_found" ||
		e.Error.Param == nil || *e.Error.Param != "model" || e.Error.Type != "invalid_request_error" || !strings.Contains(e.Error.Message, "gpt-nonesuch") {
		t.Fatalf("HTTP %d %+v", resp.StatusCode, e)
	}
}

func (h *harness) do(method, path string) (int, http.Header, map[string]any) {
	h.t.Helper()
	req, _ := http.NewRequest(method, h.url+path, strings.NewReader("{}"))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	var body map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		h.t.Fatalf("%s %s: HTTP %d, body is not JSON: %v", method, path, resp.StatusCode, err)
	}
	return resp.StatusCode, resp.Header, body
}

// Under /v1 an unknown path is OpenAI's 404 and a known path with the wrong method a
// 405 with Allow; AIOS's own routes keep answering {"detail"}.
func TestV1Errors(t *testing.T) {
	h := startSystem(t, nil)
	for _, c := range []struct {
		method, path string
		code         int
		allow        string
		shape        string // openai, anthropic or aios
	}{
		{"GET", "/v1/nonesuch", 404, "", "openai"},
		{"POST", "/v1/chat/nonesuch", 404, "", "openai"},
		{"GET", "/v1", 404, "", "openai"},
		{"GET", "/v1/chat/completions", 405, "POST", "openai"},
		{"DELETE", "/v1/models", 405, "GET, HEAD", "openai"},
		{"POST", "/v1/models/sim-test", 405, "GET, HEAD", "openai"},
		{"GET", "/v1/embeddings", 405, "POST", "openai"},
		{"PUT", "/v1/memory/notes/n1", 405, "GET, PATCH, DELETE, HEAD", "openai"},
		{"GET", "/v1/messages", 405, "POST", "anthropic"},
		{"POST", "/v1/messages/nonesuch", 404, "", "anthropic"},
		{"GET", "/query", 404, "", "aios"},
		{"GET", "/nonesuch", 404, "", "aios"},
	} {
		code, hdr, body := h.do(c.method, c.path)
		if code != c.code || hdr.Get("Allow") != c.allow {
			t.Errorf("%s %s: HTTP %d Allow %q, want %d %q (%v)", c.method, c.path, code, hdr.Get("Allow"), c.code, c.allow, body)
			continue
		}
		e, _ := body["error"].(map[string]any)
		switch c.shape {
		case "openai":
			wantCode := "unknown_url"
			if c.code == 405 {
				wantCode = "method_not_allowed"
			}
			if e == nil || e["type"] != "invalid_request_error" || e["code"] != wantCode || e["message"] == "" {
				t.Errorf("%s %s: not OpenAI's error: %v", c.method, c.path, body)
			}
			if p, ok := e["param"]; !ok || p != nil {
				t.Errorf("%s %s: param must be null: %v", c.method, c.path, body)
			}
		case "anthropic":
			if body["type"] != "error" || e == nil || e["message"] == "" || (c.code == 404) != (e["type"] == "not_found_error") {
				t.Errorf("%s %s: not Anthropic's error: %v", c.method, c.path, body)
			}
		case "aios":
			if body["detail"] == nil || e != nil {
				t.Errorf("%s %s: not AIOS's error: %v", c.method, c.path, body)
			}
		}
	}
	// The routes themselves still answer.
	code, b, _ := h.post("/v1/chat/completions", `{"model":"sim-test","max_tokens":2,"messages":[{"role":"user","content":"hi"}]}`)
	if code != 200 {
		t.Fatalf("chat completions: HTTP %d %s", code, b)
	}
	var models api.ModelList
	h.get("/v1/models", &models)
}
