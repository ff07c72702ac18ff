// Package fakegemini is an in-process Gemini API upstream for tests. It speaks the real
// wire protocol (POST /v1beta/models/{model}:streamGenerateContent?alt=sse and
// :generateContent, GET /v1beta/models, google.rpc error bodies with RetryInfo) and
// checks requests as the API does: roles, one datum per part, function responses that
// answer the function calls of the turn before, and, like Gemini 3, a thought signature
// on every function call sent back. Answers are deterministic and faults can be
// injected at run time.
package fakegemini

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/aios-go/aios/internal/testfakes/fakegen"
)

// DefaultModel is the model listed when Options.Model is empty.
const DefaultModel = "gemini-fake-flash"

// Options configures a Server. The zero value serves 16-token answers with no delay.
type Options struct {
	// Model is the one model served; others get 404 NOT_FOUND. Empty accepts any.
	Model string
	// DefaultTokens is the length of an answer maxOutputTokens does not cut. Default 16.
	DefaultTokens int
	// Latency is the time to the first chunk; TokenDelay the time between chunks.
	Latency    time.Duration
	TokenDelay time.Duration
	// AutoToolCall makes the model call the first function under mode AUTO (or none
	// given) unless the conversation ends with function responses.
	AutoToolCall bool
	// APIKey, when set, is required as x-goog-api-key or ?key=.
	APIKey string
	// FunctionCallIDs gives each function call an id, as Vertex AI does; the Gemini API
	// usually sends none.
	FunctionCallIDs bool
	// RequireThoughtSignatures refuses a function call in the history that carries no
	// thought signature, as Gemini 3 models do, and attaches one to every call it makes.
	RequireThoughtSignatures bool
}

// Server is a running fake. Its methods are safe for concurrent use.
type Server struct {
	fakegen.Base
	opts     Options
	prefixes fakegen.Prefixes
}

// New starts a fake on a loopback port; the API lives under /v1beta of its URL.
func New(opts Options) *Server {
	if opts.DefaultTokens <= 0 {
		opts.DefaultTokens = 16
	}
	s := &Server{opts: opts}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1beta/models/{call}", s.handleGenerate)
	mux.HandleFunc("GET /v1beta/models", s.handleModels)
	s.Start(mux)
	return s
}

// SkipValidator is the signature Google documents for function calls whose real
// signature was lost (history built elsewhere, or by another model).
const SkipValidator = "skip_thought_signature_validator"

// Signature is the thought signature the fake attaches to its function call with id.
func Signature(callKey string) []byte { return []byte("sig:" + callKey) }

// status names the google.rpc code Gemini pairs with each HTTP status.
func status(code int) string {
	switch code {
	case 400:
		return "INVALID_ARGUMENT"
	case 401:
		return "UNAUTHENTICATED"
	case 403:
		return "PERMISSION_DENIED"
	case 404:
		return "NOT_FOUND"
	case 429:
		return "RESOURCE_EXHAUSTED"
	case 503:
		return "UNAVAILABLE"
	case 504:
		return "DEADLINE_EXCEEDED"
	}
	return "INTERNAL"
}

func errorBody(code int, msg string, details ...any) map[string]any {
	e := map[string]any{"code": code, "message": msg, "status": status(code)}
	if len(details) > 0 {
		e["details"] = details
	}
	return map[string]any{"error": e}
}

func writeError(w http.ResponseWriter, code int, msg string, details ...any) {
	writeJSON(w, code, errorBody(code, msg, details...))
}

func (s *Server) authorized(w http.ResponseWriter, r *http.Request) bool {
	if s.opts.APIKey == "" || r.Header.Get("x-goog-api-key") == s.opts.APIKey || r.URL.Query().Get("key") == s.opts.APIKey {
		return true
	}
	writeError(w, http.StatusBadRequest, "API key not valid. Please pass a valid API key.", map[string]any{
		"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID", "domain": "googleapis.com",
	})
	return false
}

func (s *Server) model() string {
	if s.opts.Model != "" {
		return s.opts.Model
	}
	return DefaultModel
}

func (s *Server) handleModels(w http.ResponseWriter, r *http.Request) {
	if !s.authorized(w, r) {
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"models": []any{map[string]any{
		"name": "models/" + s.model(), "version": "001", "displayName": "Gemini (fake)",
		"description": "A deterministic stand-in", "inputTokenLimit": 1048576, "outputTokenLimit": 8192,
		"supportedGenerationMethods": []string{"generateContent", "countTokens"},
	}}})
}

func (s *Server) handleGenerate(w http.ResponseWriter, r *http.Request) {
	model, method, ok := strings.Cut(r.PathValue("call"), ":")
	if !ok || (method != "generateContent" && method != "streamGenerateContent") {
		writeError(w, http.StatusNotFound, "unknown method "+r.PathValue("call"))
		return
	}
	body, done, err := s.Receive(r)
	defer done()
	if err != nil || !s.authorized(w, r) {
		return
	}

	fault, faulty := s.NextFault()
	if faulty {
		switch fault.Kind {
		case fakegen.RateLimited:
			ra := fault.RetryAfter
			if ra <= 0 {
				ra = time.Second
			}
			writeError(w, http.StatusTooManyRequests, orDefault(fault.Message, "Resource has been exhausted (e.g. check quota)."),
				map[string]any{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": fmt.Sprintf("%gs", ra.Seconds())})
			return
		case fakegen.Internal:
			writeError(w, http.StatusInternalServerError, orDefault(fault.Message, "An internal error has occurred. Please retry or report in https://developers.generativeai.google/guide/troubleshooting"))
			return
		case fakegen.Overloaded:
			writeError(w, http.StatusServiceUnavailable, orDefault(fault.Message, "The model is overloaded. Please try again later."))
			return
		case fakegen.Status:
			code := fault.Status
			if code == 0 {
				code = http.StatusInternalServerError
			}
			writeError(w, code, orDefault(fault.Message, http.StatusText(code)))
			return
		case fakegen.Hang:
			s.Hang(r)
			return
		}
	}
	if s.opts.Model != "" && model != s.opts.Model {
		writeError(w, http.StatusNotFound, fmt.Sprintf("models/%s is not found for API version v1beta, or is not supported for generateContent.", model))
		return
	}
	var req request
	if err := json.Unmarshal(body, &req); err != nil {
		writeError(w, http.StatusBadRequest, "Invalid JSON payload received. "+err.Error())
		return
	}
	p, msg := s.plan(&req)
	if msg != "" {
		writeError(w, http.StatusBadRequest, msg)
		return
	}
	cut := -1
	if faulty && (fault.Kind == fakegen.Disconnect || fault.Kind == fakegen.StreamError) {
		cut = max(fault.AfterTokens, 0)
	}
	id := fmt.Sprintf("resp-%012d", s.NextID())
	if method == "streamGenerateContent" {
		s.stream(w, r, id, model, p, cut, faulty && fault.Kind == fakegen.StreamError)
		return
	}
	for i := range p.pieces {
		if !s.pace(r, i) {
			return
		}
	}
	if cut >= 0 {
		panic(http.ErrAbortHandler)
	}
	var parts []any
	if text := p.text(); text != "" {
		parts = append(parts, map[string]any{"text": text})
	}
	for _, pc := range p.pieces {
		if pc.call != nil {
			parts = append(parts, pc.call)
		}
	}
	writeJSON(w, http.StatusOK, s.chunk(id, model, parts, p.finish, p.usage(len(p.pieces))))
}

func (s *Server) pace(r *http.Request, i int) bool {
	return s.Pace(r, i, s.opts.Latency, s.opts.TokenDelay)
}

func (s *Server) chunk(id, model string, parts []any, finish string, usage map[string]any) map[string]any {
	cand := map[string]any{"content": map[string]any{"parts": parts, "role": "model"}, "index": 0}
	if finish != "" {
		cand["finishReason"] = finish
	}
	return map[string]any{"candidates": []any{cand}, "usageMetadata": usage, "modelVersion": model, "responseId": id}
}

func (s *Server) stream(w http.ResponseWriter, r *http.Request, id, model string, p *plan, cut int, errorChunk bool) {
	rc := http.NewResponseController(w)
	w.Header().Set("Content-Type", "text/event-stream")
	w.WriteHeader(http.StatusOK)
	send := func(v any) bool {
		b, err := json.Marshal(v)
		if err != nil {
			panic(err) // our own values always marshal
		}
		// Gemini ends its SSE lines with CRLF.
		if _, err := fmt.Fprintf(w, "data: %s\r\n\r\n", b); err != nil {
			return false
		}
		return rc.Flush() == nil
	}
	for i, pc := range p.pieces {
		if i == cut {
			if errorChunk {
				send(errorBody(http.StatusServiceUnavailable, "The model is overloaded. Please try again later."))
				return
			}
			panic(http.ErrAbortHandler)
		}
		if !s.pace(r, i) {
			return
		}
		finish := ""
		if i == len(p.pieces)-1 && cut < 0 {
			finish = p.finish
		}
		var part any = map[string]any{"text": pc.text}
		if pc.call != nil {
			part = pc.call
		}
		if !send(s.chunk(id, model, []any{part}, finish, p.usage(i+1))) {
			return
		}
	}
	if cut >= 0 {
		if errorChunk {
			send(errorBody(http.StatusServiceUnavailable, "The model is overloaded. Please try again later."))
			return
		}
		panic(http.ErrAbortHandler)
	}
	if len(p.pieces) == 0 {
		send(s.chunk(id, model, []any{map[string]any{"text": ""}}, p.finish, p.usage(0)))
	}
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // our own values always marshal
	}
	w.Header().Set("Content-Type", "application/json; charset=UTF-8")
	w.WriteHeader(code)
	_, _ = w.Write(b)
}

func orDefault(s, def string) string {
	if s != "" {
		return s
	}
	return def
}

// b64 is how JSON carries the bytes of a thought signature.
func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }
