package server

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"slices"
	"strings"
	"sync"

	"github.com/aios-go/aios/api"
	"github.com/aios-go/aios/internal/embed"
	"github.com/aios-go/aios/internal/kernel"
	"github.com/aios-go/aios/internal/llm"
	"github.com/aios-go/aios/internal/llm/tokenizer"
)

// EmbeddingModels finds what embeds for POST /v1/embeddings. Embedder returns the
// embedder of model at dimensions (0: the model's own size); its error is CallerNotFound
// for a model the kernel does not serve, CallerBadRequest for one that serves no
// embeddings.
type EmbeddingModels interface {
	Embedder(model string, dimensions int) (embed.Embedder, error)
}

// routesOpenAIMore serves the rest of the OpenAI surface: embeddings, completions,
// one model, and OpenAI-shaped errors for unknown routes and methods under /v1.
func (s *Server) routesOpenAIMore() {
	s.mux.HandleFunc("POST /v1/embeddings", s.handleEmbeddings)
	s.mux.HandleFunc("POST /v1/completions", s.handleCompletions)
	s.mux.HandleFunc("GET /v1/models/{id...}", s.handleModel)
	// Go's ServeMux prefers the more specific pattern, so these see only what no /v1
	// route of any method matched, and what a route matched by path but not by method.
	s.mux.HandleFunc("/v1/", s.handleV1Unknown)
	s.mux.HandleFunc("/v1", s.handleV1Unknown)
}

// maxEmbedInputs is OpenAI's limit on inputs per request.
const maxEmbedInputs = 2048

func (s *Server) handleEmbeddings(w http.ResponseWriter, r *http.Request) {
	var req api.EmbeddingRequest
	if err := s.decodeBody(w, r, &req); err != nil {
		writeOpenAIError(w, err)
		return
	}
	texts, b64, err := embeddingInput(&req)
	if err != nil {
		writeOpenAIError(w, err)
		return
	}
	dim := 0
	if req.Dimensions != nil {
		dim = *req.Dimensions
	}
	if s.opts.Embeddings == nil {
		writeOpenAIError(w, api.Errorf(api.CallerBadRequest, "model %q does not serve embeddings: no model of this kernel does", req.Model))
		return
	}
	em, err := s.opts.Embeddings.Embedder(req.Model, dim)
	if err != nil {
		if api.KindOf(err) == api.CallerNotFound {
			writeCodedError(w, http.StatusNotFound, api.CallerNotFound, errorMessage(err), "model", "model_not_found")
			return
		}
		writeOpenAIError(w, err)
		return
	}
	vecs, err := em.Embed(r.Context(), texts)
	if err != nil {
		writeOpenAIError(w, err)
		return
	}
	if len(vecs) != len(texts) {
		writeOpenAIError(w, api.Errorf(api.BackendBadResponse, "the embedder returned %d vectors for %d inputs", len(vecs), len(texts)))
		return
	}
	out := api.EmbeddingResponse{Object: "list", Model: req.Model, Data: make([]api.Embedding, len(texts))}
	for i, v := range vecs {
		var e any = v
		if b64 {
			e = float32sBase64(v)
		}
		out.Data[i] = api.Embedding{Object: "embedding", Index: i, Embedding: e}
		out.Usage.PromptTokens += tokenizer.Count(texts[i])
	}
	out.Usage.TotalTokens = out.Usage.PromptTokens
	writeJSON(w, http.StatusOK, out)
}

// embeddingInput checks an embeddings request and returns its texts and whether to
// answer in base64.
func embeddingInput(req *api.EmbeddingRequest) ([]string, bool, error) {
	if req.Model == "" {
		return nil, false, api.Errorf(api.CallerBadRequest, "model is required: GET /v1/models lists the models")
	}
	b64 := false
	switch req.EncodingFormat {
	case "", "float":
	case "base64":
		b64 = true
	default:
		return nil, false, api.Errorf(api.CallerBadRequest, "encoding_format must be \"float\" or \"base64\", got %q", req.EncodingFormat)
	}
	if req.Dimensions != nil && *req.Dimensions < 1 {
		return nil, false, api.Errorf(api.CallerBadRequest, "dimensions must be at least 1, got %d", *req.Dimensions)
	}
	in := bytes.TrimSpace(req.Input)
	var texts []string
	var one string
	switch {
	case len(in) == 0 || bytes.Equal(in, []byte("null")):
		return nil, false, api.Errorf(api.CallerBadRequest, "input is required: a string or an array of strings")
	case json.Unmarshal(in, &one) == nil:
		texts = []string{one}
	case json.Unmarshal(in, &texts) == nil:
		if len(texts) == 0 {
			return nil, false, api.Errorf(api.CallerBadRequest, "input must not be an empty array")
		}
		if len(texts) > maxEmbedInputs {
			return nil, false, api.Errorf(api.CallerBadRequest, "input has %d items; at most %d are allowed per request", len(texts), maxEmbedInputs)
		}
	case in[0] == '[':
		return nil, false, api.Errorf(api.CallerBadRequest, "input must be a string or an array of strings; token-id arrays are not supported (send the text)")
	default:
		return nil, false, api.Errorf(api.CallerBadRequest, "input must be a string or an array of strings, not %.20s", in)
	}
	return texts, b64, nil
}

// float32sBase64 is a vector as OpenAI's base64 encoding: its little-endian float32s.
func float32sBase64(v []float32) string {
	b := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(x))
	}
	return base64.StdEncoding.EncodeToString(b)
}

func (s *Server) handleModel(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if slices.Contains(s.k.Models(), id) {
		writeJSON(w, http.StatusOK, api.Model{ID: id, Object: "model", Created: s.k.Started().Unix(), OwnedBy: "aios"})
		return
	}
	writeCodedError(w, http.StatusNotFound, api.CallerNotFound,
		fmt.Sprintf("The model `%s` does not exist or is not served by this kernel; GET /v1/models lists the models", id), "model", "model_not_found")
}

// writeCodedError writes OpenAI's error with a param (empty: null) and code.
func writeCodedError(w http.ResponseWriter, status int, k api.Kind, msg, param, code string) {
	var p *string
	if param != "" {
		p = &param
	}
	typ := openAIErrorBody(k, msg).Error.Type
	writeJSON(w, status, api.OpenAICodedError{
		Error:  api.OpenAICodedErrorDetail{Message: msg, Type: typ, Param: p, Code: code},
		Detail: msg, Kind: k,
	})
}

// methods a route may be registered for, in the order Allow lists them.
var routeMethods = []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete}

// handleV1Unknown answers what no /v1 route took: 405 with Allow when the path is served
// for other methods, else 404, in OpenAI's shape (Anthropic's under /v1/messages).
func (s *Server) handleV1Unknown(w http.ResponseWriter, r *http.Request) {
	var allow []string
	for _, m := range routeMethods {
		if m == r.Method {
			continue
		}
		probe := r.Clone(r.Context())
		probe.Method = m
		if _, pattern := s.mux.Handler(probe); pattern != "" && pattern != "/" && pattern != "/v1/" && pattern != "/v1" {
			allow = append(allow, m)
		}
	}
	anthropic := r.URL.Path == "/v1/messages" || strings.HasPrefix(r.URL.Path, "/v1/messages/")
	if len(allow) > 0 {
		if slices.Contains(allow, http.MethodGet) {
			allow = append(allow, http.MethodHead)
		}
		w.Header().Set("Allow", strings.Join(allow, ", "))
		msg := fmt.Sprintf("method %s is not allowed on %s; allowed: %s", r.Method, r.URL.Path, strings.Join(allow, ", "))
		if anthropic {
			writeJSON(w, http.StatusMethodNotAllowed, anthropicErrorBody(api.CallerBadRequest, msg))
			return
		}
		writeCodedError(w, http.StatusMethodNotAllowed, api.CallerBadRequest, msg, "", "method_not_allowed")
		return
	}
	msg := fmt.Sprintf("Unrecognized request URL (%s %s). This kernel serves the OpenAI-compatible routes listed in its README.", r.Method, r.URL.Path)
	if anthropic {
		writeJSON(w, http.StatusNotFound, anthropicErrorBody(api.CallerNotFound, msg))
		return
	}
	writeCodedError(w, http.StatusNotFound, api.CallerNotFound, msg, "", "unknown_url")
}

// defaultCompletionTokens is OpenAI's (and vLLM's) max_tokens for /v1/completions.
const defaultCompletionTokens = 16

// completionsCall checks a completions request and returns its prompts, stop
// sequences and the call each prompt makes (with the prompt as one user message:
// llm.Request has no raw prompt, so every backend takes it through its chat API).
func (s *Server) completionsCall(r *http.Request, req *api.CompletionRequest) ([]string, []string, kernel.LLMCall, error) {
	var call kernel.LLMCall
	prompts, err := completionPrompts(req.Prompt)
	if err != nil {
		return nil, nil, call, err
	}
	stops, err := stopList(req.Stop)
	if err != nil {
		return nil, nil, call, err
	}
	switch {
	case req.N != nil && *req.N != 1:
		return nil, nil, call, api.Errorf(api.CallerBadRequest, "n must be 1 here, got %d; send the request again for more completions", *req.N)
	case req.BestOf != nil && *req.BestOf != 1:
		return nil, nil, call, api.Errorf(api.CallerBadRequest, "best_of must be 1 here, got %d", *req.BestOf)
	case req.Logprobs != nil:
		return nil, nil, call, api.Errorf(api.CallerBadRequest, "logprobs are not supported")
	case req.Suffix != nil && *req.Suffix != "":
		return nil, nil, call, api.Errorf(api.CallerBadRequest, "suffix (insertion) is not supported")
	}
	lreq := llm.Request{Model: req.Model, Temperature: req.Temperature, MaxTokens: defaultCompletionTokens}
	if lreq.Model == "" {
		lreq.Model = s.k.DefaultModel()
	}
	if req.MaxTokens != nil {
		if *req.MaxTokens < 1 {
			return nil, nil, call, api.Errorf(api.CallerBadRequest, "max_tokens must be at least 1, got %d", *req.MaxTokens)
		}
		lreq.MaxTokens = *req.MaxTokens
	}
	if err := callerConflict(r, req.User); err != nil {
		return nil, nil, call, err
	}
	agent := v1Agent(r, req.User)
	call = kernel.LLMCall{Agent: agent, Program: r.Header.Get(api.HeaderSession), Op: "completions", Request: lreq}
	return prompts, stops, call, nil
}

func completionPrompts(raw json.RawMessage) ([]string, error) {
	in := bytes.TrimSpace(raw)
	var one string
	var many []string
	switch {
	case len(in) == 0 || bytes.Equal(in, []byte("null")):
		return nil, api.Errorf(api.CallerBadRequest, "prompt is required: a string or an array of strings")
	case json.Unmarshal(in, &one) == nil:
		return []string{one}, nil
	case json.Unmarshal(in, &many) == nil:
		if len(many) == 0 {
			return nil, api.Errorf(api.CallerBadRequest, "prompt must not be an empty array")
		}
		if len(many) > maxCompletionPrompts {
			return nil, api.Errorf(api.CallerBadRequest, "prompt has %d items; at most %d are allowed per request", len(many), maxCompletionPrompts)
		}
		return many, nil
	case in[0] == '[':
		return nil, api.Errorf(api.CallerBadRequest, "prompt must be a string or an array of strings; token-id prompts are not supported (send the text)")
	}
	return nil, api.Errorf(api.CallerBadRequest, "prompt must be a string or an array of strings, not %.20s", in)
}

// maxCompletionPrompts bounds the prompts of one request, each its own syscall.
const maxCompletionPrompts = 64

// stopList reads OpenAI's stop: a string or an array of up to four strings.
func stopList(raw json.RawMessage) ([]string, error) {
	in := bytes.TrimSpace(raw)
	var one string
	var many []string
	switch {
	case len(in) == 0 || bytes.Equal(in, []byte("null")):
		return nil, nil
	case json.Unmarshal(in, &one) == nil:
		many = []string{one}
	case json.Unmarshal(in, &many) == nil:
		if len(many) > 4 {
			return nil, api.Errorf(api.CallerBadRequest, "stop has %d sequences; at most 4 are allowed", len(many))
		}
	default:
		return nil, api.Errorf(api.CallerBadRequest, "stop must be a string or an array of strings, not %.20s", in)
	}
	return many, nil
}

func (s *Server) handleCompletions(w http.ResponseWriter, r *http.Request) {
	var req api.CompletionRequest
	if err := s.decodeBody(w, r, &req); err != nil {
		writeOpenAIError(w, err)
		return
	}
	prompts, stops, call, err := s.completionsCall(r, &req)
	if err != nil {
		writeOpenAIError(w, err)
		return
	}
	if req.Stream {
		s.streamCompletions(w, r, &req, prompts, stops, call)
		return
	}
	type outcome struct {
		res  *llm.Result
		sc   *kernel.Syscall
		err  error
		stop *stopText
	}
	outs := make([]outcome, len(prompts))
	var wg sync.WaitGroup
	for i, p := range prompts {
		c := call
		c.Request.Messages = []api.Message{{Role: "user", Content: api.Content(p)}}
		wg.Go(func() {
			res, sc, err := s.k.CallLLM(r.Context(), c)
			noteSyscall(r.Context(), sc)
			outs[i] = outcome{res, sc, err, newStopText(stops)}
		})
	}
	wg.Wait()
	out := api.Completion{Object: "text_completion", Model: call.Request.Model, Usage: &api.Usage{}}
	for i, o := range outs {
		if o.err != nil {
			writeOpenAIError(w, o.err)
			return
		}
		if i == 0 {
			out.ID, out.Created = completionsID(o.sc), o.sc.Arrival().Unix()
		}
		text := o.stop.cut(o.res.Text)
		if req.Echo {
			text = prompts[i] + text
		}
		fr := completionFinish(o.res, o.stop)
		out.Choices = append(out.Choices, api.CompletionChoice{Text: text, Index: i, FinishReason: &fr})
		*out.Usage = addUsage(*out.Usage, o.res.Usage)
	}
	writeJSON(w, http.StatusOK, out)
}

func completionsID(sc *kernel.Syscall) string { return fmt.Sprintf("cmpl-aios-%d", sc.ID) }

func completionFinish(res *llm.Result, stop *stopText) string {
	switch {
	case stop.Stopped():
		return "stop"
	case res.FinishReason == "length":
		return "length"
	}
	return "stop"
}

// streamCompletions streams each prompt's completion as chunks with its choice index;
// the prompts run as concurrent syscalls, so their chunks interleave. Headers go with
// the first chunk, so a call that fails before it still gets an HTTP error status.
func (s *Server) streamCompletions(w http.ResponseWriter, r *http.Request, req *api.CompletionRequest, prompts, stops []string, call kernel.LLMCall) {
	sse := newSSEWriter(w)
	defer sse.Close()
	model := call.Request.Model
	var once sync.Once
	var id string
	var created int64
	chunk := func(i int, text string, finish *string) api.Completion {
		return api.Completion{ID: id, Object: "text_completion", Created: created, Model: model,
			Choices: []api.CompletionChoice{{Text: text, Index: i, FinishReason: finish}}}
	}
	// The first syscall to exist names the stream, before any can be dispatched.
	before := func(sc *kernel.Syscall) {
		once.Do(func() { id, created = completionsID(sc), sc.Arrival().Unix() })
	}
	type outcome struct {
		res *llm.Result
		err error
	}
	outs := make([]outcome, len(prompts))
	stopsOf := make([]*stopText, len(prompts))
	var wg sync.WaitGroup
	for i, p := range prompts {
		c := call
		c.Request.Messages = []api.Message{{Role: "user", Content: api.Content(p)}}
		st := newStopText(stops)
		stopsOf[i] = st
		var mu sync.Mutex // a call's deltas, and its final flush, one at a time
		echoed := !req.Echo
		send := func(text string) {
			sse.Begin(nil)
			if !echoed {
				echoed = true
				text = p + text
			}
			if text != "" {
				sse.Event(chunk(i, text, nil))
			}
		}
		c.Emit = func(d llm.Delta) {
			mu.Lock()
			defer mu.Unlock()
			if t := st.Push(d.Text); t != "" {
				send(t)
			}
		}
		wg.Go(func() {
			res, sc, err := s.submitTurn(before)(r.Context(), c)
			noteSyscall(r.Context(), sc)
			if err == nil {
				mu.Lock()
				send(st.Flush())
				mu.Unlock()
			}
			outs[i] = outcome{res, err}
		})
	}
	wg.Wait()
	usage := api.Usage{}
	for _, o := range outs {
		if o.err != nil {
			if !sse.Started() {
				writeOpenAIError(w, o.err)
				return
			}
			sse.Event(openAIErrorBody(api.KindOf(o.err), errorMessage(o.err)))
			return
		}
		usage = addUsage(usage, o.res.Usage)
	}
	sse.Begin(nil)
	for i, o := range outs {
		fr := completionFinish(o.res, stopsOf[i])
		sse.Event(chunk(i, "", &fr))
	}
	if req.StreamOptions != nil && req.StreamOptions.IncludeUsage {
		sse.Event(api.Completion{ID: id, Object: "text_completion", Created: created, Model: model,
			Choices: []api.CompletionChoice{}, Usage: &usage})
	}
	sse.Event("[DONE]")
}
