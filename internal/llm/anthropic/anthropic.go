// Package anthropic is the backend for Anthropic's Messages API. It translates the
// kernel's llm.Request (OpenAI-shaped messages and tools) into a streamed message through
// the official anthropic-sdk-go, turns Claude's content blocks back into text and tool
// call deltas, and classifies every failure into the kernel's error taxonomy. The SDK's
// own retries are off: the kernel retries, backs off and fails over.
//
// The SDK speaks API version 2026-10-21, which rejects temperature, top_p and top_k even
// at their defaults, so Request.Temperature is not sent.
package anthropic

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
	"unicode"

	"github.com/aios-go/aios/api"
	"github.com/aios-go/aios/internal/llm"
	"github.com/aios-go/aios/internal/llm/upstream"
	"github.com/anthropics/anthropic-sdk-go/v2"
	"github.com/anthropics/anthropic-sdk-go/v2/option"
	"github.com/anthropics/anthropic-sdk-go/v2/packages/param"
)

// Config describes one Anthropic upstream.
type Config struct {
	// Name is the model sent upstream (e.g. claude-sonnet-4-5). When empty, Request.Model
	// is sent.
	Name string
	// BaseURL is the API root, with or without /v1. Default DefaultBaseURL.
	BaseURL string
	// APIKey is sent as a bearer token, as the SDK sends it.
	APIKey string

	// MaxInflight and MaxTokens are the capacity the scheduler keeps this core within.
	MaxInflight int
	MaxTokens   int

	// Resume: the model continues a partial answer given as the final assistant message
	// (a prefill), so a preempted or dropped call can go on where it stopped. Claude 4.6
	// and later refuse prefills, so this is off unless the model is known to take them.
	Resume bool
	// DefaultMaxTokens is sent when a request sets no max_tokens, which Anthropic
	// requires. Default DefaultMaxOutput.
	DefaultMaxTokens int

	// HTTPClient replaces the default client. Leave its Timeout zero; IdleTimeout bounds
	// silence instead.
	HTTPClient *http.Client
	// IdleTimeout is the longest the upstream may stay silent (before the headers or
	// between two events) before the call fails with backend_timeout.
	IdleTimeout time.Duration
	// HealthTimeout bounds Health and ListModels when ctx has no earlier deadline.
	HealthTimeout time.Duration
}

const (
	DefaultBaseURL       = "https://api.anthropic.com"
	DefaultMaxInflight   = 64
	DefaultMaxOutput     = 4096
	DefaultIdleTimeout   = 2 * time.Minute
	DefaultHealthTimeout = 5 * time.Second
)

// Core is one Anthropic backend instance. It is safe for concurrent use.
type Core struct {
	cfg     Config
	base    string
	client  anthropic.Client
	ownHTTP *http.Client

	closing context.Context
	close   context.CancelFunc
	once    sync.Once
}

var _ llm.Core = (*Core)(nil)

// New builds a core. It does not contact the upstream; use Health for that.
func New(cfg Config) (*Core, error) {
	base, err := normalizeBaseURL(cfg.BaseURL)
	if err != nil {
		return nil, err
	}
	if cfg.MaxInflight <= 0 {
		cfg.MaxInflight = DefaultMaxInflight
	}
	if cfg.MaxTokens < 0 {
		return nil, api.Errorf(api.CallerBadRequest, "anthropic backend %q: max_tokens must not be negative", cfg.Name)
	}
	if cfg.DefaultMaxTokens <= 0 {
		cfg.DefaultMaxTokens = DefaultMaxOutput
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
	opts := []option.RequestOption{
		// The SDK would otherwise take the key, base URL, profile and extra headers from
		// ANTHROPIC_* variables and ~/.config; a core's config alone says where it goes
		// and as whom, so two cores with different keys cannot be mixed up.
		option.WithoutEnvironmentDefaults(),
		option.WithBaseURL(base),
		option.WithHTTPClient(hc),
		option.WithMaxRetries(0),
	}
	if cfg.APIKey != "" {
		opts = append(opts, option.WithAPIKey(cfg.APIKey))
	}
	c.client = anthropic.NewClient(opts...)
	c.closing, c.close = context.WithCancel(context.Background())
	return c, nil
}

// normalizeBaseURL accepts the API root with or without /v1 (the SDK adds v1/ itself).
func normalizeBaseURL(raw string) (string, error) {
	s := strings.TrimSpace(raw)
	if s == "" {
		s = DefaultBaseURL
	}
	if !strings.Contains(s, "://") {
		s = "https://" + s
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", api.Errorf(api.CallerBadRequest, "anthropic backend: base URL %q is not an http(s) URL with a host", raw)
	}
	p := strings.TrimRight(u.Path, "/")
	p = strings.TrimSuffix(p, "/v1")
	u.Path, u.RawPath = p+"/", ""
	return u.String(), nil
}

// BaseURL is the API root this core calls.
func (c *Core) BaseURL() string { return c.base }

func (c *Core) Capabilities() llm.Capabilities { return llm.Capabilities{Resume: c.cfg.Resume} }

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

func (c *Core) withCore(ctx context.Context) (context.Context, context.CancelCauseFunc, func() bool) {
	return upstream.WithClose(ctx, c.closing)
}

// stream is what a Generate has seen so far.
type stream struct {
	text      strings.Builder
	calls     []api.ToolCall
	callOf    map[int64]int // content block index -> tool call index
	argsSeen  map[int]bool
	stop      anthropic.StopReason
	usage     anthropic.Usage
	outTokens int64
	deltas    int
	// skip is whitespace cut off the end of a prefill (the API refuses a final
	// assistant message that ends in whitespace); the caller already has it, so the
	// same characters at the start of the continuation are dropped.
	skip string
}

// Generate streams req from Anthropic, emitting each delta as it arrives.
func (c *Core) Generate(ctx context.Context, req *llm.Request, emit func(llm.Delta)) (*llm.Result, error) {
	if c.closing.Err() != nil {
		return nil, api.Errorf(api.KernelShuttingDown, "anthropic backend %q is closed", c.cfg.Name)
	}
	params, skip, err := c.params(req)
	if err != nil {
		return nil, err
	}
	if emit == nil {
		emit = func(llm.Delta) {}
	}
	rctx, cancel, stopClose := c.withCore(ctx)
	defer stopClose()
	defer cancel(nil)
	idle := c.cfg.IdleTimeout
	watchdog := time.AfterFunc(idle, func() { cancel(upstream.ErrIdle) })
	defer watchdog.Stop()

	var failure upstream.Failure
	sse := c.client.Messages.NewStreaming(rctx, params, option.WithMiddleware(upstream.Capture(&failure)))
	defer sse.Close()

	st := &stream{callOf: map[int64]int{}, argsSeen: map[int]bool{}, skip: skip}
	for sse.Next() {
		if rctx.Err() != nil {
			// Events already buffered would still decode; a preempted call must stop
			// emitting now, so the kernel's copy of the text ends where it cancelled.
			return nil, c.classify(ctx, rctx, nil, context.Cause(rctx))
		}
		watchdog.Reset(idle)
		if d, ok := st.apply(sse.Current()); ok {
			st.deltas++
			emit(d)
		}
	}
	if err := sse.Err(); err != nil {
		return nil, c.classify(ctx, rctx, &failure, err)
	}
	if st.stop == "" {
		if rctx.Err() != nil {
			return nil, c.classify(ctx, rctx, nil, context.Cause(rctx))
		}
		return nil, api.Errorf(api.BackendUnavailable,
			"upstream %s: stream ended before the response was complete (no stop_reason after %d deltas)", c.base, st.deltas)
	}
	return st.result(), nil
}

// apply folds one event into the stream and returns the delta it carries for the caller.
func (st *stream) apply(ev anthropic.MessageStreamEventUnion) (llm.Delta, bool) {
	switch ev.Type {
	case "message_start":
		st.usage = ev.Message.Usage
	case "content_block_start":
		cb := ev.ContentBlock
		switch cb.Type {
		case "tool_use":
			i := len(st.calls)
			st.callOf[ev.Index] = i
			st.calls = append(st.calls, api.ToolCall{ID: cb.ID, Type: "function", Function: api.FunctionCall{Name: cb.Name}})
			return llm.Delta{ToolCalls: []api.ToolCall{{Index: &i, ID: cb.ID, Type: "function",
				Function: api.FunctionCall{Name: cb.Name}}}}, true
		case "text":
			return st.textDelta(cb.Text)
		}
	case "content_block_delta":
		switch ev.Delta.Type {
		case "text_delta":
			return st.textDelta(ev.Delta.Text)
		case "input_json_delta":
			i, ok := st.callOf[ev.Index]
			if !ok || ev.Delta.PartialJSON == "" {
				return llm.Delta{}, false
			}
			st.argsSeen[i] = true
			st.calls[i].Function.Arguments += ev.Delta.PartialJSON
			return llm.Delta{ToolCalls: []api.ToolCall{{Index: &i, Function: api.FunctionCall{Arguments: ev.Delta.PartialJSON}}}}, true
		}
		// Thinking, signatures and citations are Claude's own bookkeeping; an agent
		// asking through the OpenAI shape has no place for them.
	case "content_block_stop":
		if i, ok := st.callOf[ev.Index]; ok && !st.argsSeen[i] {
			// A tool called with no input streams no fragments; OpenAI clients expect
			// an arguments object all the same.
			st.argsSeen[i] = true
			st.calls[i].Function.Arguments = "{}"
			return llm.Delta{ToolCalls: []api.ToolCall{{Index: &i, Function: api.FunctionCall{Arguments: "{}"}}}}, true
		}
	case "message_delta":
		st.stop = ev.Delta.StopReason
		st.outTokens = ev.Usage.OutputTokens
		if ev.Usage.JSON.InputTokens.Valid() {
			st.usage.InputTokens = ev.Usage.InputTokens
		}
		if ev.Usage.JSON.CacheReadInputTokens.Valid() {
			st.usage.CacheReadInputTokens = ev.Usage.CacheReadInputTokens
		}
		if ev.Usage.JSON.CacheCreationInputTokens.Valid() {
			st.usage.CacheCreationInputTokens = ev.Usage.CacheCreationInputTokens
		}
	}
	return llm.Delta{}, false
}

func (st *stream) textDelta(text string) (llm.Delta, bool) {
	for st.skip != "" && text != "" {
		if text[0] != st.skip[0] {
			st.skip = ""
			break
		}
		text, st.skip = text[1:], st.skip[1:]
	}
	if text == "" {
		return llm.Delta{}, false
	}
	st.skip = ""
	st.text.WriteString(text)
	return llm.Delta{Text: text}, true
}

func (st *stream) result() *llm.Result {
	u := st.usage
	// Anthropic's input_tokens leaves out the tokens read from or written to its prompt
	// cache; OpenAI's prompt_tokens, which agents and accounting read, includes them.
	prompt := int(u.InputTokens + u.CacheReadInputTokens + u.CacheCreationInputTokens)
	out := int(st.outTokens)
	return &llm.Result{
		Text:         st.text.String(),
		ToolCalls:    st.calls,
		FinishReason: finishReason(st.stop),
		Usage: api.Usage{
			PromptTokens: prompt, CompletionTokens: out, TotalTokens: prompt + out,
			PromptTokensDetails: &api.PromptTokensDetails{CachedTokens: int(u.CacheReadInputTokens)},
		},
	}
}

// finishReason maps Claude's stop reasons to OpenAI's finish reasons.
func finishReason(s anthropic.StopReason) string {
	switch s {
	case anthropic.StopReasonEndTurn, anthropic.StopReasonStopSequence, anthropic.StopReasonPauseTurn:
		return "stop"
	case anthropic.StopReasonMaxTokens, anthropic.StopReasonModelContextWindowExceeded:
		return "length"
	case anthropic.StopReasonToolUse:
		return "tool_calls"
	case anthropic.StopReasonRefusal:
		return "content_filter"
	}
	return string(s)
}

// params translates the kernel's request into the SDK's. It returns the whitespace cut
// from the end of a prefill, which the stream then drops from the continuation.
func (c *Core) params(req *llm.Request) (anthropic.MessageNewParams, string, error) {
	var p anthropic.MessageNewParams
	p.Model = anthropic.Model(c.cfg.Name)
	if p.Model == "" {
		p.Model = anthropic.Model(req.Model)
	}
	if p.Model == "" {
		return p, "", api.Errorf(api.CallerBadRequest, "no model name: set the backend's name or the request's model")
	}
	if req.Resume != "" && !c.cfg.Resume {
		return p, "", api.Errorf(api.KernelInternal, "anthropic backend %q cannot resume a call: prefill is off for this model (set resume: true only for models that accept it)", c.cfg.Name)
	}
	p.MaxTokens = int64(req.MaxTokens)
	if p.MaxTokens <= 0 {
		p.MaxTokens = int64(c.cfg.DefaultMaxTokens)
	}

	system, msgs, err := messages(req.Messages)
	if err != nil {
		return p, "", err
	}
	if rf := req.ResponseFormat; rf != nil {
		switch rf.Type {
		case "", "text":
		case "json_object":
			// Claude has no schemaless JSON mode; structured outputs need a schema, so
			// the instruction is the documented way to ask for free-form JSON.
			system = append(system, anthropic.TextBlockParam{Text: "Respond with a single JSON object and nothing else: no prose, no code fences."})
		case "json_schema":
			schema, err := openAISchema(rf.JSONSchema)
			if err != nil {
				return p, "", err
			}
			p.OutputConfig = param.Override[anthropic.OutputConfigParam](json.RawMessage(
				`{"format":{"type":"json_schema","schema":` + string(schema) + `}}`))
		default:
			return p, "", api.Errorf(api.CallerBadRequest, "response_format type %q is not one of text, json_object, json_schema", rf.Type)
		}
	}
	p.System = system

	skip := ""
	if req.Resume != "" {
		prefill := strings.TrimRightFunc(req.Resume, unicode.IsSpace)
		skip = req.Resume[len(prefill):]
		if prefill != "" {
			msgs = append(msgs, anthropic.NewAssistantMessage(anthropic.NewTextBlock(prefill)))
		}
	}
	p.Messages = msgs

	for i, t := range req.Tools {
		if t.Function.Name == "" {
			return p, "", api.Errorf(api.CallerBadRequest, "tool %d has no function name", i)
		}
		schema := t.Function.Parameters
		if len(schema) == 0 || string(schema) == "null" {
			schema = json.RawMessage(`{"type":"object","properties":{}}`)
		}
		if !json.Valid(schema) {
			return p, "", api.Errorf(api.CallerBadRequest, "tool %q: parameters are not valid JSON", t.Function.Name)
		}
		def := map[string]any{"name": t.Function.Name, "input_schema": json.RawMessage(schema)}
		if t.Function.Description != "" {
			def["description"] = t.Function.Description
		}
		if t.Function.Strict != nil {
			def["strict"] = *t.Function.Strict
		}
		b, err := json.Marshal(def)
		if err != nil {
			return p, "", api.Wrap(api.CallerBadRequest, err, "tool %q", t.Function.Name)
		}
		// The agent's schema goes through byte for byte.
		p.Tools = append(p.Tools, param.Override[anthropic.ToolUnionParam](json.RawMessage(b)))
	}
	if len(req.ToolChoice) > 0 && string(req.ToolChoice) != "null" {
		tc, err := toolChoice(req.ToolChoice, len(req.Tools) > 0)
		if err != nil {
			return p, "", err
		}
		p.ToolChoice = tc
	}
	return p, skip, nil
}

// openAISchema takes the schema out of OpenAI's json_schema wrapper {name, strict, schema}.
func openAISchema(raw json.RawMessage) (json.RawMessage, error) {
	var js struct {
		Schema json.RawMessage `json:"schema"`
	}
	if len(raw) == 0 || json.Unmarshal(raw, &js) != nil || len(js.Schema) == 0 || js.Schema[0] != '{' {
		return nil, api.Errorf(api.CallerBadRequest, `response_format json_schema needs a "json_schema" object with a "schema"`)
	}
	return js.Schema, nil
}

// toolChoice maps OpenAI's tool_choice onto Claude's: "required" is "any", a named
// function is "tool".
func toolChoice(raw json.RawMessage, haveTools bool) (anthropic.ToolChoiceUnionParam, error) {
	var mode string
	if json.Unmarshal(raw, &mode) == nil {
		switch mode {
		case "auto":
			return anthropic.ToolChoiceUnionParam{OfAuto: &anthropic.ToolChoiceAutoParam{}}, nil
		case "required":
			return anthropic.ToolChoiceUnionParam{OfAny: &anthropic.ToolChoiceAnyParam{}}, nil
		case "none":
			if !haveTools {
				return anthropic.ToolChoiceUnionParam{}, nil
			}
			return anthropic.ToolChoiceUnionParam{OfNone: &anthropic.ToolChoiceNoneParam{}}, nil
		}
		return anthropic.ToolChoiceUnionParam{}, api.Errorf(api.CallerBadRequest, "tool_choice %q is not one of auto, required, none", mode)
	}
	var named struct {
		Function struct {
			Name string `json:"name"`
		} `json:"function"`
	}
	if json.Unmarshal(raw, &named) != nil || named.Function.Name == "" {
		return anthropic.ToolChoiceUnionParam{}, api.Errorf(api.CallerBadRequest, "tool_choice is neither a mode nor {\"type\":\"function\",\"function\":{\"name\":...}}: %.60s", raw)
	}
	return anthropic.ToolChoiceParamOfTool(named.Function.Name), nil
}

// messages translates an OpenAI conversation into Claude's: system and developer
// messages become the system prompt, assistant tool calls become tool_use blocks, and
// tool results become tool_result blocks of one user turn, which is where Claude wants
// every result of a turn's calls.
func messages(in []api.Message) ([]anthropic.TextBlockParam, []anthropic.MessageParam, error) {
	var system []anthropic.TextBlockParam
	var out []anthropic.MessageParam
	// appendUser adds blocks to the user turn being built, or opens one.
	appendUser := func(blocks ...anthropic.ContentBlockParamUnion) {
		if n := len(out); n > 0 && out[n-1].OfUser != nil {
			out[n-1].OfUser.Content = append(out[n-1].OfUser.Content, blocks...)
			return
		}
		out = append(out, anthropic.NewUserMessage(blocks...))
	}
	for i, m := range in {
		text := string(m.Content)
		switch m.Role {
		case "system", "developer":
			if text != "" {
				system = append(system, anthropic.TextBlockParam{Text: text})
			}
		case "user":
			if text == "" {
				// Claude refuses empty text blocks; an empty user turn says nothing.
				continue
			}
			appendUser(anthropic.NewTextBlock(text))
		case "assistant":
			var blocks []anthropic.ContentBlockParamUnion
			if text != "" {
				blocks = append(blocks, anthropic.NewTextBlock(text))
			}
			for _, tc := range m.ToolCalls {
				if tc.Function.Name == "" || tc.ID == "" {
					return nil, nil, api.Errorf(api.CallerBadRequest, "message %d: assistant tool call needs an id and a function name", i)
				}
				args := strings.TrimSpace(tc.Function.Arguments)
				if args == "" {
					args = "{}"
				}
				if !json.Valid([]byte(args)) || args[0] != '{' {
					return nil, nil, api.Errorf(api.CallerBadRequest, "message %d: arguments of tool call %q are not a JSON object", i, tc.ID)
				}
				blocks = append(blocks, anthropic.NewToolUseBlock(tc.ID, json.RawMessage(args), tc.Function.Name))
			}
			if len(blocks) == 0 {
				continue
			}
			out = append(out, anthropic.NewAssistantMessage(blocks...))
		case "tool":
			if m.ToolCallID == "" {
				return nil, nil, api.Errorf(api.CallerBadRequest, "message %d: tool message has no tool_call_id", i)
			}
			res := anthropic.ToolResultBlockParam{ToolUseID: m.ToolCallID}
			if text != "" {
				res.Content = []anthropic.ToolResultBlockParamContentUnion{{OfText: &anthropic.TextBlockParam{Text: text}}}
			}
			appendUser(anthropic.ContentBlockParamUnion{OfToolResult: &res})
		default:
			return nil, nil, api.Errorf(api.CallerBadRequest, "message %d: role %q is not one of system, developer, user, assistant, tool", i, m.Role)
		}
	}
	if len(out) == 0 {
		return nil, nil, api.Errorf(api.CallerBadRequest, "the conversation has no user or assistant message with content")
	}
	return system, out, nil
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

// ListModels returns the models the key may use (GET /v1/models).
func (c *Core) ListModels(ctx context.Context) ([]api.Model, error) {
	if c.closing.Err() != nil {
		return nil, api.Errorf(api.KernelShuttingDown, "anthropic backend %q is closed", c.cfg.Name)
	}
	hctx, hcancel := c.healthCtx(ctx)
	defer hcancel()
	rctx, cancel, stopClose := c.withCore(hctx)
	defer stopClose()
	defer cancel(nil)
	var failure upstream.Failure
	page, err := c.client.Models.List(rctx, anthropic.ModelListParams{}, option.WithMiddleware(upstream.Capture(&failure)))
	if err != nil {
		if ctx.Err() == nil && hctx.Err() != nil {
			return nil, api.Wrap(api.BackendTimeout, err, "upstream %s did not list its models within %v", c.base, c.cfg.HealthTimeout)
		}
		return nil, c.classify(ctx, rctx, &failure, err)
	}
	out := make([]api.Model, 0, len(page.Data))
	for _, m := range page.Data {
		out = append(out, api.Model{ID: m.ID, Object: "model", Created: m.CreatedAt.Unix(), OwnedBy: "anthropic"})
	}
	return out, nil
}

func (c *Core) String() string { return fmt.Sprintf("anthropic(%s @ %s)", c.cfg.Name, c.base) }
