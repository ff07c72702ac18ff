package embed

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/aios-go/aios/api"
	"github.com/aios-go/aios/internal/llm/upstream"
)

// OpenAIConfig configures an embedder over an OpenAI-compatible embeddings endpoint.
type OpenAIConfig struct {
	// BaseURL is the server's address, with or without /v1: "http://localhost:8000",
	// "http://localhost:11434/v1", "https://api.openai.com/v1". A URL with another path
	// (a proxy prefix) is used as written. Requests go to BaseURL + "/embeddings".
	BaseURL string
	APIKey  string // sent as a Bearer token when set
	Model   string // required: it names the vector space
	// Dimensions asks the server to shorten vectors (OpenAI's text-embedding-3 models and
	// vLLM's Matryoshka models); 0 leaves it to the model. When set, a response of any
	// other length is refused rather than silently mixed into a store.
	Dimensions int
	BatchSize  int           // inputs per request; 0 means 64
	Timeout    time.Duration // per request (one batch); 0 means one minute
	// Client replaces the HTTP client (tests, proxies); nil means upstream.HTTPClient.
	Client *http.Client
}

const (
	defaultBatchSize = 64
	defaultTimeout   = time.Minute
	// maxEmbeddingsBody bounds a response: 64 inputs of 4,096 dimensions in JSON is
	// about 6 MiB, so this leaves room for large batches and models without letting a
	// broken server make us buffer without end.
	maxEmbeddingsBody = 256 << 20
	// maxErrorBody is how much of an error response is read for its message.
	maxErrorBody = 64 << 10
)

// errTimeout is the cause of a request cancelled by OpenAIConfig.Timeout, which tells
// it from the caller's own deadline.
var errTimeout = errors.New("embeddings request timeout")

// OpenAI embeds texts with POST {base}/v1/embeddings, the API that OpenAI, vLLM, Ollama
// and the simulated engine (internal/llm/sim) all serve. Inputs are sent in batches, in
// order; the answer is checked (one vector per input, all of one length) and each
// vector L2-normalised, since servers differ on whether they normalise. Failures are
// *api.Error of a backend kind; it does not retry, leaving that to a caller that knows
// whether waiting (RetryAfter) is worth it. Safe for concurrent use.
type OpenAI struct {
	cfg    OpenAIConfig
	base   string // the API root, ending in "/"
	client *http.Client
	// dim is the vector length the server answered with first. Name does not carry it
	// when Dimensions is unset, so a later answer of another length means the model
	// behind the URL changed, and mixing its vectors with stored ones would be wrong.
	dim atomic.Int64
}

var _ Embedder = (*OpenAI)(nil)

// NewOpenAI checks cfg and returns the embedder; it makes no request.
func NewOpenAI(cfg OpenAIConfig) (*OpenAI, error) {
	base, err := upstream.NormalizeBaseURL(cfg.BaseURL, "embeddings")
	if err != nil {
		return nil, err
	}
	if strings.TrimSpace(cfg.Model) == "" {
		return nil, api.Errorf(api.CallerBadRequest, "embeddings: model is required; it names the vector space (e.g. text-embedding-3-small, nomic-embed-text)")
	}
	if cfg.Dimensions < 0 || cfg.BatchSize < 0 || cfg.Timeout < 0 {
		return nil, api.Errorf(api.CallerBadRequest, "embeddings: dimensions, batch size and timeout must not be negative (got %d, %d, %v)", cfg.Dimensions, cfg.BatchSize, cfg.Timeout)
	}
	if cfg.BatchSize == 0 {
		cfg.BatchSize = defaultBatchSize
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = defaultTimeout
	}
	o := &OpenAI{cfg: cfg, base: base, client: cfg.Client}
	if o.client == nil {
		// Storage may embed from several goroutines at once; keep that many connections.
		o.client = upstream.HTTPClient(16)
	}
	if cfg.Dimensions > 0 {
		o.dim.Store(int64(cfg.Dimensions))
	}
	return o, nil
}

// Name is "openai:" + the model, + ":" + the dimension when one was asked for.
func (o *OpenAI) Name() string {
	if o.cfg.Dimensions > 0 {
		return fmt.Sprintf("openai:%s:%d", o.cfg.Model, o.cfg.Dimensions)
	}
	return "openai:" + o.cfg.Model
}

// Embed returns one unit vector per text, in order. Blank texts are not sent (OpenAI
// refuses empty input) and get the zero vector, as Hashed gives them, once the
// dimension is known; a call of only blank texts before then is sent as is.
func (o *OpenAI) Embed(ctx context.Context, texts []string) ([][]float32, error) {
	out := make([][]float32, len(texts))
	send := make([]int, 0, len(texts))
	for i, t := range texts {
		if strings.TrimSpace(t) != "" {
			send = append(send, i)
		}
	}
	if len(send) == 0 && o.dim.Load() == 0 {
		for i := range texts {
			send = append(send, i)
		}
	}
	batch := make([]string, 0, min(len(send), o.cfg.BatchSize))
	for start := 0; start < len(send); start += o.cfg.BatchSize {
		idx := send[start:min(start+o.cfg.BatchSize, len(send))]
		batch = batch[:0]
		for _, i := range idx {
			batch = append(batch, texts[i])
		}
		vecs, err := o.post(ctx, batch)
		if err != nil {
			return nil, err
		}
		for k, i := range idx {
			out[i] = vecs[k]
		}
	}
	dim := int(o.dim.Load())
	for i := range out {
		if out[i] == nil {
			out[i] = make([]float32, dim)
		}
	}
	return out, nil
}

type embeddingsRequest struct {
	Model          string   `json:"model"`
	Input          []string `json:"input"`
	EncodingFormat string   `json:"encoding_format"`
	Dimensions     int      `json:"dimensions,omitempty"`
}

// post sends one batch and returns its vectors, normalised and checked against the
// dimension this embedder has seen.
func (o *OpenAI) post(ctx context.Context, batch []string) ([][]float32, error) {
	body, err := json.Marshal(embeddingsRequest{
		Model: o.cfg.Model, Input: batch, Dimensions: o.cfg.Dimensions,
		// Asked for explicitly: OpenAI's SDKs default to base64, and a server following
		// them would answer in a shape plain JSON clients did not ask for.
		EncodingFormat: "float",
	})
	if err != nil {
		return nil, api.Wrap(api.KernelInternal, err, "embeddings: encoding the request")
	}
	rctx, cancel := context.WithTimeoutCause(ctx, o.cfg.Timeout, errTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(rctx, http.MethodPost, o.base+"embeddings", bytes.NewReader(body))
	if err != nil {
		return nil, api.Wrap(api.KernelInternal, err, "embeddings: building the request")
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	if o.cfg.APIKey != "" {
		req.Header.Set("Authorization", "Bearer "+o.cfg.APIKey)
	}
	res, err := o.client.Do(req)
	if err != nil {
		return nil, o.classify(ctx, rctx, err)
	}
	defer res.Body.Close()
	if res.StatusCode < 200 || res.StatusCode > 299 {
		b, _ := io.ReadAll(io.LimitReader(res.Body, maxErrorBody))
		return nil, o.statusError(res.StatusCode, res.Header, upstream.ErrorMessage(b))
	}
	data, err := io.ReadAll(io.LimitReader(res.Body, maxEmbeddingsBody+1))
	if err != nil {
		return nil, o.classify(ctx, rctx, err)
	}
	if len(data) > maxEmbeddingsBody {
		return nil, api.Errorf(api.BackendBadResponse, "upstream %s sent an embeddings response over %d MiB", o.base, maxEmbeddingsBody>>20)
	}
	vecs, err := decodeEmbeddings(o.base, data, len(batch))
	if err != nil {
		return nil, err
	}
	if len(vecs) > 0 {
		d := int64(len(vecs[0]))
		if !o.dim.CompareAndSwap(0, d) {
			switch want := o.dim.Load(); {
			case want == d:
			case o.cfg.Dimensions > 0:
				return nil, api.Errorf(api.BackendBadResponse,
					"upstream %s answered with %d-dimensional vectors where %d were asked for: does model %q support dimensions?",
					o.base, d, want, o.cfg.Model)
			default:
				return nil, api.Errorf(api.BackendBadResponse,
					"upstream %s answered with %d-dimensional vectors where it gave %d before: is model %q still the one served there?",
					o.base, d, want, o.cfg.Model)
			}
		}
	}
	return vecs, nil
}

// decodeEmbeddings reads an embeddings response for n inputs: one vector per input,
// placed by its index, all of one nonzero length, each scaled to unit length. Every
// failure is a BackendBadResponse naming base.
func decodeEmbeddings(base string, data []byte, n int) ([][]float32, error) {
	// Only data is read: "model" may be an alias of the one asked for, and usage has no
	// caller here.
	var resp struct {
		Data []struct {
			Index     *int            `json:"index"`
			Embedding json.RawMessage `json:"embedding"`
		} `json:"data"`
	}
	bad := func(format string, args ...any) error {
		return api.Errorf(api.BackendBadResponse, "upstream %s sent a bad embeddings response: %s", base, fmt.Sprintf(format, args...))
	}
	if err := json.Unmarshal(data, &resp); err != nil {
		return nil, api.Wrap(api.BackendBadResponse, err, "upstream %s sent malformed embeddings JSON", base)
	}
	if len(resp.Data) != n {
		return nil, bad("%d embeddings for %d inputs", len(resp.Data), n)
	}
	out := make([][]float32, n)
	dim := 0
	for pos, d := range resp.Data {
		i := pos // a server that leaves out index answers in input order
		if d.Index != nil {
			i = *d.Index
		}
		if i < 0 || i >= n {
			return nil, bad("index %d out of range for %d inputs", i, n)
		}
		if out[i] != nil {
			return nil, bad("index %d appears twice", i)
		}
		v, err := decodeVector(d.Embedding)
		if err != nil {
			return nil, bad("embedding %d: %v", i, err)
		}
		if len(v) == 0 {
			return nil, bad("embedding %d is empty", i)
		}
		if pos == 0 {
			dim = len(v)
		} else if len(v) != dim {
			return nil, bad("embedding %d has %d dimensions, others %d", i, len(v), dim)
		}
		out[i] = v
	}
	for _, v := range out {
		normalize(v)
	}
	return out, nil
}

// decodeVector reads an embedding as a JSON array of numbers or, as servers that follow
// OpenAI's SDKs may send it, base64 of little-endian float32s.
func decodeVector(raw json.RawMessage) ([]float32, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) > 0 && raw[0] == '"' {
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return nil, err
		}
		b, err := base64.StdEncoding.DecodeString(s)
		if err != nil {
			return nil, fmt.Errorf("not base64: %w", err)
		}
		if len(b)%4 != 0 {
			return nil, fmt.Errorf("%d bytes of base64 floats, not a multiple of 4", len(b))
		}
		v := make([]float32, len(b)/4)
		for i := range v {
			v[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
		}
		for _, x := range v {
			if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
				return nil, errors.New("a component is NaN or infinite")
			}
		}
		return v, nil
	}
	var v []float32
	if err := json.Unmarshal(raw, &v); err != nil {
		return nil, err
	}
	return v, nil
}

// normalize is Normalize made safe for any finite input: scaling by the largest
// component first keeps the sum of squares from overflowing float32's reach and the
// inverse norm of a vector of tiny components from overflowing to +Inf.
func normalize(v []float32) {
	var top float64
	for _, x := range v {
		top = max(top, math.Abs(float64(x)))
	}
	if top == 0 {
		return
	}
	for i := range v {
		v[i] = float32(float64(v[i]) / top)
	}
	Normalize(v)
}

// classify explains a request that got no response: the caller's context, this
// embedder's timeout, or the transport.
func (o *OpenAI) classify(ctx, rctx context.Context, err error) *api.Error {
	if e := upstream.ContextError(ctx, rctx, upstream.Target{Provider: "openai-embeddings", Name: o.cfg.Model, Base: o.base}); e != nil {
		return e
	}
	if errors.Is(context.Cause(rctx), errTimeout) {
		return api.Wrap(api.BackendTimeout, err, "upstream %s did not answer an embeddings request within %v", o.base, o.cfg.Timeout)
	}
	return upstream.TransportError(err, o.base, "is the embedding server running there?")
}

// statusError maps an error status to a kind as the openai chat backend does: rate
// limits and overload are worth retrying after Retry-After, other server errors call
// for another backend, client errors will fail anywhere.
func (o *OpenAI) statusError(status int, h http.Header, msg string) *api.Error {
	detail := fmt.Sprintf("upstream %s answered HTTP %d to an embeddings request", o.base, status)
	if msg != "" {
		detail += ": " + msg
	}
	e := api.Errorf(upstream.StatusKind(status), "%s", detail)
	switch status {
	case http.StatusUnauthorized, http.StatusForbidden:
		e.Message += " (the upstream refused the API key: check the embedder's api_key)"
	case http.StatusNotFound:
		// The usual cause: a chat-only server (vLLM serves embeddings only for a pooling
		// model) or a model name the server does not know.
		e.Message += fmt.Sprintf(" (does it serve embedding model %q at /embeddings?)", o.cfg.Model)
	}
	e.RetryAfter = upstream.OpenAIRetryAfter(h, time.Now())
	return e
}
