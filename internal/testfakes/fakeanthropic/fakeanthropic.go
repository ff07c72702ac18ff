// Package fakeanthropic is an in-process Anthropic Messages API upstream for tests. It
// speaks the real wire protocol (POST /v1/messages as JSON and as server-sent events,
// GET /v1/models, Anthropic's error bodies and headers) and checks requests the way the
// API does for API version 2026-10-21, so a translation mistake fails here as it would
// against Anthropic: sampling parameters, empty text blocks, a tool_use without its
// tool_result, a prefill ending in whitespace are all 400s. Answers are deterministic,
// so a call continued from a prefill can be compared byte for byte with an uninterrupted
// one, and faults can be injected at run time.
package fakeanthropic

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/aios-go/aios/internal/testfakes/fakegen"
)

// DefaultModel is the model listed when Options.Model is empty.
const DefaultModel = "claude-fake-1"

// Options configures a Server. The zero value serves 16-token answers with no delay.
type Options struct {
	// Model is the one model served; requests naming another get 404 not_found_error.
	// When empty any model is accepted.
	Model string
	// DefaultTokens is the length of an answer that max_tokens does not cut. Default 16.
	DefaultTokens int
	// Latency is the time to the first token; TokenDelay the time between tokens.
	Latency    time.Duration
	TokenDelay time.Duration
	// AutoToolCall makes the model call the first tool under tool_choice auto (or none
	// given), unless the conversation ends with tool results, so an agent loop gets one
	// tool round trip and then a text answer. Under auto it says a few words first, as
	// Claude does.
	AutoToolCall bool
	// APIKey, when set, is required as x-api-key or as a bearer token.
	APIKey string
	// RejectPrefill answers a conversation that ends with an assistant message with the
	// 400 that Claude 4.6 and later models give.
	RejectPrefill bool
}

// Server is a running fake. Its methods are safe for concurrent use.
type Server struct {
	fakegen.Base
	opts     Options
	prefixes fakegen.Prefixes
}

// New starts a fake on a loopback port; the API lives under /v1 of its URL.
func New(opts Options) *Server {
	if opts.DefaultTokens <= 0 {
		opts.DefaultTokens = 16
	}
	s := &Server{opts: opts}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/messages", s.handleMessages)
	mux.HandleFunc("GET /v1/models", s.handleModels)
	s.Start(mux)
	return s
}

func (s *Server) model() string {
	if s.opts.Model != "" {
		return s.opts.Model
	}
	return DefaultModel
}

func (s *Server) requestID() string { return fmt.Sprintf("req_%020d", s.NextID()) }

// writeError answers in Anthropic's error shape.
func (s *Server) writeError(w http.ResponseWriter, status int, typ, msg string) {
	id := s.requestID()
	w.Header().Set("request-id", id)
	writeJSON(w, status, map[string]any{
		"type":       "error",
		"error":      map[string]any{"type": typ, "message": msg},
		"request_id": id,
	})
}

// errorType is the error type Anthropic gives each status.
func errorType(status int) string {
	switch status {
	case 400:
		return "invalid_request_error"
	case 401:
		return "authentication_error"
	case 402:
		return "billing_error"
	case 403:
		return "permission_error"
	case 404:
		return "not_found_error"
	case 413:
		return "request_too_large"
	case 429:
		return "rate_limit_error"
	case 504:
		return "timeout_error"
	case 529:
		return "overloaded_error"
	}
	return "api_error"
}

func (s *Server) authorized(w http.ResponseWriter, r *http.Request) bool {
	if s.opts.APIKey == "" || r.Header.Get("x-api-key") == s.opts.APIKey ||
		r.Header.Get("Authorization") == "Bearer "+s.opts.APIKey {
		return true
	}
	s.writeError(w, http.StatusUnauthorized, "authentication_error", "invalid x-api-key")
	return false
}

func (s *Server) handleModels(w http.ResponseWriter, r *http.Request) {
	if !s.authorized(w, r) {
		return
	}
	id := s.model()
	writeJSON(w, http.StatusOK, map[string]any{
		"data": []any{map[string]any{
			"type": "model", "id": id, "display_name": "Claude (fake)",
			"created_at": "2026-01-01T00:00:00Z",
		}},
		"has_more": false, "first_id": id, "last_id": id,
	})
}

func (s *Server) handleMessages(w http.ResponseWriter, r *http.Request) {
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
			w.Header().Set("retry-after", strconv.Itoa(int((ra+time.Second-1)/time.Second)))
			w.Header().Set("anthropic-ratelimit-requests-remaining", "0")
			s.writeError(w, http.StatusTooManyRequests, "rate_limit_error",
				orDefault(fault.Message, "This request would exceed your organization's rate limit of 50 requests per minute. Please try again later."))
			return
		case fakegen.Internal:
			s.writeError(w, http.StatusInternalServerError, "api_error", orDefault(fault.Message, "Internal server error"))
			return
		case fakegen.Overloaded:
			s.writeError(w, 529, "overloaded_error", orDefault(fault.Message, "Overloaded"))
			return
		case fakegen.Status:
			st := fault.Status
			if st == 0 {
				st = http.StatusInternalServerError
			}
			s.writeError(w, st, errorType(st), orDefault(fault.Message, http.StatusText(st)))
			return
		case fakegen.Hang:
			s.Hang(r)
			return
		}
	}

	var req request
	if msg := decode(body, &req); msg != "" {
		s.writeError(w, http.StatusBadRequest, "invalid_request_error", msg)
		return
	}
	if s.opts.Model != "" && req.Model != s.opts.Model {
		s.writeError(w, http.StatusNotFound, "not_found_error", "model: "+req.Model)
		return
	}
	p, msg := s.plan(&req)
	if msg != "" {
		s.writeError(w, http.StatusBadRequest, "invalid_request_error", msg)
		return
	}
	cut := -1
	if faulty && (fault.Kind == fakegen.Disconnect || fault.Kind == fakegen.StreamError) {
		cut = max(fault.AfterTokens, 0)
	}
	id := fmt.Sprintf("msg_%024d", s.NextID())
	model := req.Model
	if req.Stream {
		s.stream(w, r, id, model, p, cut, faulty && fault.Kind == fakegen.StreamError)
		return
	}
	s.complete(w, r, id, model, p, cut)
}

func (s *Server) pace(r *http.Request, i int) bool {
	return s.Pace(r, i, s.opts.Latency, s.opts.TokenDelay)
}

func (s *Server) complete(w http.ResponseWriter, r *http.Request, id, model string, p *plan, cut int) {
	for i := range p.tokens() {
		if !s.pace(r, i) {
			return
		}
	}
	if cut >= 0 {
		panic(http.ErrAbortHandler)
	}
	content := []any{}
	for _, b := range p.blocks {
		switch b.kind {
		case "text":
			content = append(content, map[string]any{"type": "text", "text": strings.Join(b.pieces, "")})
		case "tool_use":
			content = append(content, map[string]any{"type": "tool_use", "id": b.id, "name": b.name,
				"input": json.RawMessage(strings.Join(b.pieces, ""))})
		}
	}
	w.Header().Set("request-id", s.requestID())
	writeJSON(w, http.StatusOK, map[string]any{
		"id": id, "type": "message", "role": "assistant", "model": model, "content": content,
		"stop_reason": p.stop, "stop_sequence": nil, "usage": p.usage(p.tokens()),
	})
}

func (s *Server) stream(w http.ResponseWriter, r *http.Request, id, model string, p *plan, cut int, errorEvent bool) {
	rc := http.NewResponseController(w)
	w.Header().Set("Content-Type", "text/event-stream; charset=utf-8")
	w.Header().Set("Cache-Control", "no-cache")
	w.Header().Set("request-id", s.requestID())
	w.WriteHeader(http.StatusOK)
	send := func(typ string, v map[string]any) bool {
		v["type"] = typ
		b, err := json.Marshal(v)
		if err != nil {
			panic(err) // our own values always marshal
		}
		if _, err := fmt.Fprintf(w, "event: %s\ndata: %s\n\n", typ, b); err != nil {
			return false
		}
		return rc.Flush() == nil
	}
	start := p.usage(1)
	if !send("message_start", map[string]any{"message": map[string]any{
		"id": id, "type": "message", "role": "assistant", "model": model, "content": []any{},
		"stop_reason": nil, "stop_sequence": nil, "usage": start,
	}}) {
		return
	}
	n := 0 // content deltas streamed
	for bi, b := range p.blocks {
		var cb map[string]any
		if b.kind == "text" {
			cb = map[string]any{"type": "text", "text": ""}
		} else {
			cb = map[string]any{"type": "tool_use", "id": b.id, "name": b.name, "input": map[string]any{}}
		}
		if !send("content_block_start", map[string]any{"index": bi, "content_block": cb}) {
			return
		}
		if bi == 0 && !send("ping", map[string]any{}) {
			return
		}
		if b.kind == "tool_use" {
			// Anthropic opens every tool input with an empty fragment.
			if !send("content_block_delta", map[string]any{"index": bi, "delta": map[string]any{"type": "input_json_delta", "partial_json": ""}}) {
				return
			}
		}
		for _, piece := range b.pieces {
			if n == cut {
				if errorEvent {
					send("error", map[string]any{"error": map[string]any{"type": "overloaded_error", "message": "Overloaded"}})
					return
				}
				panic(http.ErrAbortHandler)
			}
			if !s.pace(r, n) {
				return
			}
			var d map[string]any
			if b.kind == "text" {
				d = map[string]any{"type": "text_delta", "text": piece}
			} else {
				d = map[string]any{"type": "input_json_delta", "partial_json": piece}
			}
			if !send("content_block_delta", map[string]any{"index": bi, "delta": d}) {
				return
			}
			n++
		}
		if !send("content_block_stop", map[string]any{"index": bi}) {
			return
		}
	}
	if cut >= 0 {
		if errorEvent {
			send("error", map[string]any{"error": map[string]any{"type": "overloaded_error", "message": "Overloaded"}})
			return
		}
		panic(http.ErrAbortHandler)
	}
	if !send("message_delta", map[string]any{
		"delta": map[string]any{"stop_reason": p.stop, "stop_sequence": nil},
		"usage": map[string]any{"output_tokens": p.tokens()},
	}) {
		return
	}
	send("message_stop", map[string]any{})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // our own values always marshal
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

func orDefault(s, def string) string {
	if s != "" {
		return s
	}
	return def
}
