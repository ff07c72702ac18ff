package embed

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/aios-go/aios/api"
	"github.com/aios-go/aios/internal/llm/sim"
)

// The sim server runs an engine goroutine and the HTTP client keeps connections; every
// test must leave neither behind.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// wireRequest is what a test server saw: the body as OpenAI documents it, and headers.
type wireRequest struct {
	Path           string
	Auth           string
	ContentType    string
	Model          string   `json:"model"`
	Input          []string `json:"input"`
	EncodingFormat string   `json:"encoding_format"`
	Dimensions     *int     `json:"dimensions"`
}

// fakeOpenAI is an embeddings server answering with reply; it records every request.
type fakeOpenAI struct {
	*httptest.Server
	mu   sync.Mutex
	reqs []wireRequest
}

func newFake(t *testing.T, reply func(w http.ResponseWriter, r *http.Request, req wireRequest)) *fakeOpenAI {
	t.Helper()
	f := &fakeOpenAI{}
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req wireRequest
		if r.Method != http.MethodPost {
			http.Error(w, "method", http.StatusMethodNotAllowed)
			return
		}
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		req.Path, req.Auth, req.ContentType = r.URL.Path, r.Header.Get("Authorization"), r.Header.Get("Content-Type")
		f.mu.Lock()
		f.reqs = append(f.reqs, req)
		f.mu.Unlock()
		reply(w, r, req)
	}))
	t.Cleanup(f.Close)
	return f
}

func (f *fakeOpenAI) requests() []wireRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]wireRequest(nil), f.reqs...)
}

// writeEmbeddings answers in OpenAI's exact shape, items in the order given by order
// (nil: input order), each vector made by vec from its input.
func writeEmbeddings(w http.ResponseWriter, req wireRequest, order []int, vec func(string) []float32) {
	type item struct {
		Object    string    `json:"object"`
		Index     int       `json:"index"`
		Embedding []float32 `json:"embedding"`
	}
	if order == nil {
		for i := range req.Input {
			order = append(order, i)
		}
	}
	items := make([]item, 0, len(order))
	tokens := 0
	for _, i := range order {
		items = append(items, item{"embedding", i, vec(req.Input[i])})
		tokens += len(strings.Fields(req.Input[i]))
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]any{
		"object": "list", "data": items, "model": req.Model,
		"usage": map[string]int{"prompt_tokens": tokens, "total_tokens": tokens},
	})
}

// lengthVec is a deterministic unnormalised vector that tells inputs apart.
func lengthVec(s string) []float32 { return []float32{float32(len(s)), 1, 0} }

func newEmbedder(t *testing.T, cfg OpenAIConfig) *OpenAI {
	t.Helper()
	o, err := NewOpenAI(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return o
}

// approxEqual allows for the rounding of normalising in another order.
func approxEqual(a, b []float32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if math.Abs(float64(a[i]-b[i])) > 1e-6 {
			return false
		}
	}
	return true
}

func wantKind(t *testing.T, err error, k api.Kind) *api.Error {
	t.Helper()
	var e *api.Error
	if !errors.As(err, &e) || e.Kind != k {
		t.Fatalf("err %v, want kind %s", err, k)
	}
	return e
}

func TestOpenAIEmbedsInOrderNormalised(t *testing.T) {
	f := newFake(t, func(w http.ResponseWriter, _ *http.Request, req wireRequest) {
		// Reversed: the index, not the position, says which input a vector belongs to.
		order := make([]int, len(req.Input))
		for i := range order {
			order[i] = len(order) - 1 - i
		}
		writeEmbeddings(w, req, order, func(s string) []float32 {
			if s == "pythagoras" {
				return []float32{3, 4}
			}
			return []float32{float32(len(s)), 0}
		})
	})
	o := newEmbedder(t, OpenAIConfig{BaseURL: f.URL, APIKey: "sk-test", Model: "text-embedding-3-small"})
	if o.Name() != "openai:text-embedding-3-small" {
		t.Errorf("Name %q", o.Name())
	}
	got, err := o.Embed(context.Background(), []string{"pythagoras", "ab"})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0][0] != 0.6 || got[0][1] != 0.8 || got[1][0] != 1 || got[1][1] != 0 {
		t.Errorf("vectors %v, want [[0.6 0.8] [1 0]]", got)
	}
	reqs := f.requests()
	if len(reqs) != 1 {
		t.Fatalf("%d requests", len(reqs))
	}
	r := reqs[0]
	if r.Path != "/v1/embeddings" || r.Auth != "Bearer sk-test" || r.ContentType != "application/json" ||
		r.Model != "text-embedding-3-small" || r.EncodingFormat != "float" || r.Dimensions != nil ||
		strings.Join(r.Input, "|") != "pythagoras|ab" {
		t.Errorf("request %+v", r)
	}

	// No texts, no request.
	if v, err := o.Embed(context.Background(), nil); err != nil || len(v) != 0 || len(f.requests()) != 1 {
		t.Errorf("empty input: %v, %v, %d requests", v, err, len(f.requests()))
	}
}

func TestOpenAIBaseURLForms(t *testing.T) {
	f := newFake(t, func(w http.ResponseWriter, _ *http.Request, req wireRequest) { writeEmbeddings(w, req, nil, lengthVec) })
	host := strings.TrimPrefix(f.URL, "http://")
	for _, c := range []struct{ base, path string }{
		{f.URL, "/v1/embeddings"},
		{f.URL + "/", "/v1/embeddings"},
		{f.URL + "/v1", "/v1/embeddings"},
		{f.URL + "/v1/", "/v1/embeddings"},
		{host, "/v1/embeddings"},
		{f.URL + "/proxy/openai", "/proxy/openai/embeddings"},
	} {
		o := newEmbedder(t, OpenAIConfig{BaseURL: c.base, Model: "m"})
		if _, err := o.Embed(context.Background(), []string{"x"}); err != nil {
			t.Fatalf("%s: %v", c.base, err)
		}
		reqs := f.requests()
		if p := reqs[len(reqs)-1].Path; p != c.path {
			t.Errorf("base %q called %s, want %s", c.base, p, c.path)
		}
	}
}

func TestOpenAIConfigErrors(t *testing.T) {
	for _, cfg := range []OpenAIConfig{
		{Model: "m"},
		{BaseURL: "ftp://host", Model: "m"},
		{BaseURL: "http://host/v1?x=1", Model: "m"},
		{BaseURL: "http://host"},
		{BaseURL: "http://host", Model: "m", BatchSize: -1},
		{BaseURL: "http://host", Model: "m", Dimensions: -1},
		{BaseURL: "http://host", Model: "m", Timeout: -time.Second},
	} {
		_, err := NewOpenAI(cfg)
		if api.KindOf(err) != api.CallerBadRequest {
			t.Errorf("%+v: err %v, want caller_bad_request", cfg, err)
		}
	}
}

func TestOpenAIBatchesAndBlankTexts(t *testing.T) {
	f := newFake(t, func(w http.ResponseWriter, _ *http.Request, req wireRequest) { writeEmbeddings(w, req, nil, lengthVec) })
	o := newEmbedder(t, OpenAIConfig{BaseURL: f.URL, Model: "m", BatchSize: 3, Dimensions: 3})
	if o.Name() != "openai:m:3" {
		t.Errorf("Name %q", o.Name())
	}
	texts := []string{"a", "bb", "  ", "ccc", "dddd", "", "eeeee", "ffffff", "ggggggg", "hhhhhhhh"}
	got, err := o.Embed(context.Background(), texts)
	if err != nil {
		t.Fatal(err)
	}
	var sizes []int
	for _, r := range f.requests() {
		sizes = append(sizes, len(r.Input))
		if r.Dimensions == nil || *r.Dimensions != 3 {
			t.Errorf("dimensions not sent: %+v", r)
		}
	}
	if fmt.Sprint(sizes) != "[3 3 2]" {
		t.Errorf("batch sizes %v, want [3 3 2] (8 non-blank texts in batches of 3)", sizes)
	}
	for i, text := range texts {
		want := lengthVec(text)
		Normalize(want)
		if strings.TrimSpace(text) == "" {
			want = []float32{0, 0, 0}
		}
		if !approxEqual(got[i], want) {
			t.Errorf("text %d %q: %v, want %v", i, text, got[i], want)
		}
	}
}

func TestOpenAIHTTPErrors(t *testing.T) {
	cases := []struct {
		name   string
		status int
		header map[string]string
		body   string
		kind   api.Kind
		retry  time.Duration
		msg    string
	}{
		{"rate limited", 429, map[string]string{"Retry-After": "7"},
			`{"error":{"message":"Rate limit reached for text-embedding-3-small","type":"requests","param":null,"code":"rate_limit_exceeded"}}`,
			api.BackendRateLimited, 7 * time.Second, "Rate limit reached"},
		{"rate limited ms", 429, map[string]string{"Retry-After-Ms": "1500"}, `{}`, api.BackendRateLimited, 1500 * time.Millisecond, "429"},
		{"server error", 500, nil, `{"error":{"message":"The server had an error while processing your request.","type":"server_error"}}`,
			api.BackendUnavailable, 0, "server had an error"},
		{"overloaded", 503, map[string]string{"Retry-After": "2"}, `upstream connect error`, api.BackendOverloaded, 2 * time.Second, "upstream connect error"},
		{"bad request", 400, nil, `{"error":{"message":"'$.input' is invalid.","type":"invalid_request_error"}}`, api.BackendRejected, 0, "is invalid"},
		{"ollama", 400, nil, `{"error":"model \"nomic\" not found, try pulling it first"}`, api.BackendRejected, 0, "try pulling it"},
		{"key", 401, nil, `{"error":{"message":"Incorrect API key provided"}}`, api.BackendRejected, 0, "api_key"},
		{"not served", 404, nil, `{"detail":"Not Found"}`, api.BackendRejected, 0, "embedding model"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newFake(t, func(w http.ResponseWriter, _ *http.Request, _ wireRequest) {
				for k, v := range c.header {
					w.Header().Set(k, v)
				}
				w.WriteHeader(c.status)
				io.WriteString(w, c.body)
			})
			o := newEmbedder(t, OpenAIConfig{BaseURL: f.URL, Model: "m"})
			_, err := o.Embed(context.Background(), []string{"x"})
			e := wantKind(t, err, c.kind)
			if e.RetryAfter != c.retry || !strings.Contains(e.Error(), c.msg) || !strings.Contains(e.Error(), f.URL) {
				t.Errorf("err %v (retry after %v), want retry %v and %q", e, e.RetryAfter, c.retry, c.msg)
			}
		})
	}
}

func TestOpenAIBadResponses(t *testing.T) {
	cases := map[string]string{
		"html":           `<html><body>502 Bad Gateway</body></html>`,
		"truncated":      `{"object":"list","data":[{"index":0,"embedding":[0.1,`,
		"too few":        `{"data":[{"index":0,"embedding":[1,0]}]}`,
		"too many":       `{"data":[{"index":0,"embedding":[1,0]},{"index":1,"embedding":[1,0]},{"index":2,"embedding":[1,0]}]}`,
		"ragged":         `{"data":[{"index":0,"embedding":[1,0]},{"index":1,"embedding":[1,0,0]}]}`,
		"duplicate":      `{"data":[{"index":0,"embedding":[1,0]},{"index":0,"embedding":[0,1]}]}`,
		"out of range":   `{"data":[{"index":0,"embedding":[1,0]},{"index":2,"embedding":[0,1]}]}`,
		"empty vector":   `{"data":[{"index":0,"embedding":[]},{"index":1,"embedding":[]}]}`,
		"strings":        `{"data":[{"index":0,"embedding":["a"]},{"index":1,"embedding":["b"]}]}`,
		"float32 range":  `{"data":[{"index":0,"embedding":[1e39]},{"index":1,"embedding":[1]}]}`,
		"bad base64":     `{"data":[{"index":0,"embedding":"!!"},{"index":1,"embedding":"AAAAAA=="}]}`,
		"nan base64":     `{"data":[{"index":0,"embedding":"AADAfw=="},{"index":1,"embedding":"AACAPw=="}]}`,
		"no data":        `{"object":"list"}`,
		"wrong dim asks": `{"data":[{"index":0,"embedding":[1,0]},{"index":1,"embedding":[0,1]}]}`,
	}
	for name, body := range cases {
		t.Run(name, func(t *testing.T) {
			f := newFake(t, func(w http.ResponseWriter, _ *http.Request, _ wireRequest) { io.WriteString(w, body) })
			cfg := OpenAIConfig{BaseURL: f.URL, Model: "m"}
			if name == "wrong dim asks" {
				cfg.Dimensions = 3 // the server ignored it
			}
			_, err := newEmbedder(t, cfg).Embed(context.Background(), []string{"x", "y"})
			wantKind(t, err, api.BackendBadResponse)
		})
	}
}

// Base64 answers (what a server may send when it follows OpenAI's SDK defaults) decode
// to the same vectors; missing indices mean input order.
func TestOpenAIAcceptsBase64AndMissingIndex(t *testing.T) {
	// [1, 0] and [0, 2] as little-endian float32s.
	f := newFake(t, func(w http.ResponseWriter, _ *http.Request, _ wireRequest) {
		io.WriteString(w, `{"data":[{"embedding":"AACAPwAAAAA="},{"embedding":"AAAAAAAAAEA="}]}`)
	})
	got, err := newEmbedder(t, OpenAIConfig{BaseURL: f.URL, Model: "m"}).Embed(context.Background(), []string{"x", "y"})
	if err != nil || fmt.Sprint(got) != "[[1 0] [0 1]]" {
		t.Fatalf("got %v, %v", got, err)
	}
}

// A server that switches models behind one URL would mix two spaces in a store.
func TestOpenAIDimensionChangeIsRefused(t *testing.T) {
	dim := 2
	f := newFake(t, func(w http.ResponseWriter, _ *http.Request, req wireRequest) {
		writeEmbeddings(w, req, nil, func(string) []float32 { return make([]float32, dim) })
	})
	o := newEmbedder(t, OpenAIConfig{BaseURL: f.URL, Model: "m"})
	if _, err := o.Embed(context.Background(), []string{"x"}); err != nil {
		t.Fatal(err)
	}
	// Blank texts take the learned dimension without a request.
	if v, err := o.Embed(context.Background(), []string{""}); err != nil || len(v[0]) != 2 || len(f.requests()) != 1 {
		t.Fatalf("blank text: %v, %v, %d requests", v, err, len(f.requests()))
	}
	dim = 3
	_, err := o.Embed(context.Background(), []string{"x"})
	wantKind(t, err, api.BackendBadResponse)
}

func TestOpenAITimeoutsAndCancellation(t *testing.T) {
	f := newFake(t, func(w http.ResponseWriter, r *http.Request, _ wireRequest) { <-r.Context().Done() })

	_, err := newEmbedder(t, OpenAIConfig{BaseURL: f.URL, Model: "m", Timeout: 50 * time.Millisecond}).
		Embed(context.Background(), []string{"x"})
	wantKind(t, err, api.BackendTimeout)

	o := newEmbedder(t, OpenAIConfig{BaseURL: f.URL, Model: "m"})
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err = o.Embed(ctx, []string{"x"})
	wantKind(t, err, api.PolicyTimeout)

	ctx, cancel = context.WithCancel(context.Background())
	cancel()
	_, err = o.Embed(ctx, []string{"x"})
	wantKind(t, err, api.CallerCancelled)
}

func TestOpenAIConnectionRefused(t *testing.T) {
	ts := httptest.NewServer(http.NotFoundHandler())
	url := ts.URL
	ts.Close()
	_, err := newEmbedder(t, OpenAIConfig{BaseURL: url, Model: "m"}).Embed(context.Background(), []string{"x"})
	if e := wantKind(t, err, api.BackendUnavailable); !strings.Contains(e.Error(), "running") {
		t.Errorf("err %v lacks the hint", e)
	}
}

// End to end against the simulated engine's real handler.
func TestOpenAIAgainstSimulatedEngine(t *testing.T) {
	srv, err := sim.NewServer(sim.Config{Profile: "test", Speed: 1000})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	ts := httptest.NewServer(srv.Handler())
	defer ts.Close()

	texts := []string{"the cat sat", "a cat sitting", "quarterly tax report"}
	o := newEmbedder(t, OpenAIConfig{BaseURL: ts.URL, Model: sim.EmbeddingModel, Dimensions: 128, BatchSize: 2})
	got, err := o.Embed(context.Background(), texts)
	if err != nil {
		t.Fatal(err)
	}
	if near, far := Cosine(got[0], got[1]), max(Cosine(got[0], got[2]), Cosine(got[1], got[2])); near <= far {
		t.Errorf("cat/cat %.3f not above cat/tax %.3f", near, far)
	}
	for i, text := range texts {
		if c := Cosine(got[i], sim.Embed(text, 128)); math.Abs(c-1) > 1e-5 {
			t.Errorf("%q: cosine %v with sim.Embed, want 1", text, c)
		}
	}

	_, err = newEmbedder(t, OpenAIConfig{BaseURL: ts.URL + "/v1", Model: "text-embedding-3-small"}).Embed(context.Background(), texts)
	wantKind(t, err, api.BackendRejected) // the sim's 404 for a model it does not serve
}

// The decoder takes untrusted bytes: it returns a typed error or one unit (or zero)
// vector per input, all of one length, and never panics.
func FuzzDecodeEmbeddings(f *testing.F) {
	for _, seed := range []string{
		`{"object":"list","data":[{"object":"embedding","index":0,"embedding":[0.1,0.2]},{"object":"embedding","index":1,"embedding":[0,0]}],"model":"m","usage":{"prompt_tokens":2,"total_tokens":2}}`,
		`{"data":[{"index":1,"embedding":[1e-45]},{"index":0,"embedding":[3.4e38,-3.4e38]}]}`,
		`{"data":[{"embedding":"AACAPwAAAAA="},{"embedding":"AAAAAAAAAEA="}]}`,
		`{"data":[{"index":-1,"embedding":[1]}]}`, `{"data":null}`, `[]`, `null`, "\x00",
	} {
		f.Add([]byte(seed), uint8(2))
	}
	f.Fuzz(func(t *testing.T, data []byte, n uint8) {
		vecs, err := decodeEmbeddings("http://fuzz/v1/", data, int(n%8))
		if err != nil {
			if api.KindOf(err) != api.BackendBadResponse {
				t.Fatalf("untyped error %v", err)
			}
			return
		}
		if len(vecs) != int(n%8) {
			t.Fatalf("%d vectors for %d inputs", len(vecs), n%8)
		}
		for _, v := range vecs {
			if len(v) == 0 || len(v) != len(vecs[0]) {
				t.Fatalf("lengths %d and %d", len(v), len(vecs[0]))
			}
			if norm := Cosine(v, v); norm != 0 && math.Abs(norm-1) > 1e-4 {
				t.Fatalf("norm² %v of %v", norm, v)
			}
		}
	})
}
