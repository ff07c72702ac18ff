package sim

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"strings"
	"time"
	"unicode"
)

// Embeddings. A real engine serves them from a separate embedding model; the simulator
// computes them directly from the text, so they cost no simulated GPU time, never queue
// behind generations and do not touch the KV cache or the metrics. What retrieval tests
// need from them is that they are deterministic and that texts sharing words land near
// each other, which a hashed bag of n-grams gives without a model.

const (
	// EmbeddingModel names the simulator's embedding function. It is versioned because
	// stores key vectors by the model that made them: a change to Embed must come with a
	// new name, or old and new vectors would be compared as if they were one space.
	EmbeddingModel = "sim-embed-1"
	// DefaultEmbedDim is the dimension of an embedding when neither Config.EmbedDim nor
	// the request's "dimensions" says otherwise.
	DefaultEmbedDim = 256
	// MaxEmbedDim bounds "dimensions", so one request cannot make the server allocate
	// gigabytes.
	MaxEmbedDim = 8192
	// maxEmbedInputs is OpenAI's limit on inputs per request.
	maxEmbedInputs = 2048
)

// Embed is the simulator's embedding of text: lower-cased words, word bigrams and the
// character trigrams of each word are hashed into dim signed buckets and the vector is
// scaled to unit length. Texts that share words or spellings score a high cosine; texts
// with no letters or digits embed as the zero vector. dim ≤ 0 means DefaultEmbedDim.
//
// It is a pure function: the HTTP server and in-process callers (internal/llm/simcore)
// get identical vectors for the same text and dimension.
func Embed(text string, dim int) []float32 {
	if dim <= 0 {
		dim = DefaultEmbedDim
	}
	v := make([]float32, dim)
	// Each feature is hashed from a kind tag and its parts, with no string built for it;
	// the tag keeps a word, a bigram and a trigram with the same bytes apart.
	add := func(h uint64, weight float32) {
		h = mix64(h)
		if h>>63 == 1 {
			weight = -weight
		}
		v[h%uint64(dim)] += weight
	}
	words := strings.FieldsFunc(strings.ToLower(text), func(r rune) bool {
		return !unicode.IsLetter(r) && !unicode.IsDigit(r)
	})
	var starts []int // byte offsets of the runes of a padded word, and its end
	for i, w := range words {
		add(fnvString(fnvByte(fnvOffset, 'w'), w), 1)
		if i > 0 {
			h := fnvString(fnvByte(fnvOffset, 'b'), words[i-1])
			add(fnvString(fnvByte(h, ' '), w), 0.5)
		}
		// Trigrams of the word padded with a space each side, so its start and end count:
		// "cat" gives " ca", "cat", "at ". They let inflections ("report", "reports")
		// land near each other.
		padded := " " + w + " "
		starts = starts[:0]
		for k := range padded {
			starts = append(starts, k)
		}
		starts = append(starts, len(padded))
		for j := 0; j+3 < len(starts); j++ {
			add(fnvString(fnvByte(fnvOffset, 't'), padded[starts[j]:starts[j+3]]), 0.25)
		}
	}
	var sum float64
	for _, x := range v {
		sum += float64(x) * float64(x)
	}
	if sum > 0 {
		n := float32(1 / math.Sqrt(sum))
		for i := range v {
			v[i] *= n
		}
	}
	return v
}

const (
	fnvOffset uint64 = 14695981039346656037
	fnvPrime  uint64 = 1099511628211
)

func fnvByte(h uint64, b byte) uint64 { return (h ^ uint64(b)) * fnvPrime }

func fnvString(h uint64, s string) uint64 {
	for i := 0; i < len(s); i++ {
		h = fnvByte(h, s[i])
	}
	return h
}

type embeddingRequest struct {
	Model          string          `json:"model"`
	Input          json.RawMessage `json:"input"`
	EncodingFormat string          `json:"encoding_format"`
	Dimensions     *int            `json:"dimensions"`
	User           string          `json:"user"`
}

type embeddingResponse struct {
	ID      string          `json:"id"`
	Object  string          `json:"object"`
	Created int64           `json:"created"`
	Model   string          `json:"model"`
	Data    []embeddingData `json:"data"`
	Usage   embeddingUsage  `json:"usage"`
}

type embeddingData struct {
	Object string `json:"object"`
	Index  int    `json:"index"`
	// Embedding is a []float32, or with encoding_format "base64" a string holding the
	// little-endian float32 bytes, as OpenAI sends them (its Python and Node SDKs ask
	// for base64 by default).
	Embedding any `json:"embedding"`
}

type embeddingUsage struct {
	PromptTokens int `json:"prompt_tokens"`
	TotalTokens  int `json:"total_tokens"`
}

// parseEmbeddings validates an embeddings request and returns its texts, the dimension
// to embed at and whether to answer in base64.
func (s *Server) parseEmbeddings(body io.Reader) (texts []string, dim int, b64 bool, model string, err error) {
	var req embeddingRequest
	if err := decodeBody(body, &req); err != nil {
		return nil, 0, false, "", err
	}
	model = req.Model
	switch model {
	case "":
		model = EmbeddingModel
	case EmbeddingModel, s.live.Model():
		// Clients configured with the server's one model name get embeddings too.
	default:
		return nil, 0, false, "", &apiError{http.StatusNotFound, fmt.Sprintf("The model `%s` does not exist.", req.Model)}
	}
	switch req.EncodingFormat {
	case "", "float":
	case "base64":
		b64 = true
	default:
		return nil, 0, false, "", badRequest(`encoding_format must be "float" or "base64", got %q`, req.EncodingFormat)
	}
	dim = s.live.EmbedDim()
	if req.Dimensions != nil {
		if *req.Dimensions < 1 || *req.Dimensions > MaxEmbedDim {
			return nil, 0, false, "", badRequest("dimensions must be between 1 and %d, got %d", MaxEmbedDim, *req.Dimensions)
		}
		dim = *req.Dimensions
	}
	var one string
	switch {
	case len(req.Input) == 0 || bytes.Equal(req.Input, []byte("null")):
		return nil, 0, false, "", badRequest("input is required: a string or a list of strings")
	case json.Unmarshal(req.Input, &one) == nil:
		texts = []string{one}
	case json.Unmarshal(req.Input, &texts) == nil:
		if len(texts) == 0 {
			return nil, 0, false, "", badRequest("input must not be an empty list")
		}
		if len(texts) > maxEmbedInputs {
			return nil, 0, false, "", badRequest("input has %d items; at most %d are allowed per request", len(texts), maxEmbedInputs)
		}
	default:
		// Token-id inputs would need the ids turned back into text, which the
		// simulator's hashed tokenizer cannot do, as on /v1/completions.
		return nil, 0, false, "", badRequest("input must be a string or a list of strings; token-id input is not simulated")
	}
	maxLen := s.live.Profile().MaxModelLen
	for i, t := range texts {
		if n := CountTokens(t); n > maxLen {
			return nil, 0, false, "", badRequest("This model's maximum context length is %d tokens. However, input[%d] has %d tokens. Please reduce the length of the input.", maxLen, i, n)
		}
	}
	return texts, dim, b64, model, nil
}

func (s *Server) embeddings(w http.ResponseWriter, r *http.Request) {
	texts, dim, b64, model, err := s.parseEmbeddings(r.Body)
	if err != nil {
		writeError(w, err)
		return
	}
	resp := embeddingResponse{
		ID: newID("embd-"), Object: "list", Created: time.Now().Unix(), Model: model,
		Data: make([]embeddingData, len(texts)),
	}
	for i, t := range texts {
		if err := r.Context().Err(); err != nil {
			return // the client left; a long batch stops early
		}
		v := Embed(t, dim)
		var e any = v
		if b64 {
			e = encodeFloat32s(v)
		}
		resp.Data[i] = embeddingData{Object: "embedding", Index: i, Embedding: e}
		resp.Usage.PromptTokens += CountTokens(t)
	}
	resp.Usage.TotalTokens = resp.Usage.PromptTokens
	writeJSON(w, resp)
}

func encodeFloat32s(v []float32) string {
	b := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(x))
	}
	return base64.StdEncoding.EncodeToString(b)
}
