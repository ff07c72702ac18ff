// Package llm defines the kernel's one internal shape of an LLM call and the Core
// interface every backend implements. Backends live in subpackages, one per provider;
// each translates between this shape and its provider's wire format.
package llm

import (
	"context"
	"encoding/json"
	"time"

	"github.com/aios-go/aios/api"
)

// Request is one LLM call as the kernel hands it to a core.
type Request struct {
	Model          string
	Messages       []api.Message
	Tools          []api.Tool
	ToolChoice     json.RawMessage
	Temperature    *float64
	MaxTokens      int
	ResponseFormat *api.ResponseFormat
	Priority       int
	// IgnoreEOS asks for exactly MaxTokens tokens (vLLM's ignore_eos), as benchmarks do.
	IgnoreEOS bool
	// KVTTL asks an engine that takes the hint to keep this call's KV cache for that long
	// after it ends, for the session's next call (tool-aware retention).
	KVTTL time.Duration
	// ReuseAfter tells an engine that takes the hint when, after this call ends, its
	// session is expected to call again (predicted from the session's execution graph),
	// so it evicts the blocks of sessions expected back later first.
	ReuseAfter time.Duration
	Agent      string
	Session    string

	// Resume is assistant text already produced for this call before a context switch.
	// The core continues from its end and does not emit it again. MaxTokens then counts
	// only the tokens still to produce, as vLLM counts them for continue_final_message.
	Resume string
}

// Delta is one streamed piece of a response. A text delta is one token, as engines
// stream them; the kernel counts deltas to know how much of a preempted call's output
// budget is left.
type Delta struct {
	Text string
	// ToolCalls carries fragments of tool calls in OpenAI's streaming form: Index says
	// which call a fragment belongs to; ID and name come first, arguments in pieces.
	ToolCalls []api.ToolCall
}

// Result is how a call ended. Text and ToolCalls hold only what this Generate produced
// (not Resume).
type Result struct {
	Text         string
	ToolCalls    []api.ToolCall
	FinishReason string
	Usage        api.Usage
}

// Capabilities says what a core can do beyond plain chat.
type Capabilities struct {
	// Resume: the core continues an assistant message exactly from Request.Resume, so a
	// preempted call can be snapshotted and resumed.
	Resume bool
	// Priority: the engine schedules by Request.Priority itself.
	Priority bool
}

// Capacity is how much a core may hold at once; the scheduler never exceeds it.
type Capacity struct {
	MaxInflight int // sequences
	MaxTokens   int // KV tokens (prompt + max output of in-flight calls); 0 = unlimited
}

// Core is one LLM backend instance.
type Core interface {
	// Generate runs req, calling emit for each delta as it streams in. It returns when
	// the response is complete, ctx ends, or the backend fails; errors are *api.Error.
	// emit is never called after Generate returns.
	Generate(ctx context.Context, req *Request, emit func(Delta)) (*Result, error)
	Capabilities() Capabilities
	Capacity() Capacity
	// Health probes the backend; nil means it answers.
	Health(ctx context.Context) error
	Close() error
}

// SessionEnder is implemented by cores that take the hint that a session has ended:
// its KV cache will not be reused, so the engine may evict it before contexts still in
// use (the simulator, sim.Live.EndSession). The kernel sends it with its other
// retention hints (kv_retention).
type SessionEnder interface {
	EndSession(session string)
}

// SessionSwapper is implemented by cores whose engine has a CPU KV tier and can move a
// session's KV cache through it on the kernel's word (sched.Round.Swaps): out, copy the
// session's latest context to the tier while it waits on a long tool; in, copy it back
// before the tool returns (the simulator, sim.Live.SwapSession).
type SessionSwapper interface {
	SwapSession(session string, in bool)
}

// EstimateTokens is a quick upper-bound guess of a prompt's token count (about four
// bytes a token, plus per-message framing), for admission before the backend counts.
func EstimateTokens(msgs []api.Message, tools []api.Tool) int {
	n := 0
	for _, m := range msgs {
		n += 4 + (len(m.Content)+3)/4
		for _, tc := range m.ToolCalls {
			n += 4 + (len(tc.Function.Name)+len(tc.Function.Arguments)+3)/4
		}
	}
	for _, t := range tools {
		n += 8 + (len(t.Function.Name)+len(t.Function.Description)+len(t.Function.Parameters)+3)/4
	}
	return n
}
