// Package simcore is the kernel's `sim` backend: an LLM core that needs no GPU, no key
// and no server. It produces deterministic text at a configured speed, continues a
// partial answer exactly (so context switches are lossless), and emits tool calls when
// tool_choice names a function, so agents can be exercised end to end.
package simcore

import (
	"context"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"strings"
	"time"

	"github.com/aios-go/aios/api"
	"github.com/aios-go/aios/internal/llm"
)

// Config sets the core's speed and capacity.
type Config struct {
	Model       string
	TTFT        time.Duration // time to first token
	TokenDelay  time.Duration // time between tokens
	MaxInflight int
	MaxTokens   int
}

// Core is the simulated LLM core.
type Core struct{ cfg Config }

// New returns a simulated core.
func New(cfg Config) *Core {
	if cfg.MaxInflight <= 0 {
		cfg.MaxInflight = 256 // vLLM's max_num_seqs
	}
	if cfg.MaxTokens <= 0 {
		// The KV cache of Llama-3-8B on one 80 GB GPU at 90% utilisation:
		// (72 GB - 16 GB of weights) / 128 KiB per token.
		cfg.MaxTokens = 427_000
	}
	return &Core{cfg: cfg}
}

func (c *Core) Capabilities() llm.Capabilities { return llm.Capabilities{Resume: true, Priority: true} }
func (c *Core) Capacity() llm.Capacity {
	return llm.Capacity{MaxInflight: c.cfg.MaxInflight, MaxTokens: c.cfg.MaxTokens}
}
func (c *Core) Health(context.Context) error { return nil }
func (c *Core) Close() error                 { return nil }

var words = strings.Fields(`the of and to in is that it for as with was on be by at this are
from or an which one have not but all were when we there can more if will out so up
some what time about into than them only other new these two may first any now such like
our over also back after use how work well way even because good through kernel agent
token cache engine model call queue share fair plan tool memory store route batch`)

// Word returns output token i of a response seeded by seed, with its trailing space.
func Word(seed uint64, i int) string {
	x := seed ^ (uint64(i)+1)*0x9e3779b97f4a7c15
	x ^= x >> 31
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 29
	return words[x%uint64(len(words))] + " "
}

// Seed derives a response's seed from the conversation, so the same prompt gives the
// same answer and a resumed call continues the answer it started.
func Seed(msgs []api.Message) uint64 {
	h := fnv.New64a()
	for _, m := range msgs {
		h.Write([]byte(m.Role))
		h.Write([]byte{0})
		h.Write([]byte(m.Content))
		h.Write([]byte{0})
	}
	return h.Sum64()
}

// Generate implements llm.Core.
func (c *Core) Generate(ctx context.Context, req *llm.Request, emit func(llm.Delta)) (*llm.Result, error) {
	prompt := llm.EstimateTokens(req.Messages, req.Tools)
	usage := api.Usage{PromptTokens: prompt}
	if fn := forcedTool(req); fn != "" && req.Resume == "" {
		if err := c.sleep(ctx, c.cfg.TTFT); err != nil {
			return nil, err
		}
		args := fmt.Sprintf(`{"query": %q}`, strings.TrimSpace(Word(Seed(req.Messages), 0)))
		zero := 0
		tc := api.ToolCall{Index: &zero, ID: fmt.Sprintf("call_%x", Seed(req.Messages)&0xffffffff), Type: "function",
			Function: api.FunctionCall{Name: fn, Arguments: args}}
		emit(llm.Delta{ToolCalls: []api.ToolCall{tc}})
		usage.CompletionTokens = 8
		usage.TotalTokens = usage.PromptTokens + usage.CompletionTokens
		tc.Index = nil
		return &llm.Result{ToolCalls: []api.ToolCall{tc}, FinishReason: "tool_calls", Usage: usage}, nil
	}
	seed := Seed(req.Messages)
	start := len(strings.Fields(req.Resume))
	// Like a model that meets its end-of-sequence token, an answer has a natural length
	// drawn from the conversation; max_tokens cuts it short.
	natural := 24 + int(seed%232)
	n, finish := req.MaxTokens+start, "length"
	if req.MaxTokens <= 0 || natural < n {
		n, finish = natural, "stop"
	}
	jsonOut := req.ResponseFormat != nil && req.ResponseFormat.Type != "" && req.ResponseFormat.Type != "text"
	var sb strings.Builder
	delay := c.cfg.TTFT
	for i := start; i < n; i++ {
		if err := c.sleep(ctx, delay); err != nil {
			usage.TotalTokens = usage.PromptTokens + usage.CompletionTokens
			return &llm.Result{Text: sb.String(), Usage: usage}, err
		}
		delay = c.cfg.TokenDelay
		w := Word(seed, i)
		sb.WriteString(w)
		usage.CompletionTokens++
		if !jsonOut {
			emit(llm.Delta{Text: w})
		}
	}
	text := sb.String()
	if jsonOut {
		// A JSON answer is emitted whole at the end, so a stream never shows half an object.
		b, _ := json.Marshal(map[string]string{"answer": strings.TrimSpace(req.Resume + text)})
		text = string(b)
		emit(llm.Delta{Text: text})
	}
	usage.TotalTokens = usage.PromptTokens + usage.CompletionTokens
	return &llm.Result{Text: text, FinishReason: finish, Usage: usage}, nil
}

func (c *Core) sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		if ctx.Err() != nil {
			return api.Wrap(api.CallerCancelled, context.Cause(ctx), "generation stopped")
		}
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return api.Wrap(api.CallerCancelled, context.Cause(ctx), "generation stopped")
	}
}

// forcedTool returns the function tool_choice names, or the first tool when it says
// "required": the cases where a real model must answer with a tool call.
func forcedTool(req *llm.Request) string {
	if len(req.ToolChoice) == 0 || len(req.Tools) == 0 {
		return ""
	}
	var s string
	if json.Unmarshal(req.ToolChoice, &s) == nil {
		if s == "required" {
			return req.Tools[0].Function.Name
		}
		return ""
	}
	var obj struct {
		Function struct {
			Name string `json:"name"`
		} `json:"function"`
	}
	if json.Unmarshal(req.ToolChoice, &obj) == nil {
		return obj.Function.Name
	}
	return ""
}
