package server

import (
	"net/http"
	"sync"

	"github.com/aios-go/aios/api"
	"github.com/aios-go/aios/internal/kernel"
	"github.com/aios-go/aios/internal/llm"
	"github.com/aios-go/aios/internal/llm/tokenizer"
)

// messageStream writes one answer as Anthropic's event stream: message_start (and a
// ping), then content blocks, each content_block_start, deltas and content_block_stop,
// then message_delta with the stop reason and usage, and message_stop.
//
// Text deltas go into a text block; tool-call fragments, which arrive in OpenAI's form
// (the id and name first, then the arguments in pieces), each open a tool_use block
// whose input streams as input_json_delta. A new block closes the one before it. The
// SDKs place a delta by its block's index, so a fragment of an earlier, closed tool call
// (only a backend that interleaves parallel calls sends one) still lands in its block.
type messageStream struct {
	sse   *sseWriter
	stop  *stopText
	model string
	// holdTools: the kernel's tool loop is on, so the turns' tool calls are not streamed;
	// the last turn's, which are the client's, are sent whole at the end.
	holdTools bool
	input     int // estimated prompt tokens, for message_start

	mu       sync.Mutex
	sc       *kernel.Syscall // the first turn's, named by the message id
	blocks   int             // blocks started
	open     int             // index of the open block, -1 when none
	openText bool
	tools    map[int]int // tool call index (OpenAI's) → block index
	toolIDs  map[int]bool
}

func (s *Server) streamMessages(w http.ResponseWriter, r *http.Request, call kernel.LLMCall, stop *stopText, mem *memoryRun, offer *toolOffer) {
	ms := &messageStream{
		sse: newSSEWriter(w), stop: stop, model: call.Request.Model, holdTools: offer != nil,
		input: tokenizer.Prompt(call.Request.Messages, call.Request.Tools),
		open:  -1, tools: map[int]int{}, toolIDs: map[int]bool{},
	}
	defer ms.sse.Close()
	call.Emit = ms.emit
	// The hook runs under the kernel's lock before the syscall can be dispatched, so
	// the id is set before the first delta reads it.
	before := func(sc *kernel.Syscall) {
		if ms.sc == nil {
			ms.sc = sc
		}
	}
	res, _, err := s.loopTools(r.Context(), call, offer, notedTurn(s.submitTurn(before)))
	if err != nil {
		if !ms.sse.Started() {
			writeAnthropicError(w, err)
			return
		}
		// Mid-stream failure: the SDKs raise an error event, so the agent learns the
		// answer is incomplete instead of reading a silent truncation.
		ms.sse.Named("error", anthropicErrorBody(api.KindOf(err), errorMessage(err)))
		return
	}
	ms.finish(res)
	mem.after(r.Context(), res)
}

// begin sends message_start once, with the headers.
func (ms *messageStream) begin() {
	ms.sse.Begin(func() {
		ms.sse.namedLocked("message_start", api.MessageStartEvent{Type: "message_start", Message: api.MessagesResponse{
			ID: messageID(ms.sc), Type: "message", Role: "assistant", Model: ms.model,
			Content: []api.ResponseBlock{}, Usage: api.AnthropicUsage{InputTokens: ms.input, OutputTokens: 1},
		}})
		ms.sse.namedLocked("ping", map[string]string{"type": "ping"})
	})
}

func (ms *messageStream) emit(d llm.Delta) {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	if ms.stop.Stopped() {
		return
	}
	if d.Text != "" {
		if t := ms.stop.Push(d.Text); t != "" {
			ms.text(t)
		}
	}
	if ms.holdTools || ms.stop.Stopped() {
		return
	}
	for i, tc := range d.ToolCalls {
		idx := i
		if tc.Index != nil {
			idx = *tc.Index
		}
		ms.toolFragment(idx, tc)
	}
}

// text streams t into the open text block, opening one when needed.
func (ms *messageStream) text(t string) {
	ms.begin()
	if ms.open < 0 || !ms.openText {
		ms.startBlock(api.ResponseBlock{Type: "text", Text: new("")}, true)
	}
	ms.sse.Named("content_block_delta", api.ContentBlockDeltaEvent{Type: "content_block_delta", Index: ms.open,
		Delta: api.BlockDelta{Type: "text_delta", Text: &t}})
}

func (ms *messageStream) toolFragment(idx int, tc api.ToolCall) {
	ms.begin()
	block, ok := ms.tools[idx]
	if !ok {
		id := tc.ID
		if id == "" {
			id = toolUseID(ms.sc, idx)
		}
		block = ms.startBlock(api.ResponseBlock{Type: "tool_use", ID: id, Name: tc.Function.Name, Input: []byte(`{}`)}, false)
		ms.tools[idx] = block
	}
	if a := tc.Function.Arguments; a != "" {
		ms.sse.Named("content_block_delta", api.ContentBlockDeltaEvent{Type: "content_block_delta", Index: block,
			Delta: api.BlockDelta{Type: "input_json_delta", PartialJSON: &a}})
	}
}

func (ms *messageStream) startBlock(b api.ResponseBlock, text bool) int {
	ms.closeBlock()
	ms.open, ms.openText = ms.blocks, text
	ms.blocks++
	ms.sse.Named("content_block_start", api.ContentBlockStartEvent{Type: "content_block_start", Index: ms.open, ContentBlock: b})
	return ms.open
}

func (ms *messageStream) closeBlock() {
	if ms.open >= 0 {
		ms.sse.Named("content_block_stop", api.ContentBlockStopEvent{Type: "content_block_stop", Index: ms.open})
		ms.open = -1
	}
}

// finish sends what was held back, closes the last block and ends the message.
func (ms *messageStream) finish(res *llm.Result) {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	ms.begin()
	if t := ms.stop.Flush(); t != "" {
		ms.text(t)
	}
	if ms.stop.Stopped() {
		res.ToolCalls = nil
	}
	if ms.holdTools || len(ms.tools) == 0 {
		// Held back, or a backend that did not stream its calls: sent whole.
		for i, tc := range res.ToolCalls {
			ms.toolFragment(i, tc)
		}
	}
	if ms.blocks == 0 {
		ms.startBlock(api.ResponseBlock{Type: "text", Text: new("")}, true)
	}
	ms.closeBlock()
	reason := stopReason(res, ms.stop.Hit())
	var seq *string
	if h := ms.stop.Hit(); h != "" {
		seq = &h
	}
	u := anthropicUsage(res.Usage)
	ms.sse.Named("message_delta", api.MessageDeltaEvent{Type: "message_delta",
		Delta: api.MessageDelta{StopReason: &reason, StopSequence: seq},
		Usage: api.AnthropicDeltaUsage{InputTokens: &u.InputTokens, OutputTokens: u.OutputTokens, CacheReadInputTokens: &u.CacheReadInputTokens},
	})
	ms.sse.Named("message_stop", api.MessageStopEvent{Type: "message_stop"})
}
