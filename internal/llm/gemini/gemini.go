// Package gemini is the backend for Google's Gemini API. It translates the kernel's
// llm.Request (OpenAI-shaped messages and tools) into a streamed generateContent call
// through the official google.golang.org/genai SDK, turns the candidate's parts back
// into text and tool call deltas, and classifies every failure into the kernel's error
// taxonomy. The SDK's retries and its automatic stream continuation are off: the kernel
// retries, backs off and fails over.
//
// Gemini 3 models sign their function calls and refuse a conversation that sends a call
// back without its signature. OpenAI's message shape has no place for one, so the core
// remembers the signature of every call it hands out, by call id, and attaches it when
// the call comes back; a call it never saw (history from another kernel, or evicted)
// gets the placeholder Google documents for that case.
package gemini

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aios-go/aios/api"
	"github.com/aios-go/aios/internal/llm"
	"github.com/aios-go/aios/internal/llm/upstream"
	"google.golang.org/genai"
)

// Config describes one Gemini upstream.
type Config struct {
	// Name is the model sent upstream (e.g. gemini-2.5-flash). When empty, Request.Model
	// is sent.
	Name string
	// BaseURL is the API root. Default DefaultBaseURL.
	BaseURL string
	// APIVersion is the path segment after the root. Default "v1beta".
	APIVersion string
	// APIKey is sent as x-goog-api-key.
	APIKey string

	// MaxInflight and MaxTokens are the capacity the scheduler keeps this core within.
	MaxInflight int
	MaxTokens   int

	// HTTPClient replaces the default client. Leave its Timeout zero; IdleTimeout bounds
	// silence instead.
	HTTPClient *http.Client
	// IdleTimeout is the longest the upstream may stay silent before the call fails with
	// backend_timeout.
	IdleTimeout time.Duration
	// HealthTimeout bounds Health and ListModels when ctx has no earlier deadline.
	HealthTimeout time.Duration
}

const (
	DefaultBaseURL       = "https://generativelanguage.googleapis.com/"
	DefaultAPIVersion    = "v1beta"
	DefaultMaxInflight   = 64
	DefaultIdleTimeout   = 2 * time.Minute
	DefaultHealthTimeout = 5 * time.Second
	placeholderAPIKey    = "EMPTY"
	// skipSignature is what Google's thought-signature guide says to send for a function
	// call whose signature is unknown.
	skipSignature = "skip_thought_signature_validator"
	// mintPrefix starts the ids the core makes up for calls Gemini sent without one;
	// those are the agent's handles only and are not sent back upstream.
	mintPrefix = "call_gemini_"
)

// Core is one Gemini backend instance. It is safe for concurrent use.
type Core struct {
	cfg     Config
	base    string
	client  *genai.Client
	ownHTTP *http.Client

	closing context.Context
	close   context.CancelFunc
	once    sync.Once
}

var _ llm.Core = (*Core)(nil)

// New builds a core. It does not contact the upstream; use Health for that.
func New(cfg Config) (*Core, error) {
	base := strings.TrimSpace(cfg.BaseURL)
	if base == "" {
		base = DefaultBaseURL
	}
	if !strings.Contains(base, "://") {
		base = "https://" + base
	}
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, api.Errorf(api.CallerBadRequest, "gemini backend: base URL %q is not an http(s) URL with a host", cfg.BaseURL)
	}
	// Users paste the address with the version in it; the SDK adds the version itself.
	p := strings.TrimRight(u.Path, "/")
	if i := strings.LastIndex(p, "/"); i >= 0 && strings.HasPrefix(p[i+1:], "v1") {
		if cfg.APIVersion == "" {
			cfg.APIVersion = p[i+1:]
		}
		p = p[:i]
	}
	u.Path, u.RawPath = p+"/", ""
	base = u.String()
	if cfg.APIVersion == "" {
		cfg.APIVersion = DefaultAPIVersion
	}
	if cfg.MaxInflight <= 0 {
		cfg.MaxInflight = DefaultMaxInflight
	}
	if cfg.MaxTokens < 0 {
		return nil, api.Errorf(api.CallerBadRequest, "gemini backend %q: max_tokens must not be negative", cfg.Name)
	}
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = DefaultIdleTimeout
	}
	if cfg.HealthTimeout <= 0 {
		cfg.HealthTimeout = DefaultHealthTimeout
	}
	c := &Core{cfg: cfg, base: base}
	hc := cfg.HTTPClient
	if hc == nil {
		hc = upstream.HTTPClient(cfg.MaxInflight)
		c.ownHTTP = hc
	}
	// Error statuses are recorded on the way in: the SDK turns an error response into
	// an APIError without its headers, and Retry-After lives there.
	inner := hc.Transport
	if inner == nil {
		inner = http.DefaultTransport
	}
	wrapped := *hc
	wrapped.Transport = upstream.Transport(inner)
	key := cfg.APIKey
	if key == "" {
		// Any key keeps the SDK from reading GEMINI_API_KEY or GOOGLE_API_KEY from the
		// kernel's environment: a core's config alone says as whom it calls.
		key = placeholderAPIKey
	}
	client, err := genai.NewClient(context.Background(), &genai.ClientConfig{
		APIKey:     key,
		Backend:    genai.BackendGeminiAPI,
		HTTPClient: &wrapped,
		HTTPOptions: genai.HTTPOptions{
			BaseURL:    base,
			APIVersion: cfg.APIVersion,
		},
	})
	if err != nil {
		return nil, api.Wrap(api.CallerBadRequest, err, "gemini backend %q", cfg.Name)
	}
	c.client = client
	c.closing, c.close = context.WithCancel(context.Background())
	return c, nil
}

// BaseURL is the API root this core calls.
func (c *Core) BaseURL() string { return c.base }

// Capabilities: Gemini has no documented way to continue a partial model turn, so a
// call is never preempted on this core, and a dropped stream restarts or fails.
func (c *Core) Capabilities() llm.Capabilities { return llm.Capabilities{} }

func (c *Core) Capacity() llm.Capacity {
	return llm.Capacity{MaxInflight: c.cfg.MaxInflight, MaxTokens: c.cfg.MaxTokens}
}

// Close ends in-flight calls (they fail with kernel_shutting_down) and releases idle
// connections.
func (c *Core) Close() error {
	c.once.Do(func() {
		c.close()
		if c.ownHTTP != nil {
			c.ownHTTP.CloseIdleConnections()
		}
	})
	return nil
}

func (c *Core) withCore(ctx context.Context) (context.Context, context.CancelCauseFunc, func() bool, *upstream.Failure) {
	f := &upstream.Failure{}
	rctx, cancel, stop := upstream.WithClose(upstream.WithFailure(ctx, f), c.closing)
	return rctx, cancel, stop, f
}

func (c *Core) model(req *llm.Request) string {
	if c.cfg.Name != "" {
		return c.cfg.Name
	}
	return req.Model
}

// Generate streams req from Gemini, emitting each delta as it arrives.
func (c *Core) Generate(ctx context.Context, req *llm.Request, emit func(llm.Delta)) (*llm.Result, error) {
	if c.closing.Err() != nil {
		return nil, api.Errorf(api.KernelShuttingDown, "gemini backend %q is closed", c.cfg.Name)
	}
	model := c.model(req)
	if model == "" {
		return nil, api.Errorf(api.CallerBadRequest, "no model name: set the backend's name or the request's model")
	}
	if req.Resume != "" {
		return nil, api.Errorf(api.KernelInternal, "gemini backend %q cannot resume a call: Gemini cannot continue a partial answer", c.cfg.Name)
	}
	contents, gcfg, err := translate(req, model)
	if err != nil {
		return nil, err
	}
	if emit == nil {
		emit = func(llm.Delta) {}
	}
	rctx, cancel, stopClose, failure := c.withCore(ctx)
	defer stopClose()
	defer cancel(nil)
	idle := c.cfg.IdleTimeout
	watchdog := time.AfterFunc(idle, func() { cancel(upstream.ErrIdle) })
	defer watchdog.Stop()

	var (
		text   strings.Builder
		calls  []api.ToolCall
		usage  *genai.GenerateContentResponseUsageMetadata
		finish genai.FinishReason
		deltas int
	)
	for chunk, err := range c.client.Models.GenerateContentStream(rctx, model, contents, gcfg) {
		if err != nil {
			return nil, c.classify(ctx, rctx, failure, err)
		}
		if rctx.Err() != nil {
			return nil, c.classify(ctx, rctx, nil, context.Cause(rctx))
		}
		watchdog.Reset(idle)
		if pf := chunk.PromptFeedback; pf != nil && pf.BlockReason != "" {
			return nil, api.Errorf(api.BackendRejected, "upstream %s refused the prompt: %s %s", c.base, pf.BlockReason, pf.BlockReasonMessage)
		}
		if chunk.UsageMetadata != nil {
			usage = chunk.UsageMetadata // running totals; the last is the whole call's
		}
		if len(chunk.Candidates) == 0 {
			continue
		}
		cand := chunk.Candidates[0]
		if cand.Content != nil {
			for _, p := range cand.Content.Parts {
				switch {
				case p.Thought:
					// Thought summaries are the model's notes, not its answer.
				case p.FunctionCall != nil:
					tc, err := toolCall(p)
					if err != nil {
						return nil, api.Wrap(api.BackendBadResponse, err, "upstream %s sent a function call that cannot be passed on", c.base)
					}
					i := len(calls)
					calls = append(calls, tc)
					d := tc
					d.Index = &i
					deltas++
					emit(llm.Delta{ToolCalls: []api.ToolCall{d}})
				case p.Text != "":
					text.WriteString(p.Text)
					deltas++
					emit(llm.Delta{Text: p.Text})
				}
			}
		}
		if cand.FinishReason != "" && cand.FinishReason != genai.FinishReasonUnspecified {
			finish = cand.FinishReason
		}
	}
	if finish == "" {
		if rctx.Err() != nil {
			return nil, c.classify(ctx, rctx, nil, context.Cause(rctx))
		}
		return nil, api.Errorf(api.BackendUnavailable,
			"upstream %s: stream ended before the response was complete (no finishReason after %d deltas)", c.base, deltas)
	}
	if finish == genai.FinishReasonMalformedFunctionCall || finish == genai.FinishReasonUnexpectedToolCall {
		// The model's own slip; a fresh attempt usually calls correctly.
		return nil, api.Errorf(api.BackendBadResponse, "upstream %s: the model produced an invalid function call (%s)", c.base, finish)
	}
	res := &llm.Result{Text: text.String(), ToolCalls: calls, FinishReason: finishReason(finish, len(calls) > 0)}
	if usage != nil {
		prompt := int(usage.PromptTokenCount + usage.ToolUsePromptTokenCount)
		out := int(usage.CandidatesTokenCount + usage.ThoughtsTokenCount)
		res.Usage = api.Usage{
			PromptTokens: prompt, CompletionTokens: out, TotalTokens: prompt + out,
			PromptTokensDetails: &api.PromptTokensDetails{CachedTokens: int(usage.CachedContentTokenCount)},
		}
	}
	return res, nil
}

// finishReason maps Gemini's finish reasons to OpenAI's. Gemini says STOP after a
// function call too; OpenAI clients look for tool_calls.
func finishReason(f genai.FinishReason, calls bool) string {
	switch f {
	case genai.FinishReasonStop:
		if calls {
			return "tool_calls"
		}
		return "stop"
	case genai.FinishReasonMaxTokens:
		return "length"
	case genai.FinishReasonSafety, genai.FinishReasonRecitation, genai.FinishReasonBlocklist,
		genai.FinishReasonProhibitedContent, genai.FinishReasonSPII, genai.FinishReasonImageSafety:
		return "content_filter"
	}
	return strings.ToLower(string(f))
}

// toolCall turns a function call part into an OpenAI tool call, minting an id when
// Gemini sent none and keeping the call's thought signature for its return.
func toolCall(p *genai.Part) (api.ToolCall, error) {
	fc := p.FunctionCall
	args := "{}"
	if len(fc.Args) > 0 {
		b, err := json.Marshal(fc.Args)
		if err != nil {
			return api.ToolCall{}, err
		}
		args = string(b)
	}
	id := fc.ID
	if id == "" {
		var b [12]byte
		_, _ = rand.Read(b[:])
		id = mintPrefix + hex.EncodeToString(b[:])
	}
	if len(p.ThoughtSignature) > 0 {
		signatures.put(id, p.ThoughtSignature)
	}
	return api.ToolCall{ID: id, Type: "function", Function: api.FunctionCall{Name: fc.Name, Arguments: args}}, nil
}

// translate builds Gemini's contents and config from the kernel's request.
func translate(req *llm.Request, model string) ([]*genai.Content, *genai.GenerateContentConfig, error) {
	no := false
	gcfg := &genai.GenerateContentConfig{
		// A dropped stream is the kernel's to retry: it knows the other cores and what
		// the agent has already been sent.
		AutomaticContinuation: &no,
	}
	if req.Temperature != nil {
		t := float32(*req.Temperature)
		gcfg.Temperature = &t
	}
	if req.MaxTokens > 0 {
		gcfg.MaxOutputTokens = int32(req.MaxTokens)
	}
	sign := needsSignatures(model)
	names := map[string]string{} // tool call id -> function name, for the responses
	var system []*genai.Part
	var contents []*genai.Content
	for i, m := range req.Messages {
		text := string(m.Content)
		switch m.Role {
		case "system", "developer":
			if text != "" {
				system = append(system, &genai.Part{Text: text})
			}
		case "user":
			if text != "" {
				contents = append(contents, &genai.Content{Role: genai.RoleUser, Parts: []*genai.Part{{Text: text}}})
			}
		case "assistant":
			var parts []*genai.Part
			if text != "" {
				parts = append(parts, &genai.Part{Text: text})
			}
			for _, tc := range m.ToolCalls {
				if tc.ID == "" || tc.Function.Name == "" {
					return nil, nil, api.Errorf(api.CallerBadRequest, "message %d: assistant tool call needs an id and a function name", i)
				}
				var args map[string]any
				if a := strings.TrimSpace(tc.Function.Arguments); a != "" {
					if err := json.Unmarshal([]byte(a), &args); err != nil {
						return nil, nil, api.Errorf(api.CallerBadRequest, "message %d: arguments of tool call %q are not a JSON object", i, tc.ID)
					}
				}
				names[tc.ID] = tc.Function.Name
				part := &genai.Part{FunctionCall: &genai.FunctionCall{ID: upstreamID(tc.ID), Name: tc.Function.Name, Args: args}}
				if sig, ok := signatures.get(tc.ID); ok {
					part.ThoughtSignature = sig
				} else if sign {
					part.ThoughtSignature = []byte(skipSignature)
				}
				parts = append(parts, part)
			}
			if len(parts) > 0 {
				contents = append(contents, &genai.Content{Role: genai.RoleModel, Parts: parts})
			}
		case "tool":
			name, ok := names[m.ToolCallID]
			if !ok {
				return nil, nil, api.Errorf(api.CallerBadRequest, "message %d: tool result for %q answers no earlier assistant tool call", i, m.ToolCallID)
			}
			part := &genai.Part{FunctionResponse: &genai.FunctionResponse{ID: upstreamID(m.ToolCallID), Name: name, Response: responseObject(text)}}
			// Every response of a turn's calls goes in one content, as Gemini requires.
			if n := len(contents); n > 0 && contents[n-1].Role == genai.RoleUser && contents[n-1].Parts[0].FunctionResponse != nil {
				contents[n-1].Parts = append(contents[n-1].Parts, part)
			} else {
				contents = append(contents, &genai.Content{Role: genai.RoleUser, Parts: []*genai.Part{part}})
			}
		default:
			return nil, nil, api.Errorf(api.CallerBadRequest, "message %d: role %q is not one of system, developer, user, assistant, tool", i, m.Role)
		}
	}
	if len(contents) == 0 {
		return nil, nil, api.Errorf(api.CallerBadRequest, "the conversation has no user or assistant message with content")
	}
	if len(system) > 0 {
		gcfg.SystemInstruction = &genai.Content{Parts: system}
	}

	var decls []*genai.FunctionDeclaration
	for i, t := range req.Tools {
		if t.Function.Name == "" {
			return nil, nil, api.Errorf(api.CallerBadRequest, "tool %d has no function name", i)
		}
		d := &genai.FunctionDeclaration{Name: t.Function.Name, Description: t.Function.Description}
		if ps := t.Function.Parameters; len(ps) > 0 && string(ps) != "null" {
			if !json.Valid(ps) {
				return nil, nil, api.Errorf(api.CallerBadRequest, "tool %q: parameters are not valid JSON", t.Function.Name)
			}
			// parametersJsonSchema takes JSON Schema as agents write it; the older
			// parameters field wants Google's own schema dialect.
			d.ParametersJsonSchema = json.RawMessage(ps)
		}
		decls = append(decls, d)
	}
	if len(decls) > 0 {
		gcfg.Tools = []*genai.Tool{{FunctionDeclarations: decls}}
	}
	if tc := req.ToolChoice; len(tc) > 0 && string(tc) != "null" {
		fc, err := functionCalling(tc)
		if err != nil {
			return nil, nil, err
		}
		if len(decls) > 0 {
			gcfg.ToolConfig = &genai.ToolConfig{FunctionCallingConfig: fc}
		}
	}
	if rf := req.ResponseFormat; rf != nil {
		switch rf.Type {
		case "", "text":
		case "json_object":
			gcfg.ResponseMIMEType = "application/json"
		case "json_schema":
			var js struct {
				Schema json.RawMessage `json:"schema"`
			}
			if len(rf.JSONSchema) == 0 || json.Unmarshal(rf.JSONSchema, &js) != nil || len(js.Schema) == 0 || js.Schema[0] != '{' {
				return nil, nil, api.Errorf(api.CallerBadRequest, `response_format json_schema needs a "json_schema" object with a "schema"`)
			}
			gcfg.ResponseMIMEType = "application/json"
			gcfg.ResponseJsonSchema = js.Schema
		default:
			return nil, nil, api.Errorf(api.CallerBadRequest, "response_format type %q is not one of text, json_object, json_schema", rf.Type)
		}
	}
	return contents, gcfg, nil
}

// upstreamID is the id Gemini knows a call by: its own, or none for one the core minted.
func upstreamID(id string) string {
	if strings.HasPrefix(id, mintPrefix) {
		return ""
	}
	return id
}

// responseObject is a tool's output as Gemini wants it: an object. JSON objects pass
// through; anything else is wrapped under "output", the key Google's examples use.
func responseObject(text string) map[string]any {
	var obj map[string]any
	if json.Unmarshal([]byte(text), &obj) == nil && obj != nil {
		return obj
	}
	return map[string]any{"output": text}
}

// functionCalling maps OpenAI's tool_choice onto Gemini's function-calling modes.
func functionCalling(raw json.RawMessage) (*genai.FunctionCallingConfig, error) {
	var mode string
	if json.Unmarshal(raw, &mode) == nil {
		switch mode {
		case "auto":
			return &genai.FunctionCallingConfig{Mode: genai.FunctionCallingConfigModeAuto}, nil
		case "required":
			return &genai.FunctionCallingConfig{Mode: genai.FunctionCallingConfigModeAny}, nil
		case "none":
			return &genai.FunctionCallingConfig{Mode: genai.FunctionCallingConfigModeNone}, nil
		}
		return nil, api.Errorf(api.CallerBadRequest, "tool_choice %q is not one of auto, required, none", mode)
	}
	var named struct {
		Function struct {
			Name string `json:"name"`
		} `json:"function"`
	}
	if json.Unmarshal(raw, &named) != nil || named.Function.Name == "" {
		return nil, api.Errorf(api.CallerBadRequest, "tool_choice is neither a mode nor {\"type\":\"function\",\"function\":{\"name\":...}}: %.60s", raw)
	}
	return &genai.FunctionCallingConfig{Mode: genai.FunctionCallingConfigModeAny, AllowedFunctionNames: []string{named.Function.Name}}, nil
}

// needsSignatures reports whether model is Gemini 3 or later, which refuse function
// calls sent back without a thought signature. Older models are sent none they did not
// give, since they never asked for one.
func needsSignatures(model string) bool {
	rest, ok := strings.CutPrefix(strings.TrimPrefix(model, "models/"), "gemini-")
	if !ok {
		return false
	}
	end := strings.IndexFunc(rest, func(r rune) bool { return r < '0' || r > '9' })
	if end < 0 {
		end = len(rest)
	}
	v, err := strconv.Atoi(rest[:end])
	return err == nil && v >= 3
}

// signatureStore keeps the thought signatures of recent function calls, bounded; it is
// shared by every Gemini core so a conversation that fails over keeps its signatures.
type signatureStore struct {
	mu    sync.Mutex
	m     map[string][]byte
	order []string
}

const maxSignatures = 1 << 14

var signatures = &signatureStore{m: map[string][]byte{}}

func (s *signatureStore) put(id string, sig []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.m[id]; !ok {
		s.order = append(s.order, id)
	}
	s.m[id] = sig
	for len(s.order) > maxSignatures {
		delete(s.m, s.order[0])
		s.order = s.order[1:]
	}
}

func (s *signatureStore) get(id string) ([]byte, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sig, ok := s.m[id]
	return sig, ok
}

func (c *Core) healthCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, c.cfg.HealthTimeout)
}

// Health lists the models: cheap, and it checks the address and the key.
func (c *Core) Health(ctx context.Context) error {
	_, err := c.ListModels(ctx)
	return err
}

// ListModels returns the models the key may use (GET /v1beta/models), first page.
func (c *Core) ListModels(ctx context.Context) ([]api.Model, error) {
	if c.closing.Err() != nil {
		return nil, api.Errorf(api.KernelShuttingDown, "gemini backend %q is closed", c.cfg.Name)
	}
	hctx, hcancel := c.healthCtx(ctx)
	defer hcancel()
	rctx, cancel, stopClose, failure := c.withCore(hctx)
	defer stopClose()
	defer cancel(nil)
	page, err := c.client.Models.List(rctx, &genai.ListModelsConfig{})
	if err != nil {
		if ctx.Err() == nil && hctx.Err() != nil {
			return nil, api.Wrap(api.BackendTimeout, err, "upstream %s did not list its models within %v", c.base, c.cfg.HealthTimeout)
		}
		return nil, c.classify(ctx, rctx, failure, err)
	}
	out := make([]api.Model, 0, len(page.Items))
	for _, m := range page.Items {
		out = append(out, api.Model{ID: strings.TrimPrefix(m.Name, "models/"), Object: "model", OwnedBy: "google"})
	}
	return out, nil
}

func (c *Core) String() string { return fmt.Sprintf("gemini(%s @ %s)", c.cfg.Name, c.base) }
