package sim

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// maxBodyBytes caps a request body: far above any prompt that fits max_model_len, low
// enough that a runaway client cannot make the server buffer gigabytes.
const maxBodyBytes = 16 << 20

// Server speaks vLLM's HTTP API on top of a Live engine: /v1/chat/completions,
// /v1/completions, /v1/embeddings, /v1/models, /health and /metrics; and, beyond
// vLLM's, the session hints a kernel sends (/v1/kv/sessions/{session}/end and /swap).
type Server struct {
	live    *Live
	own     bool
	created int64
	mux     *http.ServeMux
}

// NewServer starts a Live engine for cfg and serves it; Close stops it.
func NewServer(cfg Config) (*Server, error) {
	l, err := NewLive(cfg)
	if err != nil {
		return nil, err
	}
	s := NewServerFor(l)
	s.own = true
	return s, nil
}

// NewServerFor serves an existing Live engine, so in-process callers and HTTP clients
// share one engine. Closing the server leaves l running.
func NewServerFor(l *Live) *Server {
	s := &Server{live: l, created: time.Now().Unix(), mux: http.NewServeMux()}
	s.mux.HandleFunc("POST /v1/chat/completions", s.chat)
	s.mux.HandleFunc("POST /v1/completions", s.complete)
	s.mux.HandleFunc("POST /v1/embeddings", s.embeddings)
	s.mux.HandleFunc("GET /v1/models", s.models)
	// Any method, so that a wrong one gets an error in the API's shape, not the mux's text.
	s.mux.HandleFunc("/v1/kv/sessions/{session}/{action}", s.sessionHint)
	s.mux.HandleFunc("GET /health", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) })
	s.mux.Handle("GET /metrics", promhttp.HandlerFor(l.Metrics(), promhttp.HandlerOpts{}))
	return s
}

// Handler is the HTTP API.
func (s *Server) Handler() http.Handler { return s.mux }

// Live is the engine behind the server.
func (s *Server) Live() *Live { return s.live }

// Close stops the engine if NewServer started it.
func (s *Server) Close() error {
	if s.own {
		return s.live.Close()
	}
	return nil
}

// apiError is a request the server refuses, in OpenAI's error shape.
type apiError struct {
	status int
	msg    string
}

func (e *apiError) Error() string { return e.msg }

func badRequest(format string, args ...any) *apiError {
	return &apiError{http.StatusBadRequest, fmt.Sprintf(format, args...)}
}

var errorTypes = map[int]string{
	http.StatusBadRequest:            "BadRequestError",
	http.StatusNotFound:              "NotFoundError",
	http.StatusMethodNotAllowed:      "MethodNotAllowedError",
	http.StatusConflict:              "ConflictError",
	http.StatusRequestEntityTooLarge: "BadRequestError",
	http.StatusServiceUnavailable:    "ServiceUnavailableError",
	http.StatusInternalServerError:   "InternalServerError",
}

func writeError(w http.ResponseWriter, err error) {
	var ae *apiError
	switch {
	case errors.As(err, &ae):
	case errors.Is(err, ErrInvalidRequest):
		ae = &apiError{http.StatusBadRequest, err.Error()}
	case errors.Is(err, ErrOutOfMemory), errors.Is(err, ErrClosed):
		ae = &apiError{http.StatusServiceUnavailable, err.Error()}
	default:
		ae = &apiError{http.StatusInternalServerError, err.Error()}
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(ae.status)
	json.NewEncoder(w).Encode(errorBody{errorDetail{Message: ae.msg, Type: errorTypes[ae.status], Code: ae.status}})
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(v)
}

// decodeBody reads one JSON value, refusing bodies over the cap and trailing data.
func decodeBody(body io.Reader, v any) error {
	data, err := readBody(body, maxBodyBytes)
	if err != nil {
		return err
	}
	return unmarshalBody(data, v, false)
}

// readBody reads a body of at most limit bytes.
func readBody(body io.Reader, limit int) ([]byte, error) {
	data, err := io.ReadAll(io.LimitReader(body, int64(limit)+1))
	if err != nil {
		return nil, badRequest("reading the request body: %v", err)
	}
	if len(data) > limit {
		return nil, &apiError{http.StatusRequestEntityTooLarge, fmt.Sprintf("request body exceeds %d bytes", limit)}
	}
	return data, nil
}

// unmarshalBody decodes one JSON value; strict refuses fields v does not have, for the
// server's own endpoints, where a misspelt field is a mistake rather than a vLLM
// parameter the simulation has no use for.
func unmarshalBody(data []byte, v any, strict bool) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	if strict {
		dec.DisallowUnknownFields()
	}
	if err := dec.Decode(v); err != nil {
		return badRequest("malformed JSON body: %v", err)
	}
	if dec.More() {
		return badRequest("malformed JSON body: unexpected data after the JSON value")
	}
	return nil
}

// sampling are the request fields both endpoints share.
type sampling struct {
	model     string
	maxTokens *int
	n         *int
	seed      *int64
	ignoreEOS bool
	priority  int
	kvTTLMs   *float64
	reuseMs   *float64
	kvSession string
}

func (s *Server) applySampling(g *GenRequest, p sampling) error {
	if p.model != "" && p.model != s.live.Model() {
		return &apiError{http.StatusNotFound, fmt.Sprintf("The model `%s` does not exist.", p.model)}
	}
	if p.n != nil && *p.n != 1 {
		return badRequest("n must be 1; the simulator generates one choice per request")
	}
	if p.maxTokens != nil {
		if *p.maxTokens < 1 {
			return badRequest("max_tokens must be at least 1, got %d", *p.maxTokens)
		}
		g.MaxTokens = *p.maxTokens
	}
	if p.priority != 0 && s.live.Policy() != PolicyPriority {
		return badRequest("priority is only supported with the priority scheduling policy")
	}
	if p.kvTTLMs != nil {
		if *p.kvTTLMs < 0 || *p.kvTTLMs > float64(24*time.Hour/time.Millisecond) {
			return badRequest("kv_ttl_ms must be between 0 and one day, got %v", *p.kvTTLMs)
		}
		g.KVTTL = time.Duration(*p.kvTTLMs * float64(time.Millisecond))
	}
	if p.reuseMs != nil {
		// The eviction hint (kvhint.go): when the session expects to be back.
		if *p.reuseMs <= 0 || *p.reuseMs > float64(24*time.Hour/time.Millisecond) {
			return badRequest("kv_reuse_after_ms must be above 0 and at most one day, got %v", *p.reuseMs)
		}
		g.ReuseAfter = time.Duration(*p.reuseMs * float64(time.Millisecond))
	}
	if p.kvSession != "" {
		if err := checkSessionName("kv_session", p.kvSession); err != nil {
			return err
		}
		g.KVSession = p.kvSession
	}
	if p.seed != nil {
		g.Seed = uint64(*p.seed)
	}
	g.Model = s.live.Model()
	g.IgnoreEOS = p.ignoreEOS
	g.Priority = p.priority
	return nil
}

// parseChat turns a chat-completions body into a generation.
func (s *Server) parseChat(body io.Reader) (GenRequest, *chatRequest, error) {
	var req chatRequest
	if err := decodeBody(body, &req); err != nil {
		return GenRequest{}, nil, err
	}
	var g GenRequest
	maxTok := req.MaxTokens
	if req.MaxCompletionTokens != nil {
		maxTok = req.MaxCompletionTokens
	}
	if err := s.applySampling(&g, sampling{req.Model, maxTok, req.N, req.Seed, req.IgnoreEOS, req.Priority, req.KVTTLMs, req.ReuseAfterMs, req.KVSession}); err != nil {
		return GenRequest{}, nil, err
	}
	if len(req.Messages) == 0 {
		return GenRequest{}, nil, badRequest("messages must not be empty")
	}
	g.Messages = make([]Message, len(req.Messages))
	for i, m := range req.Messages {
		switch m.Role {
		case "system", "developer", "user", "assistant", "tool":
		default:
			return GenRequest{}, nil, badRequest("messages[%d].role must be system, developer, user, assistant or tool, got %q", i, m.Role)
		}
		msg := Message{Role: m.Role, Content: string(m.Content)}
		for _, c := range m.ToolCalls {
			msg.ToolCalls = append(msg.ToolCalls, ToolCall{ID: c.ID, Name: c.Function.Name, Arguments: c.Function.Arguments})
		}
		g.Messages[i] = msg
	}
	if req.ContinueFinalMessage {
		if req.AddGenerationPrompt == nil || *req.AddGenerationPrompt {
			return GenRequest{}, nil, badRequest("continue_final_message needs add_generation_prompt set to false")
		}
		last := g.Messages[len(g.Messages)-1]
		if last.Role != "assistant" {
			return GenRequest{}, nil, badRequest("continue_final_message needs the last message to be the assistant's")
		}
		g.Messages = g.Messages[:len(g.Messages)-1]
		g.ContinueFinal = last.Content
	} else if req.AddGenerationPrompt != nil && !*req.AddGenerationPrompt {
		g.NoGenerationPrompt = true
	}
	for i, t := range req.Tools {
		if t.Type != "function" || t.Function.Name == "" {
			return GenRequest{}, nil, badRequest("tools[%d] must be a function with a name", i)
		}
		g.Tools = append(g.Tools, Tool{Name: t.Function.Name, Description: t.Function.Description, Parameters: t.Function.Parameters})
	}
	if len(req.ToolChoice) > 0 && !bytes.Equal(req.ToolChoice, []byte("null")) {
		var mode string
		var named struct {
			Type     string `json:"type"`
			Function struct {
				Name string `json:"name"`
			} `json:"function"`
		}
		switch {
		case json.Unmarshal(req.ToolChoice, &mode) == nil:
			g.ToolChoice = mode
		case json.Unmarshal(req.ToolChoice, &named) == nil && named.Type == "function" && named.Function.Name != "":
			g.ForceTool = named.Function.Name
		default:
			return GenRequest{}, nil, badRequest(`tool_choice must be "none", "auto", "required" or {"type": "function", "function": {"name": ...}}`)
		}
	}
	if _, err := chooseTool(&g, 0); err != nil {
		return GenRequest{}, nil, err
	}
	if rf := req.ResponseFormat; rf != nil {
		f, err := parseResponseFormat(rf)
		if err != nil {
			return GenRequest{}, nil, err
		}
		if f != nil && g.ContinueFinal != "" {
			return GenRequest{}, nil, badRequest("continue_final_message cannot be combined with a JSON response_format: the simulator generates the document whole")
		}
		g.ResponseFormat = f
	}
	return g, &req, nil
}

// parseResponseFormat checks response_format as OpenAI does, leniently: json_schema
// needs its json_schema object, whose schema (when given) is an object or a boolean.
// The schema itself is not checked: one the simulator cannot follow still gets valid
// JSON, as close to it as the generator gets.
func parseResponseFormat(rf *responseFormat) (*ResponseFormat, error) {
	switch rf.Type {
	case "text":
		return nil, nil
	case "json_object":
		return &ResponseFormat{Type: rf.Type}, nil
	case "json_schema":
		var js struct {
			Schema json.RawMessage `json:"schema"`
		}
		if len(rf.JSONSchema) == 0 || json.Unmarshal(rf.JSONSchema, &js) != nil {
			return nil, badRequest(`response_format of type "json_schema" needs a json_schema object: {"name": ..., "schema": {...}, "strict": ...}`)
		}
		if s := bytes.TrimSpace(js.Schema); len(s) > 0 && s[0] != '{' && !bytes.Equal(s, []byte("true")) && !bytes.Equal(s, []byte("false")) && !bytes.Equal(s, []byte("null")) {
			return nil, badRequest("response_format.json_schema.schema must be a JSON Schema object")
		}
		return &ResponseFormat{Type: rf.Type, JSONSchema: rf.JSONSchema}, nil
	}
	return nil, badRequest("response_format.type must be text, json_object or json_schema, got %q", rf.Type)
}

// parseCompletion turns a completions body into a generation. A prompt is one string
// (or a list holding one); token-id prompts and batches are not simulated.
func (s *Server) parseCompletion(body io.Reader) (GenRequest, *completionRequest, error) {
	var req completionRequest
	if err := decodeBody(body, &req); err != nil {
		return GenRequest{}, nil, err
	}
	var g GenRequest
	if req.MaxTokens == nil {
		sixteen := 16 // OpenAI's and vLLM's default for completions
		req.MaxTokens = &sixteen
	}
	if err := s.applySampling(&g, sampling{req.Model, req.MaxTokens, req.N, req.Seed, req.IgnoreEOS, req.Priority, req.KVTTLMs, req.ReuseAfterMs, req.KVSession}); err != nil {
		return GenRequest{}, nil, err
	}
	var one string
	var list []string
	switch {
	case json.Unmarshal(req.Prompt, &one) == nil:
	case json.Unmarshal(req.Prompt, &list) == nil && len(list) == 1:
		one = list[0]
	default:
		return GenRequest{}, nil, badRequest("prompt must be a string or a list of one string")
	}
	g.Prompt = one
	return g, &req, nil
}

func newID(prefix string) string {
	return fmt.Sprintf("%s%016x%016x", prefix, rand.Uint64(), rand.Uint64())
}

func (s *Server) chat(w http.ResponseWriter, r *http.Request) {
	g, req, err := s.parseChat(r.Body)
	if err != nil {
		writeError(w, err)
		return
	}
	id, created := newID("chatcmpl-"), time.Now().Unix()
	if req.Stream {
		s.streamChat(r.Context(), w, g, id, created, req.StreamOptions != nil && req.StreamOptions.IncludeUsage)
		return
	}
	res, err := s.live.Generate(r.Context(), g, nil)
	if err != nil {
		if r.Context().Err() == nil {
			writeError(w, err)
		}
		return
	}
	msg := responseMessage{Role: "assistant", ToolCalls: []wireToolCall{}}
	if res.ToolCall != nil {
		msg.ToolCalls = append(msg.ToolCalls, wireToolCall{ID: res.ToolCall.ID, Type: "function",
			Function: wireFunction{Name: res.ToolCall.Name, Arguments: res.ToolCall.Arguments}})
	} else {
		msg.Content = &res.Text
	}
	writeJSON(w, chatCompletion{
		ID: id, Object: "chat.completion", Created: created, Model: s.live.Model(),
		Choices: []chatChoice{{Message: msg, FinishReason: res.FinishReason}},
		Usage:   usageOf(res),
	})
}

// sse writes server-sent events. Headers go out with the first event, so a request
// refused before generating anything still gets a plain HTTP error.
type sse struct {
	w       http.ResponseWriter
	started bool
}

func (e *sse) send(v any) {
	if !e.started {
		h := e.w.Header()
		h.Set("Content-Type", "text/event-stream")
		h.Set("Cache-Control", "no-cache")
		h.Set("Connection", "keep-alive")
		e.w.WriteHeader(http.StatusOK)
		e.started = true
	}
	data, _ := json.Marshal(v)
	e.w.Write([]byte("data: "))
	e.w.Write(data)
	e.w.Write([]byte("\n\n"))
	if f, ok := e.w.(http.Flusher); ok {
		f.Flush()
	}
}

func (e *sse) done() {
	e.w.Write([]byte("data: [DONE]\n\n"))
	if f, ok := e.w.(http.Flusher); ok {
		f.Flush()
	}
}

// fail ends a stream with an error event, or answers with an HTTP error if nothing has
// been streamed yet; a client that went away gets nothing.
func (e *sse) fail(ctx context.Context, err error) {
	if ctx.Err() != nil {
		return
	}
	if !e.started {
		writeError(e.w, err)
		return
	}
	e.send(errorBody{errorDetail{Message: err.Error(), Type: errorTypes[http.StatusServiceUnavailable], Code: http.StatusServiceUnavailable}})
	e.done()
}

func (s *Server) streamChat(ctx context.Context, w http.ResponseWriter, g GenRequest, id string, created int64, includeUsage bool) {
	out := &sse{w: w}
	chunk := func(d delta, finish *string) chatChunk {
		return chatChunk{ID: id, Object: "chat.completion.chunk", Created: created, Model: s.live.Model(),
			Choices: []chunkChoice{{Delta: d, FinishReason: finish}}}
	}
	empty := ""
	opening := func() {
		if !out.started {
			out.send(chunk(delta{Role: "assistant", Content: &empty}, nil))
		}
	}
	res, err := s.live.Generate(ctx, g, func(text string) {
		opening()
		EachToken(text, func(tok string) { out.send(chunk(delta{Content: &tok}, nil)) })
	})
	if err != nil {
		out.fail(ctx, err)
		return
	}
	opening()
	if tc := res.ToolCall; tc != nil {
		zero := 0
		out.send(chunk(delta{ToolCalls: []wireToolCall{{Index: &zero, ID: tc.ID, Type: "function",
			Function: wireFunction{Name: tc.Name}}}}, nil))
		out.send(chunk(delta{ToolCalls: []wireToolCall{{Index: &zero, Function: wireFunction{Arguments: tc.Arguments}}}}, nil))
	}
	reason := res.FinishReason
	out.send(chunk(delta{}, &reason))
	if includeUsage {
		out.send(chatChunk{ID: id, Object: "chat.completion.chunk", Created: created, Model: s.live.Model(),
			Choices: []chunkChoice{}, Usage: usageOf(res)})
	}
	out.done()
}

func (s *Server) complete(w http.ResponseWriter, r *http.Request) {
	g, req, err := s.parseCompletion(r.Body)
	if err != nil {
		writeError(w, err)
		return
	}
	id, created := newID("cmpl-"), time.Now().Unix()
	ctx := r.Context()
	if !req.Stream {
		res, err := s.live.Generate(ctx, g, nil)
		if err != nil {
			if ctx.Err() == nil {
				writeError(w, err)
			}
			return
		}
		writeJSON(w, completion{
			ID: id, Object: "text_completion", Created: created, Model: s.live.Model(),
			Choices: []completionChoice{{Text: res.Text, FinishReason: &res.FinishReason}},
			Usage:   usageOf(res),
		})
		return
	}
	out := &sse{w: w}
	chunk := func(text string, finish *string) completion {
		return completion{ID: id, Object: "text_completion", Created: created, Model: s.live.Model(),
			Choices: []completionChoice{{Text: text, FinishReason: finish}}}
	}
	res, err := s.live.Generate(ctx, g, func(text string) {
		EachToken(text, func(tok string) { out.send(chunk(tok, nil)) })
	})
	if err != nil {
		out.fail(ctx, err)
		return
	}
	out.send(chunk("", &res.FinishReason))
	if req.StreamOptions != nil && req.StreamOptions.IncludeUsage {
		out.send(completion{ID: id, Object: "text_completion", Created: created, Model: s.live.Model(),
			Choices: []completionChoice{}, Usage: usageOf(res)})
	}
	out.done()
}

func (s *Server) models(w http.ResponseWriter, _ *http.Request) {
	m := s.live.Model()
	writeJSON(w, modelList{Object: "list", Data: []modelCard{{
		ID: m, Object: "model", Created: s.created, OwnedBy: "vllm", Root: m,
		MaxModelLen: s.live.Profile().MaxModelLen, Permission: []struct{}{},
	}}})
}
