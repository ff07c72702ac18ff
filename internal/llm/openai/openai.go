// Package openai is the backend for every OpenAI-compatible server: vLLM, SGLang, Ollama,
// llama.cpp, LM Studio and OpenAI itself. It translates the kernel's llm.Request into a
// streamed chat completion through the official openai-go SDK and classifies every
// failure into the kernel's error taxonomy. The SDK's own retries are off: the kernel
// retries, backs off and fails over with knowledge the SDK lacks (other cores, quotas).
package openai

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"regexp"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aios-go/aios/api"
	"github.com/aios-go/aios/internal/llm"
	"github.com/aios-go/aios/internal/llm/upstream"
	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"github.com/openai/openai-go/v3/packages/param"
)

// Config describes one OpenAI-compatible upstream.
type Config struct {
	// Name is the model name sent upstream. When empty, Request.Model is sent.
	Name string
	// BaseURL is the server's address, with or without the /v1 suffix; see NormalizeBaseURL.
	BaseURL string
	// APIKey is sent as a bearer token. Self-hosted servers usually need none; a
	// placeholder is sent then, as vLLM's own examples do, because some servers and
	// proxies reject a missing Authorization header even when they ignore its value.
	APIKey string

	// MaxInflight and MaxTokens are the capacity the scheduler keeps this core within.
	// MaxInflight defaults to DefaultMaxInflight; MaxTokens 0 means unlimited.
	MaxInflight int
	MaxTokens   int

	// Resume: the upstream supports vLLM's continue_final_message (vLLM, SGLang), so a
	// preempted call can be continued exactly where it stopped.
	Resume bool
	// Retention: the server takes the kernel's KV hints (aios sim serve): kv_ttl_ms,
	// kv_reuse_after_ms and kv_session on each call, and the end of a session (see
	// WithHints). vLLM takes none of them.
	Retention bool
	// Offload: the server also has a CPU KV tier and takes swap hints (aios sim serve
	// --kv-offload-gib). Needs Retention.
	Offload bool
	// Priority: pass Request.Priority down as vLLM's "priority" field. Only for vLLM
	// started with --scheduling-policy priority; other servers reject the field.
	Priority bool
	// MaxCompletionTokensField sends the output limit as max_completion_tokens instead of
	// max_tokens. OpenAI's newer models reject max_tokens, while many self-hosted servers
	// only know max_tokens; it defaults to true only for api.openai.com.
	MaxCompletionTokensField *bool

	// HTTPClient replaces the default client (for proxies, TLS, tracing). Leave its
	// Timeout zero: a streamed answer legitimately lasts minutes; IdleTimeout bounds
	// silence instead.
	HTTPClient *http.Client
	// IdleTimeout is the longest the upstream may stay silent (connecting, before the
	// response headers, or between two stream events) before the call fails with
	// backend_timeout. Default DefaultIdleTimeout.
	IdleTimeout time.Duration
	// HealthTimeout bounds Health and ListModels when ctx has no earlier deadline, and
	// each session hint. Default DefaultHealthTimeout.
	HealthTimeout time.Duration
	// Logger hears of session hints that failed; default slog.Default().
	Logger *slog.Logger
}

const (
	DefaultMaxInflight   = 64
	DefaultIdleTimeout   = 2 * time.Minute
	DefaultHealthTimeout = 5 * time.Second
	placeholderAPIKey    = "EMPTY"
)

// Core is one OpenAI-compatible backend instance. It is safe for concurrent use.
type Core struct {
	cfg     Config
	base    string
	client  openai.Client
	ownHTTP *http.Client // closed by Close; nil when the caller supplied the client
	http    *http.Client
	key     string
	log     *slog.Logger

	// hints queue session hints to their workers (hints.go); nil without Retention.
	hints        []chan hint
	hintsDone    sync.WaitGroup
	hintsDropped atomic.Int64

	// closing ends in-flight calls when the core closes.
	closing context.Context
	close   context.CancelFunc
	once    sync.Once
}

var _ llm.Core = (*Core)(nil)

// New builds a core. It does not contact the upstream; use Health for that.
func New(cfg Config) (*Core, error) {
	base, err := NormalizeBaseURL(cfg.BaseURL)
	if err != nil {
		return nil, err
	}
	if cfg.MaxInflight <= 0 {
		cfg.MaxInflight = DefaultMaxInflight
	}
	if cfg.MaxTokens < 0 {
		return nil, api.Errorf(api.CallerBadRequest, "openai backend %q: max_tokens must not be negative", cfg.Name)
	}
	if cfg.Offload && !cfg.Retention {
		return nil, api.Errorf(api.CallerBadRequest, "openai backend %q: offload (swap hints) needs retention: only a server that takes the KV hints takes swaps", cfg.Name)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = DefaultIdleTimeout
	}
	if cfg.HealthTimeout <= 0 {
		cfg.HealthTimeout = DefaultHealthTimeout
	}
	if cfg.MaxCompletionTokensField == nil {
		u, _ := url.Parse(base)
		v := u.Hostname() == "api.openai.com"
		cfg.MaxCompletionTokensField = &v
	}
	key := cfg.APIKey
	if key == "" {
		key = placeholderAPIKey
	}
	c := &Core{cfg: cfg, base: base, key: key, log: cfg.Logger}
	hc := cfg.HTTPClient
	if hc == nil {
		hc = upstream.HTTPClient(cfg.MaxInflight)
		c.ownHTTP = hc
	}
	c.http = hc
	c.client = openai.NewClient(
		option.WithBaseURL(base),
		option.WithAPIKey(key),
		option.WithHTTPClient(hc),
		option.WithMaxRetries(0),
		// The SDK adds these from OPENAI_ORG_ID / OPENAI_PROJECT_ID in the environment;
		// this backend's config, not the kernel's environment, says what an upstream
		// (often not OpenAI at all) is told.
		option.WithHeaderDel("OpenAI-Organization"),
		option.WithHeaderDel("OpenAI-Project"),
	)
	c.closing, c.close = context.WithCancel(context.Background())
	if cfg.Retention {
		c.startHints()
	}
	return c, nil
}

var versionSegment = regexp.MustCompile(`/v\d+[a-z0-9]*$`)

// NormalizeBaseURL is upstream.NormalizeBaseURL for this backend.
func NormalizeBaseURL(raw string) (string, error) {
	return upstream.NormalizeBaseURL(raw, "openai backend")
}

// BaseURL is the normalised API root this core calls.
func (c *Core) BaseURL() string { return c.base }

func (c *Core) Capabilities() llm.Capabilities {
	return llm.Capabilities{Resume: c.cfg.Resume, Priority: c.cfg.Priority}
}

func (c *Core) Capacity() llm.Capacity {
	return llm.Capacity{MaxInflight: c.cfg.MaxInflight, MaxTokens: c.cfg.MaxTokens}
}

// Close ends in-flight calls (they fail with kernel_shutting_down), drops session
// hints not yet sent, and releases idle connections.
func (c *Core) Close() error {
	c.once.Do(func() {
		c.close()
		c.hintsDone.Wait()
		if c.ownHTTP != nil {
			c.ownHTTP.CloseIdleConnections()
		}
	})
	return nil
}

// withCore derives the context an upstream request runs under: it ends with the
// caller's ctx, when the core closes, or when the watchdog fires.
func (c *Core) withCore(ctx context.Context) (context.Context, context.CancelCauseFunc, func() bool) {
	return upstream.WithClose(ctx, c.closing)
}

// Generate streams req from the upstream, emitting each delta as it arrives.
func (c *Core) Generate(ctx context.Context, req *llm.Request, emit func(llm.Delta)) (*llm.Result, error) {
	if c.closing.Err() != nil {
		return nil, api.Errorf(api.KernelShuttingDown, "openai backend %q is closed", c.cfg.Name)
	}
	params, err := c.params(req)
	if err != nil {
		return nil, err
	}
	if emit == nil {
		emit = func(llm.Delta) {}
	}
	rctx, cancel, stopClose := c.withCore(ctx)
	defer stopClose()
	defer cancel(nil)
	// The watchdog runs from before the request, so a server that accepts the
	// connection and never answers is caught as surely as one that stalls mid-stream.
	idle := c.cfg.IdleTimeout
	watchdog := time.AfterFunc(idle, func() { cancel(upstream.ErrIdle) })
	defer watchdog.Stop()

	var failure upstream.Failure
	stream := c.client.Chat.Completions.NewStreaming(rctx, params, option.WithMiddleware(upstream.Capture(&failure)))
	defer stream.Close()

	var acc openai.ChatCompletionAccumulator
	var usage *openai.CompletionUsage
	var streamID string
	finished := false
	deltas := 0
	for stream.Next() {
		if rctx.Err() != nil {
			// Chunks already buffered would still decode; a preempted call must stop
			// emitting now, so the kernel's copy of the text ends where it cancelled.
			return nil, c.classify(ctx, rctx, nil, context.Cause(rctx))
		}
		watchdog.Reset(idle)
		chunk := stream.Current()
		// The accumulator rejects a chunk whose id differs from the first one; some
		// servers mint an id per chunk, which says nothing about the text, so pin it.
		if streamID == "" {
			streamID = chunk.ID
		}
		chunk.ID = streamID
		if !acc.AddChunk(chunk) {
			return nil, api.Errorf(api.BackendBadResponse, "upstream %s sent a stream chunk that does not continue the response", c.base)
		}
		if chunk.JSON.Usage.Valid() {
			// Take the last report rather than the accumulator's sum: servers that
			// report usage on every chunk send running totals.
			u := chunk.Usage
			usage = &u
		}
		for _, ch := range chunk.Choices {
			if ch.Index != 0 {
				continue // the kernel asks for one choice
			}
			d := toDelta(ch.Delta)
			if d.Text != "" || len(d.ToolCalls) > 0 {
				deltas++
				emit(d)
			}
			if ch.FinishReason != "" {
				finished = true
			}
		}
	}
	if err := stream.Err(); err != nil {
		return nil, c.classify(ctx, rctx, &failure, err)
	}
	if !finished {
		if rctx.Err() != nil {
			return nil, c.classify(ctx, rctx, nil, context.Cause(rctx))
		}
		return nil, api.Errorf(api.BackendUnavailable,
			"upstream %s: stream ended before the response was complete (no finish_reason after %d deltas)", c.base, deltas)
	}
	return c.result(req, &acc, usage, deltas), nil
}

// toDelta converts one streamed choice delta. A refusal is returned as text: to an
// agent it is the model's answer.
func toDelta(d openai.ChatCompletionChunkChoiceDelta) llm.Delta {
	out := llm.Delta{Text: d.Content + d.Refusal}
	for _, tc := range d.ToolCalls {
		idx := int(tc.Index)
		if idx < 0 {
			idx = 0 // some servers mark a lone call -1, as the SDK's accumulator allows
		}
		out.ToolCalls = append(out.ToolCalls, api.ToolCall{
			Index: &idx, ID: tc.ID, Type: tc.Type,
			Function: api.FunctionCall{Name: tc.Function.Name, Arguments: tc.Function.Arguments},
		})
	}
	return out
}

func (c *Core) result(req *llm.Request, acc *openai.ChatCompletionAccumulator, usage *openai.CompletionUsage, deltas int) *llm.Result {
	res := &llm.Result{}
	if len(acc.Choices) > 0 {
		ch := acc.Choices[0]
		res.Text = ch.Message.Content + ch.Message.Refusal
		res.FinishReason = ch.FinishReason
		for _, tc := range ch.Message.ToolCalls {
			typ := tc.Type
			if typ == "" {
				typ = "function"
			}
			res.ToolCalls = append(res.ToolCalls, api.ToolCall{
				ID: tc.ID, Type: typ,
				Function: api.FunctionCall{Name: tc.Function.Name, Arguments: tc.Function.Arguments},
			})
		}
	}
	if usage != nil {
		res.Usage = api.Usage{
			PromptTokens:     int(usage.PromptTokens),
			CompletionTokens: int(usage.CompletionTokens),
			TotalTokens:      int(usage.TotalTokens),
		}
		if usage.JSON.PromptTokensDetails.Valid() {
			res.Usage.PromptTokensDetails = &api.PromptTokensDetails{CachedTokens: int(usage.PromptTokensDetails.CachedTokens)}
		}
	} else {
		// Some servers ignore stream_options. Accounting and fair share need a number,
		// so estimate: one streamed delta is about one token on every server we target.
		res.Usage.PromptTokens = llm.EstimateTokens(c.sentMessages(req), req.Tools)
		res.Usage.CompletionTokens = deltas
		res.Usage.TotalTokens = res.Usage.PromptTokens + deltas
	}
	return res
}

func (c *Core) sentMessages(req *llm.Request) []api.Message {
	if req.Resume == "" {
		return req.Messages
	}
	return append(append([]api.Message(nil), req.Messages...), api.Message{Role: "assistant", Content: api.Content(req.Resume)})
}

// params translates the kernel's request into the SDK's. Tools, tool_choice and
// response_format pass through as raw JSON: the upstream renders tool schemas into the
// prompt, so keeping the agent's bytes keeps prompts (and engine prefix caches) stable.
func (c *Core) params(req *llm.Request) (openai.ChatCompletionNewParams, error) {
	var p openai.ChatCompletionNewParams
	p.Model = c.cfg.Name
	if p.Model == "" {
		p.Model = req.Model
	}
	if p.Model == "" {
		return p, api.Errorf(api.CallerBadRequest, "no model name: set the backend's name or the request's model")
	}
	if req.Resume != "" && !c.cfg.Resume {
		return p, api.Errorf(api.KernelInternal, "openai backend %q cannot resume a call: its server does not support continue_final_message", c.cfg.Name)
	}
	for i, m := range c.sentMessages(req) {
		mp, err := message(m)
		if err != nil {
			return p, api.Wrap(api.CallerBadRequest, err, "message %d", i)
		}
		p.Messages = append(p.Messages, mp)
	}
	for i, t := range req.Tools {
		if t.Type == "" {
			t.Type = "function"
		}
		if t.Function.Name == "" {
			return p, api.Errorf(api.CallerBadRequest, "tool %d has no function name", i)
		}
		if len(t.Function.Parameters) > 0 && !json.Valid(t.Function.Parameters) {
			return p, api.Errorf(api.CallerBadRequest, "tool %q: parameters are not valid JSON", t.Function.Name)
		}
		b, err := json.Marshal(t)
		if err != nil {
			return p, api.Wrap(api.CallerBadRequest, err, "tool %q", t.Function.Name)
		}
		p.Tools = append(p.Tools, param.Override[openai.ChatCompletionToolUnionParam](json.RawMessage(b)))
	}
	if tc := req.ToolChoice; len(tc) > 0 && string(tc) != "null" {
		if !json.Valid(tc) {
			return p, api.Errorf(api.CallerBadRequest, "tool_choice is not valid JSON: %.40s", tc)
		}
		p.ToolChoice = param.Override[openai.ChatCompletionToolChoiceOptionUnionParam](json.RawMessage(tc))
	}
	if req.Temperature != nil {
		p.Temperature = param.NewOpt(*req.Temperature)
	}
	if req.MaxTokens > 0 {
		if *c.cfg.MaxCompletionTokensField {
			p.MaxCompletionTokens = param.NewOpt(int64(req.MaxTokens))
		} else {
			p.MaxTokens = param.NewOpt(int64(req.MaxTokens))
		}
	}
	if rf := req.ResponseFormat; rf != nil {
		var raw []byte
		switch rf.Type {
		case "", "text":
		case "json_object":
			raw = []byte(`{"type":"json_object"}`)
		case "json_schema":
			if len(rf.JSONSchema) == 0 || !json.Valid(rf.JSONSchema) {
				return p, api.Errorf(api.CallerBadRequest, `response_format json_schema needs a valid "json_schema" object`)
			}
			raw, _ = json.Marshal(struct {
				Type       string          `json:"type"`
				JSONSchema json.RawMessage `json:"json_schema"`
			}{"json_schema", rf.JSONSchema})
		default:
			return p, api.Errorf(api.CallerBadRequest, "response_format type %q is not one of text, json_object, json_schema", rf.Type)
		}
		if raw != nil {
			p.ResponseFormat = param.Override[openai.ChatCompletionNewParamsResponseFormatUnion](json.RawMessage(raw))
		}
	}
	p.StreamOptions.IncludeUsage = param.NewOpt(true)

	extra := map[string]any{}
	if req.Resume != "" {
		// vLLM's (and SGLang's) way to continue an assistant message in place instead
		// of opening a new turn after it.
		extra["continue_final_message"] = true
		extra["add_generation_prompt"] = false
	}
	if c.cfg.Priority {
		// vLLM runs lower values first; the kernel's larger value is more urgent.
		extra["priority"] = -req.Priority
	}
	if c.cfg.Retention && req.KVTTL > 0 {
		// The simulator's retention hint (aios sim serve); vLLM has no such field.
		extra["kv_ttl_ms"] = req.KVTTL.Milliseconds()
	}
	if c.cfg.Retention && req.ReuseAfter > 0 {
		// The simulator's eviction hint; vLLM has no such field either.
		extra["kv_reuse_after_ms"] = max(req.ReuseAfter.Milliseconds(), 1)
	}
	if c.cfg.Retention && hintable(req.Session) {
		// Names the context the server remembers for this session, so that the end
		// and swap hints find it (aios sim serve); it does not change the answer.
		extra["kv_session"] = req.Session
	}
	if req.IgnoreEOS {
		// vLLM's sampling extension: generate exactly max_tokens. Sent only when asked,
		// as OpenAI itself rejects unknown fields.
		extra["ignore_eos"] = true
	}
	if len(extra) > 0 {
		p.SetExtraFields(extra)
	}
	return p, nil
}

func message(m api.Message) (openai.ChatCompletionMessageParamUnion, error) {
	text := string(m.Content)
	switch m.Role {
	case "system":
		mp := openai.SystemMessage(text)
		if m.Name != "" {
			mp.OfSystem.Name = param.NewOpt(m.Name)
		}
		return mp, nil
	case "developer":
		mp := openai.DeveloperMessage(text)
		if m.Name != "" {
			mp.OfDeveloper.Name = param.NewOpt(m.Name)
		}
		return mp, nil
	case "user":
		mp := openai.UserMessage(text)
		if m.Name != "" {
			mp.OfUser.Name = param.NewOpt(m.Name)
		}
		return mp, nil
	case "assistant":
		var a openai.ChatCompletionAssistantMessageParam
		// Content may be absent only beside tool calls; an empty turn still needs "".
		if text != "" || len(m.ToolCalls) == 0 {
			a.Content.OfString = param.NewOpt(text)
		}
		if m.Name != "" {
			a.Name = param.NewOpt(m.Name)
		}
		for _, tc := range m.ToolCalls {
			if tc.Function.Name == "" {
				return openai.ChatCompletionMessageParamUnion{}, fmt.Errorf("assistant tool call %q has no function name", tc.ID)
			}
			a.ToolCalls = append(a.ToolCalls, openai.ChatCompletionMessageToolCallUnionParam{
				OfFunction: &openai.ChatCompletionMessageFunctionToolCallParam{
					ID: tc.ID,
					Function: openai.ChatCompletionMessageFunctionToolCallFunctionParam{
						Name: tc.Function.Name, Arguments: tc.Function.Arguments,
					},
				},
			})
		}
		return openai.ChatCompletionMessageParamUnion{OfAssistant: &a}, nil
	case "tool":
		return openai.ToolMessage(text, m.ToolCallID), nil
	case "function":
		return openai.ChatCompletionMessageParamOfFunction(text, m.Name), nil
	}
	return openai.ChatCompletionMessageParamUnion{}, fmt.Errorf("role %q is not one of system, developer, user, assistant, tool", m.Role)
}

// healthCtx bounds probes that come without a deadline of their own.
func (c *Core) healthCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, c.cfg.HealthTimeout)
}

// Health asks the upstream for its model list: cheap on every server, and it checks
// the address, the API key and that the server answers at all.
func (c *Core) Health(ctx context.Context) error {
	_, err := c.ListModels(ctx)
	return err
}

// ListModels returns the models the upstream serves (GET /v1/models).
func (c *Core) ListModels(ctx context.Context) ([]api.Model, error) {
	if c.closing.Err() != nil {
		return nil, api.Errorf(api.KernelShuttingDown, "openai backend %q is closed", c.cfg.Name)
	}
	hctx, hcancel := c.healthCtx(ctx)
	defer hcancel()
	rctx, cancel, stopClose := c.withCore(hctx)
	defer stopClose()
	defer cancel(nil)
	var failure upstream.Failure
	page, err := c.client.Models.List(rctx, option.WithMiddleware(upstream.Capture(&failure)))
	if err != nil {
		if ctx.Err() == nil && hctx.Err() != nil {
			// Our own probe deadline, not the caller's: the backend is too slow.
			return nil, api.Wrap(api.BackendTimeout, err, "upstream %s did not list its models within %v", c.base, c.cfg.HealthTimeout)
		}
		return nil, c.classify(ctx, rctx, &failure, err)
	}
	out := make([]api.Model, 0, len(page.Data))
	for _, m := range page.Data {
		out = append(out, api.Model{ID: m.ID, Object: "model", Created: m.Created, OwnedBy: m.OwnedBy})
	}
	return out, nil
}
