package sim

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"io"
	"math"
	"net/http/httptest"
	"strings"
	"testing"
)

func cosine(a, b []float32) float64 {
	var s float64
	for i := range a {
		s += float64(a[i]) * float64(b[i])
	}
	return s
}

func TestEmbedIsDeterministicUnitAndDimensioned(t *testing.T) {
	a := Embed("The cat sat on the mat", 0)
	if len(a) != DefaultEmbedDim {
		t.Fatalf("default dimension %d, want %d", len(a), DefaultEmbedDim)
	}
	if b := Embed("The cat sat on the mat", 0); cosine(a, b) != cosine(a, a) {
		t.Error("same text, different vectors")
	}
	if n := cosine(a, a); math.Abs(n-1) > 1e-5 {
		t.Errorf("norm² %v, want 1", n)
	}
	if got := len(Embed("x", 37)); got != 37 {
		t.Errorf("dimension %d, want 37", got)
	}
	// Case and punctuation are not words: they must not move the vector.
	if c := cosine(a, Embed("the CAT, sat on... the mat!", 0)); math.Abs(c-1) > 1e-5 {
		t.Errorf("cosine with a re-cased, re-punctuated copy %v, want 1", c)
	}
	for _, empty := range []string{"", "  ", "?!."} {
		if n := cosine(Embed(empty, 8), Embed(empty, 8)); n != 0 {
			t.Errorf("%q: norm² %v, want the zero vector", empty, n)
		}
	}
}

// The property retrieval tests lean on: texts sharing words are nearer than unrelated ones.
func TestEmbedRanksRelatedTextsCloser(t *testing.T) {
	for _, dim := range []int{64, 256, 1024} {
		cat1, cat2 := Embed("the cat sat", dim), Embed("a cat sitting", dim)
		tax := Embed("quarterly tax report", dim)
		near, far := cosine(cat1, cat2), max(cosine(cat1, tax), cosine(cat2, tax))
		if near <= far {
			t.Errorf("dim %d: cat/cat %.3f not above cat/tax %.3f", dim, near, far)
		}
	}
	// Trigrams make inflections neighbours even with no word in common.
	near := cosine(Embed("reports", 256), Embed("report", 256))
	far := cosine(Embed("reports", 256), Embed("quarterly", 256))
	if near < 0.15 || near <= far {
		t.Errorf("report/reports cosine %.3f, reports/quarterly %.3f", near, far)
	}
}

type embeddingsReply struct {
	ID      string `json:"id"`
	Object  string `json:"object"`
	Created int64  `json:"created"`
	Model   string `json:"model"`
	Data    []struct {
		Object    string    `json:"object"`
		Index     int       `json:"index"`
		Embedding []float32 `json:"embedding"`
	} `json:"data"`
	Usage map[string]int `json:"usage"`
}

func TestEmbeddingsRoute(t *testing.T) {
	_, ts := newTestServer(t, fast)
	texts := []string{"the cat sat", "a cat sitting", "quarterly tax report, 2024"}
	resp := post(t, ts.URL+"/v1/embeddings", `{"model":"sim-embed-1","input":["the cat sat","a cat sitting","quarterly tax report, 2024"],"encoding_format":"float"}`)
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("status %d, content type %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	var got embeddingsReply
	decodeJSON(t, resp.Body, &got)
	if got.Object != "list" || got.Model != EmbeddingModel || !strings.HasPrefix(got.ID, "embd-") || got.Created == 0 {
		t.Errorf("envelope %+v", got)
	}
	if len(got.Data) != len(texts) {
		t.Fatalf("%d embeddings for %d inputs", len(got.Data), len(texts))
	}
	tokens := 0
	for i, d := range got.Data {
		if d.Object != "embedding" || d.Index != i {
			t.Errorf("data[%d]: object %q index %d", i, d.Object, d.Index)
		}
		want := Embed(texts[i], DefaultEmbedDim)
		if len(d.Embedding) != len(want) || cosine(d.Embedding, want) < 1-1e-6 {
			t.Errorf("data[%d] is not Embed(%q)", i, texts[i])
		}
		tokens += CountTokens(texts[i])
	}
	if got.Usage["prompt_tokens"] != tokens || got.Usage["total_tokens"] != tokens || len(got.Usage) != 2 {
		t.Errorf("usage %v, want %d prompt and total tokens", got.Usage, tokens)
	}
}

func TestEmbeddingsOneStringDimensionsAndBase64(t *testing.T) {
	_, ts := newTestServer(t, Config{Profile: "test", Speed: 1000, EmbedDim: 48})

	// No model and no dimensions: the server's defaults.
	var plain embeddingsReply
	decodeJSON(t, post(t, ts.URL+"/v1/embeddings", `{"input":"hello world"}`).Body, &plain)
	if len(plain.Data) != 1 || len(plain.Data[0].Embedding) != 48 || plain.Model != EmbeddingModel {
		t.Fatalf("defaults: %+v", plain)
	}

	// The chat model's name is accepted too, and echoed.
	var sized embeddingsReply
	decodeJSON(t, post(t, ts.URL+"/v1/embeddings", `{"model":"sim-test","input":"hello world","dimensions":16}`).Body, &sized)
	if sized.Model != "sim-test" || len(sized.Data[0].Embedding) != 16 {
		t.Fatalf("dimensions 16: model %q, %d dims", sized.Model, len(sized.Data[0].Embedding))
	}

	var b64 struct {
		Data []struct {
			Embedding string `json:"embedding"`
		} `json:"data"`
	}
	decodeJSON(t, post(t, ts.URL+"/v1/embeddings", `{"input":["hello world"],"dimensions":16,"encoding_format":"base64"}`).Body, &b64)
	raw, err := base64.StdEncoding.DecodeString(b64.Data[0].Embedding)
	if err != nil || len(raw) != 16*4 {
		t.Fatalf("base64 embedding: %d bytes, %v", len(raw), err)
	}
	for i, want := range sized.Data[0].Embedding {
		if got := math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:])); got != want {
			t.Fatalf("base64 component %d = %v, float answer %v", i, got, want)
		}
	}
}

func TestEmbeddingsErrors(t *testing.T) {
	_, ts := newTestServer(t, fast)
	long := `{"input":"` + strings.Repeat("w ", 5000) + `"}` // over the test profile's 4096
	cases := []struct {
		name, body string
		status     int
	}{
		{"malformed", `{"input":`, 400},
		{"trailing", `{"input":"x"} {}`, 400},
		{"no input", `{"model":"sim-embed-1"}`, 400},
		{"null input", `{"input":null}`, 400},
		{"empty list", `{"input":[]}`, 400},
		{"token ids", `{"input":[1,2,3]}`, 400},
		{"token id lists", `{"input":[[1,2],[3]]}`, 400},
		{"mixed list", `{"input":["a",1]}`, 400},
		{"object", `{"input":{"text":"a"}}`, 400},
		{"dimensions 0", `{"input":"a","dimensions":0}`, 400},
		{"dimensions huge", `{"input":"a","dimensions":100000}`, 400},
		{"encoding", `{"input":"a","encoding_format":"hex"}`, 400},
		{"too many", `{"input":[` + strings.Repeat(`"a",`, maxEmbedInputs) + `"a"]}`, 400},
		{"context length", long, 400},
		{"unknown model", `{"model":"text-embedding-3-small","input":"a"}`, 404},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			resp := post(t, ts.URL+"/v1/embeddings", c.body)
			if resp.StatusCode != c.status {
				b, _ := io.ReadAll(resp.Body)
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, c.status, b)
			}
			var e errorBody
			decodeJSON(t, resp.Body, &e)
			if e.Error.Type != errorTypes[c.status] || e.Error.Code != c.status || e.Error.Message == "" {
				t.Errorf("error body %+v", e)
			}
		})
	}
}

// The decoder takes untrusted bytes: it either yields texts and a dimension the embedder
// accepts or refuses with a 4xx, and never panics.
func FuzzDecodeEmbeddingsRequest(f *testing.F) {
	for _, seed := range []string{
		`{"model":"sim-embed-1","input":["a","b"],"encoding_format":"float","dimensions":8}`,
		`{"input":"x","encoding_format":"base64"}`,
		`{"input":[[1,2]]}`, `{"input":[]}`, `{"input":null}`, `{"dimensions":-1,"input":"a"}`,
		`[]`, `null`, "\x00",
	} {
		f.Add([]byte(seed))
	}
	l, err := NewLive(Config{Profile: "test", Speed: 1000})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { l.Close() })
	s := NewServerFor(l)
	f.Fuzz(func(t *testing.T, body []byte) {
		texts, dim, _, model, err := s.parseEmbeddings(bytes.NewReader(body))
		if err != nil {
			rec := httptest.NewRecorder()
			writeError(rec, err)
			if rec.Code < 400 || rec.Code >= 500 {
				t.Fatalf("decoder error %v maps to %d", err, rec.Code)
			}
			return
		}
		if len(texts) == 0 || dim < 1 || dim > MaxEmbedDim || model == "" {
			t.Fatalf("accepted %d texts at dim %d for model %q", len(texts), dim, model)
		}
		for _, text := range texts {
			if len(Embed(text, dim)) != dim {
				t.Fatal("wrong dimension")
			}
		}
	})
}
