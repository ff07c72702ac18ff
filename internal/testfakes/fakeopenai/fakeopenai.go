// Package fakeopenai is an in-process OpenAI-compatible upstream for tests and benchmarks.
// It speaks the real wire protocol (chat.completion JSON, chat.completion.chunk SSE,
// /v1/models) so the code under test exercises its genuine HTTP client, and it produces
// deterministic text so a resumed call can be compared byte for byte with an
// uninterrupted one. Latency, per-token delay and faults are configurable, the faults at
// run time, so retry, failover and timeout paths can be driven on demand.
package fakeopenai

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aios-go/aios/api"
)

// DefaultModel is the model id served when Options.Model is empty.
const DefaultModel = "fake-model"

// Options configures a Server. The zero value serves 16-token answers with no delay.
type Options struct {
	// Model is the id /v1/models lists. When set, requests naming another model get 404,
	// as vLLM answers; when empty, any model name is accepted and DefaultModel is listed.
	Model string
	// DefaultTokens is the length of an answer when the request gives no max_tokens: the
	// sequence's natural end, at which finish_reason is "stop". Default 16.
	DefaultTokens int
	// Latency is the time from request to first token (queueing plus prefill).
	Latency time.Duration
	// TokenDelay is the time between consecutive output tokens (one decode step).
	TokenDelay time.Duration
	// AutoToolCall makes the fake call the first tool when tools are offered and
	// tool_choice is "auto" or absent, unless the last message is a tool result, so an
	// agent loop gets one tool round trip and then a text answer.
	AutoToolCall bool
	// APIKey, when set, is required as "Authorization: Bearer <APIKey>"; other requests
	// get 401 as OpenAI answers.
	APIKey string
}

// FaultKind selects how a request fails.
type FaultKind int

const (
	// FaultRateLimited answers 429 with a Retry-After header.
	FaultRateLimited FaultKind = iota + 1
	// FaultInternal answers 500.
	FaultInternal
	// FaultOverloaded answers 503.
	FaultOverloaded
	// FaultStatus answers Fault.Status with Fault.Message in OpenAI's error body.
	FaultStatus
	// FaultHang never answers; the request ends when the client gives up or the server
	// closes.
	FaultHang
	// FaultDisconnect streams Fault.AfterTokens tokens, then drops the connection with
	// no finish_reason and no [DONE]. A non-streaming request is dropped before answering.
	FaultDisconnect
)

// Fault is a failure applied to the next Count chat-completion requests.
type Fault struct {
	Kind  FaultKind
	Count int // requests it applies to; 0 means 1
	// RetryAfter is sent with FaultRateLimited, in whole seconds (default 1s).
	RetryAfter time.Duration
	// Status and Message are used by FaultStatus (and Message by the other status faults).
	Status  int
	Message string
	// AfterTokens is how many tokens FaultDisconnect streams before dropping.
	AfterTokens int
}

// Server is a running fake upstream. Its methods are safe for concurrent use.
type Server struct {
	opts Options
	ts   *httptest.Server
	// closing unblocks handlers that wait (hangs, delays) so Close does not wait on them.
	closing   chan struct{}
	closeOnce sync.Once

	requests    atomic.Int64
	inflight    atomic.Int64
	maxInflight atomic.Int64
	ids         atomic.Uint64

	mu         sync.Mutex
	faults     []Fault
	lastBody   []byte
	lastHeader http.Header
	// seen holds hashes of message prefixes already served, to report cached prompt
	// tokens the way an engine with prefix caching does (at message granularity).
	seen map[uint64]struct{}
}

// New starts a fake upstream on a loopback port.
func New(opts Options) *Server {
	if opts.DefaultTokens <= 0 {
		opts.DefaultTokens = 16
	}
	s := &Server{opts: opts, closing: make(chan struct{}), seen: make(map[uint64]struct{})}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/chat/completions", s.handleChat)
	mux.HandleFunc("GET /v1/models", s.handleModels)
	s.ts = httptest.NewServer(mux)
	return s
}

// URL is the server's root, e.g. http://127.0.0.1:PORT; the API lives under /v1.
func (s *Server) URL() string { return s.ts.URL }

// Close stops the server, ending hung and in-progress requests.
func (s *Server) Close() {
	s.closeOnce.Do(func() {
		close(s.closing)
		s.ts.CloseClientConnections()
		s.ts.Close()
	})
}

// InjectFault queues f; faults apply in the order injected, each to its Count requests.
func (s *Server) InjectFault(f Fault) {
	if f.Count <= 0 {
		f.Count = 1
	}
	s.mu.Lock()
	s.faults = append(s.faults, f)
	s.mu.Unlock()
}

// ClearFaults drops every queued fault.
func (s *Server) ClearFaults() {
	s.mu.Lock()
	s.faults = nil
	s.mu.Unlock()
}

// Requests is the number of chat-completion requests received, failed ones included.
func (s *Server) Requests() int { return int(s.requests.Load()) }

// InFlight is the number of chat-completion requests being answered now.
func (s *Server) InFlight() int { return int(s.inflight.Load()) }

// MaxInFlight is the most chat-completion requests ever answered at once, to check that
// a client never exceeds a concurrency limit.
func (s *Server) MaxInFlight() int { return int(s.maxInflight.Load()) }

// LastBody is the body of the last chat-completion request received.
func (s *Server) LastBody() []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return bytes.Clone(s.lastBody)
}

// LastHeader is the header of the last chat-completion request received.
func (s *Server) LastHeader() http.Header {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lastHeader.Clone()
}

func (s *Server) nextFault() (Fault, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.faults) == 0 {
		return Fault{}, false
	}
	f := s.faults[0]
	s.faults[0].Count--
	if s.faults[0].Count == 0 {
		s.faults = s.faults[1:]
	}
	return f, true
}

func (s *Server) modelID() string {
	if s.opts.Model != "" {
		return s.opts.Model
	}
	return DefaultModel
}

func (s *Server) authorized(w http.ResponseWriter, r *http.Request) bool {
	if s.opts.APIKey == "" || r.Header.Get("Authorization") == "Bearer "+s.opts.APIKey {
		return true
	}
	writeError(w, http.StatusUnauthorized, "invalid_request_error", "invalid_api_key",
		"Incorrect API key provided.")
	return false
}

func (s *Server) handleModels(w http.ResponseWriter, r *http.Request) {
	if !s.authorized(w, r) {
		return
	}
	writeJSON(w, http.StatusOK, api.ModelList{Object: "list", Data: []api.Model{{
		ID: s.modelID(), Object: "model", Created: 1700000000, OwnedBy: "fakeopenai",
	}}})
}

// chatRequest is the request as an OpenAI-compatible server reads it, with vLLM's
// continuation fields.
type chatRequest struct {
	api.ChatCompletionRequest
	ContinueFinalMessage bool  `json:"continue_final_message"`
	AddGenerationPrompt  *bool `json:"add_generation_prompt"`
}

func (s *Server) handleChat(w http.ResponseWriter, r *http.Request) {
	s.requests.Add(1)
	n := s.inflight.Add(1)
	defer s.inflight.Add(-1)
	for {
		m := s.maxInflight.Load()
		if n <= m || s.maxInflight.CompareAndSwap(m, n) {
			break
		}
	}

	body, err := io.ReadAll(r.Body)
	s.mu.Lock()
	s.lastBody = body
	s.lastHeader = r.Header.Clone()
	s.mu.Unlock()
	if err != nil {
		return // the client went away mid-body
	}
	if !s.authorized(w, r) {
		return
	}

	fault, faulty := s.nextFault()
	if faulty {
		switch fault.Kind {
		case FaultRateLimited:
			ra := fault.RetryAfter
			if ra <= 0 {
				ra = time.Second
			}
			w.Header().Set("Retry-After", strconv.Itoa(int((ra+time.Second-1)/time.Second)))
			writeError(w, http.StatusTooManyRequests, "rate_limit_exceeded", "rate_limit_exceeded",
				orDefault(fault.Message, "Rate limit reached, please try again later."))
			return
		case FaultInternal:
			writeError(w, http.StatusInternalServerError, "server_error", "",
				orDefault(fault.Message, "The server had an error while processing your request."))
			return
		case FaultOverloaded:
			writeError(w, http.StatusServiceUnavailable, "server_error", "",
				orDefault(fault.Message, "The engine is currently overloaded, please try again later."))
			return
		case FaultStatus:
			st := fault.Status
			if st == 0 {
				st = http.StatusInternalServerError
			}
			writeError(w, st, "invalid_request_error", "", orDefault(fault.Message, http.StatusText(st)))
			return
		case FaultHang:
			select {
			case <-r.Context().Done():
			case <-s.closing:
			}
			return
		}
	}

	var req chatRequest
	if err := json.Unmarshal(body, &req); err != nil {
		writeError(w, http.StatusBadRequest, "invalid_request_error", "", "invalid JSON body: "+err.Error())
		return
	}
	if s.opts.Model != "" && req.Model != s.opts.Model {
		writeError(w, http.StatusNotFound, "NotFoundError", "model_not_found",
			fmt.Sprintf("The model `%s` does not exist.", req.Model))
		return
	}
	p, err := s.plan(&req)
	if err != nil {
		writeError(w, http.StatusBadRequest, "invalid_request_error", "", err.Error())
		return
	}

	disconnectAt := -1
	if faulty && fault.Kind == FaultDisconnect {
		disconnectAt = max(fault.AfterTokens, 0)
	}
	id := fmt.Sprintf("chatcmpl-%016x", s.ids.Add(1))
	model := req.Model
	if model == "" {
		model = s.modelID()
	}
	if req.Stream {
		includeUsage := req.StreamOptions != nil && req.StreamOptions.IncludeUsage
		s.stream(w, r, id, model, p, includeUsage, disconnectAt)
		return
	}
	s.complete(w, r, id, model, p, disconnectAt)
}

// wait sleeps d unless the request ends or the server closes first; false means stop.
func (s *Server) wait(r *http.Request, d time.Duration) bool {
	if d <= 0 {
		return r.Context().Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-r.Context().Done():
		return false
	case <-s.closing:
		return false
	}
}

// pace waits the time before output piece i.
func (s *Server) pace(r *http.Request, i int) bool {
	if i == 0 {
		return s.wait(r, s.opts.Latency)
	}
	return s.wait(r, s.opts.TokenDelay)
}

func (s *Server) complete(w http.ResponseWriter, r *http.Request, id, model string, p *plan, disconnectAt int) {
	for i := range p.pieces {
		if !s.pace(r, i) {
			return
		}
	}
	if disconnectAt >= 0 {
		panic(http.ErrAbortHandler)
	}
	msg := message{Role: "assistant"}
	if text := p.text(); text != "" || len(p.calls) == 0 {
		msg.Content = &text
	}
	msg.ToolCalls = p.calls
	writeJSON(w, http.StatusOK, completion{
		ID: id, Object: "chat.completion", Created: time.Now().Unix(), Model: model,
		Choices: []choice{{Index: 0, Message: msg, FinishReason: p.finish}},
		Usage:   p.usage(),
	})
}

func (s *Server) stream(w http.ResponseWriter, r *http.Request, id, model string, p *plan, includeUsage bool, disconnectAt int) {
	rc := http.NewResponseController(w)
	w.Header().Set("Content-Type", "text/event-stream; charset=utf-8")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	created := time.Now().Unix()
	send := func(c api.ChatCompletionChunk) bool {
		c.ID, c.Object, c.Created, c.Model = id, "chat.completion.chunk", created, model
		if c.Choices == nil {
			c.Choices = []api.ChunkChoice{}
		}
		b, err := json.Marshal(c)
		if err != nil {
			panic(err) // our own types always marshal
		}
		if _, err := fmt.Fprintf(w, "data: %s\n\n", b); err != nil {
			return false
		}
		return rc.Flush() == nil
	}
	empty := ""
	if !send(api.ChatCompletionChunk{Choices: []api.ChunkChoice{{Delta: api.Delta{Role: "assistant", Content: &empty}}}}) {
		return
	}
	for i, pc := range p.pieces {
		if i == disconnectAt {
			panic(http.ErrAbortHandler)
		}
		if !s.pace(r, i) {
			return
		}
		d := api.Delta{}
		if pc.call != nil {
			d.ToolCalls = []api.ToolCall{*pc.call}
		} else {
			d.Content = &pc.text
		}
		if !send(api.ChatCompletionChunk{Choices: []api.ChunkChoice{{Delta: d}}}) {
			return
		}
	}
	if disconnectAt >= 0 {
		panic(http.ErrAbortHandler)
	}
	finish := p.finish
	if !send(api.ChatCompletionChunk{Choices: []api.ChunkChoice{{Delta: api.Delta{}, FinishReason: &finish}}}) {
		return
	}
	if includeUsage && !send(api.ChatCompletionChunk{Usage: p.usage()}) {
		return
	}
	if _, err := io.WriteString(w, "data: [DONE]\n\n"); err == nil {
		_ = rc.Flush()
	}
}

// message and completion are the non-streaming response shapes; content is a pointer
// because OpenAI sends null content alongside tool calls.
type message struct {
	Role      string         `json:"role"`
	Content   *string        `json:"content"`
	ToolCalls []api.ToolCall `json:"tool_calls,omitempty"`
}

type choice struct {
	Index        int     `json:"index"`
	Message      message `json:"message"`
	FinishReason string  `json:"finish_reason"`
}

type completion struct {
	ID      string     `json:"id"`
	Object  string     `json:"object"`
	Created int64      `json:"created"`
	Model   string     `json:"model"`
	Choices []choice   `json:"choices"`
	Usage   *api.Usage `json:"usage"`
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // our own types always marshal
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

func writeError(w http.ResponseWriter, status int, typ, code, msg string) {
	writeJSON(w, status, api.OpenAIError{
		Error:  api.OpenAIErrorDetail{Message: msg, Type: typ, Code: code},
		Detail: msg,
	})
}

func orDefault(s, def string) string {
	if s != "" {
		return s
	}
	return def
}
