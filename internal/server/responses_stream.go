package server

import (
	"encoding/json"
	"sync"
	"time"

	"github.com/aios-go/aios/api"
	"github.com/aios-go/aios/internal/llm"
)

// respOutput builds a response's output items from an LLM call's deltas and result.
// When it streams, each change also goes out as the Responses API's typed events, in
// the order the openai SDK's accumulator checks: response.created first, an item added
// before its parts and deltas, every item done before response.completed, whose output
// repeats the items with the same ids. The non-streaming path runs the same code with
// no writer, so both answer with the same output for the same result.
type respOutput struct {
	mu      sync.Mutex
	sse     *sseWriter // nil when not streaming
	started bool
	seq     int
	resp    api.Response // the response in progress: ids and echoed settings
	items   []*outItem
	text    *outItem         // the message item text deltas go to, while open
	calls   map[int]*outItem // function_call items by the index of their deltas
	// holdCalls keeps tool-call deltas back: with kernel tools offered, only the last
	// turn's calls (the client's) are output, whole, at the end.
	holdCalls bool
	newID     func(prefix string) string
}

type outItem struct {
	index int
	item  api.ResponseItem
}

func newRespOutput(sse *sseWriter, resp api.Response, holdCalls bool, newID func(string) string) *respOutput {
	resp.Status = "in_progress"
	resp.Output = []api.ResponseItem{}
	return &respOutput{sse: sse, resp: resp, calls: map[int]*outItem{}, holdCalls: holdCalls, newID: newID}
}

func (o *respOutput) next() int {
	n := o.seq
	o.seq++
	return n
}

// send writes one event when streaming.
func (o *respOutput) send(typ string, ev any) {
	if o.sse != nil {
		o.sse.Named(typ, ev)
	}
}

// startLocked sends the headers and the opening events once. Headers wait for the
// first output, so a call that fails before any still gets an HTTP error status.
func (o *respOutput) startLocked() {
	if o.started {
		return
	}
	o.started = true
	if o.sse == nil {
		return
	}
	o.sse.Begin(nil)
	for _, typ := range []string{"response.created", "response.in_progress"} {
		snap := o.resp
		o.send(typ, api.ResponseLifecycleEvent{Type: typ, SequenceNumber: o.next(), Response: &snap})
	}
}

// Started reports whether the event stream began.
func (o *respOutput) Started() bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.started && o.sse != nil
}

// Delta takes one streamed piece of the call.
func (o *respOutput) Delta(d llm.Delta) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if d.Text != "" {
		o.startLocked()
		o.textLocked(d.Text)
	}
	if o.holdCalls {
		return
	}
	for i, tc := range d.ToolCalls {
		idx := i
		if tc.Index != nil {
			idx = *tc.Index
		}
		o.startLocked()
		it := o.calls[idx]
		if it == nil {
			it = o.openCallLocked(tc.ID, tc.Function.Name)
			o.calls[idx] = it
		} else if it.item.Name == "" && tc.Function.Name != "" {
			it.item.Name = tc.Function.Name
		}
		o.argsLocked(it, tc.Function.Arguments)
	}
}

func (o *respOutput) textLocked(s string) {
	if o.text == nil {
		it := &outItem{index: len(o.items), item: api.ResponseItem{Type: "message", ID: o.newID("msg"), Status: "in_progress", Role: "assistant"}}
		o.items = append(o.items, it)
		o.text = it
		o.send("response.output_item.added", api.ResponseOutputItemEvent{Type: "response.output_item.added", SequenceNumber: o.next(),
			OutputIndex: it.index, Item: it.item})
		it.item.Content = []api.ResponseContent{{Type: "output_text"}}
		o.send("response.content_part.added", api.ResponseContentPartEvent{Type: "response.content_part.added", SequenceNumber: o.next(),
			ItemID: it.item.ID, OutputIndex: it.index, Part: api.ResponseContent{Type: "output_text"}})
	}
	it := o.text
	if s == "" {
		return
	}
	it.item.Content[0].Text += s
	o.send("response.output_text.delta", api.ResponseTextEvent{Type: "response.output_text.delta", SequenceNumber: o.next(),
		ItemID: it.item.ID, OutputIndex: it.index, Delta: &s, Logprobs: noLogprobs})
}

// noLogprobs is the logprobs of every text event: the kernel reports none.
var noLogprobs = []json.RawMessage{}

func (o *respOutput) closeTextLocked(status string) {
	it := o.text
	if it == nil {
		return
	}
	o.text = nil
	part := it.item.Content[0]
	o.send("response.output_text.done", api.ResponseTextEvent{Type: "response.output_text.done", SequenceNumber: o.next(),
		ItemID: it.item.ID, OutputIndex: it.index, Text: &part.Text, Logprobs: noLogprobs})
	o.send("response.content_part.done", api.ResponseContentPartEvent{Type: "response.content_part.done", SequenceNumber: o.next(),
		ItemID: it.item.ID, OutputIndex: it.index, Part: part})
	it.item.Status = status
	o.send("response.output_item.done", api.ResponseOutputItemEvent{Type: "response.output_item.done", SequenceNumber: o.next(),
		OutputIndex: it.index, Item: it.item})
}

// openCallLocked adds a function_call item. Its call_id is the backend's tool call id,
// or a new one when the backend gave none; it never changes after this event.
func (o *respOutput) openCallLocked(callID, name string) *outItem {
	o.closeTextLocked("completed")
	if callID == "" {
		callID = o.newID("call")
	}
	it := &outItem{index: len(o.items), item: api.ResponseItem{Type: "function_call", ID: o.newID("fc"), Status: "in_progress",
		CallID: callID, Name: name}}
	o.items = append(o.items, it)
	o.send("response.output_item.added", api.ResponseOutputItemEvent{Type: "response.output_item.added", SequenceNumber: o.next(),
		OutputIndex: it.index, Item: it.item})
	return it
}

func (o *respOutput) argsLocked(it *outItem, s string) {
	if s == "" {
		return
	}
	it.item.Arguments += s
	o.send("response.function_call_arguments.delta", api.ResponseArgumentsEvent{Type: "response.function_call_arguments.delta",
		SequenceNumber: o.next(), ItemID: it.item.ID, OutputIndex: it.index, Delta: &s})
}

func (o *respOutput) closeCallLocked(it *outItem) {
	if it.item.Status != "in_progress" {
		return
	}
	args := it.item.Arguments
	o.send("response.function_call_arguments.done", api.ResponseArgumentsEvent{Type: "response.function_call_arguments.done",
		SequenceNumber: o.next(), ItemID: it.item.ID, OutputIndex: it.index, Arguments: &args})
	it.item.Status = "completed"
	o.send("response.output_item.done", api.ResponseOutputItemEvent{Type: "response.output_item.done", SequenceNumber: o.next(),
		OutputIndex: it.index, Item: it.item})
}

// Finish completes the output from the call's result and returns the final response.
// What streamed stays as the client saw it; what the result holds beyond it (a
// backend that did not stream, tool calls held back) is output now. The result's tool
// calls get the call_ids their items carry, so the stored conversation matches what a
// function_call_output will answer. The terminal event is sent by Complete.
func (o *respOutput) Finish(res *llm.Result) api.Response {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.startLocked()
	status := "completed"
	if res.FinishReason == "length" && len(res.ToolCalls) == 0 {
		status = "incomplete"
	}
	streamedText := false
	for _, it := range o.items {
		streamedText = streamedText || it.item.Type == "message"
	}
	if !streamedText && res.Text != "" {
		o.textLocked(res.Text)
	}
	for i := range res.ToolCalls {
		tc := &res.ToolCalls[i]
		it := o.calls[i]
		if o.holdCalls || it == nil {
			it = o.openCallLocked(tc.ID, tc.Function.Name)
			o.calls[i] = it
			o.argsLocked(it, tc.Function.Arguments)
		} else if tc.Function.Arguments != "" {
			it.item.Arguments = tc.Function.Arguments
		}
		tc.ID = it.item.CallID
		if tc.Type == "" {
			tc.Type = "function"
		}
		tc.Index = nil
	}
	if len(o.items) == 0 {
		o.textLocked("") // an answer of nothing is still a message
	}
	msgStatus := "completed"
	if status == "incomplete" {
		msgStatus = "incomplete"
	}
	o.closeTextLocked(msgStatus)
	for _, it := range o.items {
		if it.item.Type == "function_call" {
			o.closeCallLocked(it)
		}
	}
	out := o.resp
	out.Status = status
	if status == "incomplete" {
		out.IncompleteDetails = &api.IncompleteDetails{Reason: "max_output_tokens"}
	}
	now := time.Now().Unix()
	out.CompletedAt = &now
	out.Output = make([]api.ResponseItem, len(o.items))
	for i, it := range o.items {
		out.Output[i] = it.item
	}
	u := responseUsage(res.Usage)
	out.Usage = &u
	return out
}

// Complete sends the terminal event with the final response.
func (o *respOutput) Complete(final api.Response) {
	o.mu.Lock()
	defer o.mu.Unlock()
	typ := "response.completed"
	if final.Status == "incomplete" {
		typ = "response.incomplete"
	}
	o.send(typ, api.ResponseLifecycleEvent{Type: typ, SequenceNumber: o.next(), Response: &final})
}

// Fail ends a stream that already began: response.failed with what was output so far,
// then an error event, which the SDKs raise, so the client never takes a truncated
// answer for a whole one.
func (o *respOutput) Fail(code, msg string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	out := o.resp
	out.Status = "failed"
	out.Error = &api.ResponseError{Code: failCode(code), Message: msg}
	out.Output = make([]api.ResponseItem, len(o.items))
	for i, it := range o.items {
		out.Output[i] = it.item
	}
	o.send("response.failed", api.ResponseLifecycleEvent{Type: "response.failed", SequenceNumber: o.next(), Response: &out})
	o.send("error", api.ResponseErrorEvent{Type: "error", SequenceNumber: o.next(), Code: &code, Message: msg})
}

func responseUsage(u api.Usage) api.ResponseUsage {
	out := api.ResponseUsage{InputTokens: u.PromptTokens, OutputTokens: u.CompletionTokens, TotalTokens: u.TotalTokens}
	if u.PromptTokensDetails != nil {
		out.InputTokensDetails.CachedTokens = u.PromptTokensDetails.CachedTokens
	}
	if out.TotalTokens == 0 {
		out.TotalTokens = out.InputTokens + out.OutputTokens
	}
	return out
}

// failCode is the Responses API's code for a failure of the given kernel kind.
func failCode(kind string) string {
	switch api.Kind(kind) {
	case api.PolicyQuota, api.BackendRateLimited:
		return "rate_limit_exceeded"
	}
	return "server_error"
}
