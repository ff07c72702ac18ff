// Package simcore is the kernel's `sim` backend: an llm.Core over the in-process engine
// simulator (internal/llm/sim), so the kernel runs, schedules and can be measured with
// no GPU, no key and no server. The simulator continues a partial answer exactly, so
// context switches are lossless, and answers with a tool call when tool_choice asks for
// one, so agents can be exercised end to end. A JSON response_format gets a document that
// conforms to its schema, and a forced tool call arguments that conform to the tool's.
package simcore

import (
	"context"
	"encoding/json"
	"errors"

	"github.com/aios-go/aios/api"
	"github.com/aios-go/aios/internal/llm"
	"github.com/aios-go/aios/internal/llm/sim"
)

// Config chooses the simulated engine and, optionally, overrides the capacity the
// kernel keeps it within (by default the engine's own: max_num_seqs sequences and its
// KV cache in tokens).
type Config struct {
	sim.Config
	MaxInflight int
	MaxTokens   int
	// SessionHints: the kernel will send this core end-of-session or swap hints
	// (kv_retention, working_set.swap), so each call names its session to the engine,
	// which then remembers its latest contexts. Off, the engine remembers nothing.
	SessionHints bool
}

// Core is a simulated LLM core.
type Core struct {
	live  *sim.Live
	cap   llm.Capacity
	hints bool
}

// New starts a simulated engine.
func New(cfg Config) (*Core, error) {
	live, err := sim.NewLive(cfg.Config)
	if err != nil {
		return nil, err
	}
	p := live.Profile()
	c := &Core{live: live, cap: llm.Capacity{MaxInflight: p.MaxNumSeqs, MaxTokens: p.NumBlocks() * p.BlockSize}, hints: cfg.SessionHints}
	if cfg.MaxInflight > 0 {
		c.cap.MaxInflight = cfg.MaxInflight
	}
	if cfg.MaxTokens > 0 {
		c.cap.MaxTokens = cfg.MaxTokens
	}
	return c, nil
}

// Live exposes the engine, for its metrics and statistics.
func (c *Core) Live() *sim.Live { return c.live }

func (c *Core) Capabilities() llm.Capabilities {
	return llm.Capabilities{Resume: true, Priority: c.live.Policy() == sim.PolicyPriority}
}
func (c *Core) Capacity() llm.Capacity       { return c.cap }
func (c *Core) Health(context.Context) error { return nil }
func (c *Core) Close() error                 { return c.live.Close() }

// kvSession is the name the engine remembers session's contexts by, when hints will
// come for it.
func (c *Core) kvSession(session string) string {
	if c.hints {
		return session
	}
	return ""
}

// EndSession passes the kernel's end-of-session hint to the engine (llm.SessionEnder).
func (c *Core) EndSession(session string) { c.live.EndSession(session) }

// SwapSession carries out the kernel's swaps through the engine's CPU tier
// (llm.SessionSwapper).
func (c *Core) SwapSession(session string, in bool) { c.live.SwapSession(session, in) }

// Generate implements llm.Core.
func (c *Core) Generate(ctx context.Context, req *llm.Request, emit func(llm.Delta)) (*llm.Result, error) {
	g := sim.GenRequest{
		Messages:      simMessages(req.Messages),
		ContinueFinal: req.Resume,
		Model:         req.Model,
		MaxTokens:     req.MaxTokens,
		IgnoreEOS:     req.IgnoreEOS,
		KVTTL:         req.KVTTL,
		ReuseAfter:    req.ReuseAfter,
		Priority:      -req.Priority, // vLLM runs lower values first
		Tools:         simTools(req.Tools),
		Session:       req.Session,
		KVSession:     c.kvSession(req.Session),
	}
	g.ToolChoice, g.ForceTool = toolChoice(req.ToolChoice)
	jsonOut := req.ResponseFormat != nil && req.ResponseFormat.Type != "" && req.ResponseFormat.Type != "text"
	onToken := func(s string) {
		// One delta per token, so the kernel's count of deltas is the count of tokens
		// produced when it computes a resumed call's remaining budget.
		sim.EachToken(s, func(tok string) { emit(llm.Delta{Text: tok}) })
	}
	if jsonOut {
		// The simulator writes a document conforming to the schema (any object for
		// json_object), sent whole at the end: a resumed call regenerates it rather than
		// continuing a half-written object, so nothing partial may have been emitted.
		onToken = nil
		g.ContinueFinal = ""
		g.ResponseFormat = &sim.ResponseFormat{Type: req.ResponseFormat.Type, JSONSchema: req.ResponseFormat.JSONSchema}
	}
	res, err := c.live.Generate(ctx, g, onToken)
	if err != nil {
		return nil, classify(ctx, err)
	}
	out := &llm.Result{
		Text:         res.Text,
		FinishReason: res.FinishReason,
		Usage: api.Usage{
			PromptTokens: res.PromptTokens, CompletionTokens: res.CompletionTokens,
			TotalTokens:         res.PromptTokens + res.CompletionTokens,
			PromptTokensDetails: &api.PromptTokensDetails{CachedTokens: res.CachedTokens},
		},
	}
	if res.ToolCall != nil {
		zero := 0
		tc := api.ToolCall{ID: res.ToolCall.ID, Type: "function",
			Function: api.FunctionCall{Name: res.ToolCall.Name, Arguments: res.ToolCall.Arguments}}
		streamed := tc
		streamed.Index = &zero
		emit(llm.Delta{ToolCalls: []api.ToolCall{streamed}})
		out.ToolCalls = []api.ToolCall{tc}
		out.Text = ""
	}
	if jsonOut && res.ToolCall == nil {
		emit(llm.Delta{Text: out.Text})
	}
	return out, nil
}

// Embed embeds texts with the simulator's embedding function (sim.Embed) at the
// engine's embedding dimension, in process: the same vectors the simulated server's
// /v1/embeddings returns for them, so a kernel on a sim core and a client of `aios sim
// serve` share one embedding space. Like the server, it spends no simulated GPU time.
// Vectors are unit length (the zero vector for a text with no letters or digits).
func (c *Core) Embed(ctx context.Context, texts []string) ([][]float32, error) {
	dim := c.live.EmbedDim()
	out := make([][]float32, len(texts))
	for i, t := range texts {
		// Checked per text: a large batch is the only thing here that takes long.
		if ctx.Err() != nil {
			return nil, api.Wrap(api.CallerCancelled, context.Cause(ctx), "embedding stopped after %d of %d texts", i, len(texts))
		}
		out[i] = sim.Embed(t, dim)
	}
	return out, nil
}

// EmbedModel names the embedding function Embed uses; with EmbedDim it identifies the
// vector space (an embedder's Name should carry both, e.g. "sim:sim-embed-1:256").
func (c *Core) EmbedModel() string { return sim.EmbeddingModel }

// EmbedDim is the length of the vectors Embed returns (sim.Config.EmbedDim).
func (c *Core) EmbedDim() int { return c.live.EmbedDim() }

func classify(ctx context.Context, err error) error {
	switch {
	case ctx.Err() != nil:
		return api.Wrap(api.CallerCancelled, context.Cause(ctx), "generation stopped")
	case errors.Is(err, sim.ErrOutOfMemory):
		return api.Wrap(api.BackendOverloaded, err, "the simulated engine ran out of KV cache memory")
	case errors.Is(err, sim.ErrInvalidRequest):
		return api.Wrap(api.BackendRejected, err, "the simulated engine refused the request")
	case errors.Is(err, sim.ErrClosed):
		return api.Wrap(api.KernelShuttingDown, err, "the simulated engine is closed")
	}
	return api.Wrap(api.BackendUnavailable, err, "the simulated engine failed")
}

func simMessages(msgs []api.Message) []sim.Message {
	out := make([]sim.Message, len(msgs))
	for i, m := range msgs {
		out[i] = sim.Message{Role: m.Role, Content: string(m.Content)}
		for _, tc := range m.ToolCalls {
			out[i].ToolCalls = append(out[i].ToolCalls, sim.ToolCall{ID: tc.ID, Name: tc.Function.Name, Arguments: tc.Function.Arguments})
		}
	}
	return out
}

func simTools(tools []api.Tool) []sim.Tool {
	out := make([]sim.Tool, len(tools))
	for i, t := range tools {
		out[i] = sim.Tool{Name: t.Function.Name, Description: t.Function.Description, Parameters: t.Function.Parameters}
	}
	return out
}

// toolChoice reads OpenAI's tool_choice: a string mode or {"function": {"name"}}.
func toolChoice(raw json.RawMessage) (mode, force string) {
	if len(raw) == 0 {
		return "", ""
	}
	if json.Unmarshal(raw, &mode) == nil {
		return mode, ""
	}
	var obj struct {
		Function struct {
			Name string `json:"name"`
		} `json:"function"`
	}
	if json.Unmarshal(raw, &obj) == nil {
		return "", obj.Function.Name
	}
	return "", ""
}
