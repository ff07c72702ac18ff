package server

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

	"github.com/aios-go/aios/api"
	"github.com/aios-go/aios/internal/kernel"
	"github.com/aios-go/aios/internal/llm"
)

func (s *Server) routesOpenAI() {
	s.mux.HandleFunc("POST /v1/chat/completions", s.handleChatCompletions)
	s.mux.HandleFunc("GET /v1/models", s.handleModels)
}

func (s *Server) handleModels(w http.ResponseWriter, r *http.Request) {
	out := api.ModelList{Object: "list", Data: []api.Model{}}
	for _, m := range s.k.Models() {
		out.Data = append(out.Data, api.Model{ID: m, Object: "model", Created: s.k.Started().Unix(), OwnedBy: "aios"})
	}
	writeJSON(w, http.StatusOK, out)
}

// writeOpenAIError writes err in OpenAI's error shape, which the official SDKs parse.
func writeOpenAIError(w http.ResponseWriter, err error) {
	k := api.KindOf(err)
	var ae *api.Error
	if e, ok := err.(*api.Error); ok && e.RetryAfter > 0 {
		ae = e
		w.Header().Set("Retry-After", fmt.Sprint(int(ae.RetryAfter.Seconds()+0.999)))
	}
	msg := errorMessage(err)
	writeJSON(w, k.HTTPStatus(), openAIErrorBody(k, msg))
}

func openAIErrorBody(k api.Kind, msg string) api.OpenAIError {
	typ := "server_error"
	switch {
	case strings.HasPrefix(string(k), "caller_"):
		typ = "invalid_request_error"
	case strings.HasPrefix(string(k), "policy_"):
		typ = "policy_error"
	case strings.HasPrefix(string(k), "backend_"):
		typ = "upstream_error"
	}
	return api.OpenAIError{Error: api.OpenAIErrorDetail{Message: msg, Type: typ, Code: string(k)}, Detail: msg}
}

func (s *Server) handleChatCompletions(w http.ResponseWriter, r *http.Request) {
	var req api.ChatCompletionRequest
	if err := s.decodeBody(w, r, &req); err != nil {
		writeOpenAIError(w, err)
		return
	}
	if req.Messages == nil {
		writeOpenAIError(w, api.Errorf(api.CallerBadRequest, "messages is required: an array of chat messages"))
		return
	}
	if err := callerConflict(r, req.User); err != nil {
		writeOpenAIError(w, err)
		return
	}
	agent := v1Agent(r, req.User)
	model := req.Model
	if model == "" {
		model = s.k.DefaultModel()
	}
	lreq := llm.Request{
		Model: model, Messages: req.Messages, Tools: req.Tools, ToolChoice: req.ToolChoice,
		Temperature: req.Temperature, ResponseFormat: req.ResponseFormat, IgnoreEOS: req.IgnoreEOS,
	}
	switch {
	case req.MaxCompletionTokens != nil:
		lreq.MaxTokens = *req.MaxCompletionTokens
	case req.MaxTokens != nil:
		lreq.MaxTokens = *req.MaxTokens
	}
	if lreq.MaxTokens < 0 {
		writeOpenAIError(w, api.Errorf(api.CallerBadRequest, "max_tokens must be positive, got %d", lreq.MaxTokens))
		return
	}
	call := kernel.LLMCall{
		Agent: agent, Program: r.Header.Get(api.HeaderSession), Op: "chat.completions", Request: lreq,
	}
	if req.Priority != nil {
		call.Priority = *req.Priority
	}
	offer, err := s.offerTools(r, req.KernelTools, &call.Request)
	if err != nil {
		writeOpenAIError(w, err)
		return
	}
	mem, err := s.memoryFor(r.Context(), r, call.Agent, call.Program, &call.Request, false, false)
	if err != nil {
		writeOpenAIError(w, err)
		return
	}
	if mem != nil && len(mem.use.Injected) > 0 {
		w.Header().Set("X-AIOS-Memory-Injected", strings.Join(mem.use.Injected, ","))
	}
	if req.Stream {
		s.streamChat(w, r, call, req.StreamOptions != nil && req.StreamOptions.IncludeUsage, mem, offer)
		return
	}
	res, sc, err := s.loopTools(r.Context(), call, offer, notedTurn(s.k.CallLLM))
	if err != nil {
		writeOpenAIError(w, err)
		return
	}
	offer.headers(w)
	mem.after(r.Context(), res)
	if mem != nil && mem.use.Stored != "" {
		w.Header().Set("X-AIOS-Memory-Stored", mem.use.Stored)
	}
	msg := api.Message{Role: "assistant", Content: api.Content(res.Text)}
	if len(res.ToolCalls) > 0 {
		msg.ToolCalls = res.ToolCalls
		for i := range msg.ToolCalls {
			msg.ToolCalls[i].Index = nil
			if msg.ToolCalls[i].Type == "" {
				msg.ToolCalls[i].Type = "function"
			}
		}
	}
	usage := res.Usage
	writeJSON(w, http.StatusOK, chatCompletion{
		ID: completionID(sc), Object: "chat.completion", Created: sc.Arrival().Unix(), Model: model,
		Choices: []chatChoice{{Index: 0, Message: assistantMessage(msg), FinishReason: finishReason(res)}},
		Usage:   &usage,
	})
}

// streamChat answers with server-sent events as the syscall streams. Headers are sent
// with the first delta, so a call that fails before producing anything still gets a
// proper HTTP error status.
//
// With kernel tools offered, every turn's text streams as it comes, but tool calls are
// held back: the kernel runs its own, and only a final turn's calls of the client's
// tools are sent, whole, at the end.
func (s *Server) streamChat(w http.ResponseWriter, r *http.Request, call kernel.LLMCall, includeUsage bool, mem *memoryRun, offer *toolOffer) {
	sse := newSSEWriter(w)
	defer sse.Close()
	model := call.Request.Model
	var id string
	var created int64
	first := func() {
		sse.eventLocked(chunk(id, created, model, api.Delta{Role: "assistant", Content: new("")}, nil))
	}
	call.Emit = func(d llm.Delta) {
		sse.Begin(first)
		if d.Text != "" {
			text := d.Text
			sse.Event(chunk(id, created, model, api.Delta{Content: &text}, nil))
		}
		if len(d.ToolCalls) > 0 && offer == nil {
			tcs := make([]api.ToolCall, len(d.ToolCalls))
			for i, tc := range d.ToolCalls {
				if tc.Index == nil {
					tc.Index = new(i)
				}
				tcs[i] = tc
			}
			sse.Event(chunk(id, created, model, api.Delta{ToolCalls: tcs}, nil))
		}
	}
	// id and created are written before the syscall exists and read by Emit only after
	// it was dispatched, which the kernel's lock orders.
	// Later turns of a tool loop keep the first turn's id.
	do := func(ctx context.Context, call kernel.LLMCall) (*llm.Result, *kernel.Syscall, error) {
		sc, err := s.k.SubmitLLMWith(ctx, call, func(sc *kernel.Syscall) {
			if id == "" {
				id, created = completionID(sc), sc.Arrival().Unix()
			}
		})
		if err != nil {
			return nil, nil, err
		}
		out, err := sc.Wait(ctx)
		if err != nil {
			return nil, sc, err
		}
		return out.(*llm.Result), sc, nil
	}
	res, _, err := s.loopTools(r.Context(), call, offer, notedTurn(do))
	if err != nil {
		if !sse.Started() {
			writeOpenAIError(w, err)
			return
		}
		// Mid-stream failure: OpenAI's SDKs raise an error event's payload, so the agent
		// learns the answer is incomplete instead of reading a silent truncation.
		sse.Event(openAIErrorBody(api.KindOf(err), errorMessage(err)))
		return
	}
	mem.after(r.Context(), res)
	sse.Begin(first)
	if offer != nil && len(res.ToolCalls) > 0 {
		tcs := make([]api.ToolCall, len(res.ToolCalls))
		for i, tc := range res.ToolCalls {
			tc.Index = new(i)
			if tc.Type == "" {
				tc.Type = "function"
			}
			tcs[i] = tc
		}
		sse.Event(chunk(id, created, model, api.Delta{ToolCalls: tcs}, nil))
	}
	fr := finishReason(res)
	sse.Event(chunk(id, created, model, api.Delta{}, &fr))
	if includeUsage {
		u := res.Usage
		sse.Event(api.ChatCompletionChunk{ID: id, Object: "chat.completion.chunk", Created: created,
			Model: model, Choices: []api.ChunkChoice{}, Usage: &u})
	}
	sse.Event("[DONE]")
}

func chunk(id string, created int64, model string, d api.Delta, finish *string) api.ChatCompletionChunk {
	return api.ChatCompletionChunk{
		ID: id, Object: "chat.completion.chunk", Created: created, Model: model,
		Choices: []api.ChunkChoice{{Index: 0, Delta: d, FinishReason: finish}},
	}
}

func completionID(sc *kernel.Syscall) string { return fmt.Sprintf("chatcmpl-aios-%d", sc.ID) }

func finishReason(res *llm.Result) string {
	switch {
	case len(res.ToolCalls) > 0:
		return "tool_calls"
	case res.FinishReason != "":
		return res.FinishReason
	}
	return "stop"
}

// The non-streaming response spells content as null when the answer is only tool calls,
// as OpenAI does; api.Message always writes a string, so the reply has its own shape.
type chatCompletion struct {
	ID      string       `json:"id"`
	Object  string       `json:"object"`
	Created int64        `json:"created"`
	Model   string       `json:"model"`
	Choices []chatChoice `json:"choices"`
	Usage   *api.Usage   `json:"usage,omitempty"`
}

type chatChoice struct {
	Index        int              `json:"index"`
	Message      replyMessage     `json:"message"`
	FinishReason string           `json:"finish_reason"`
	Logprobs     *json.RawMessage `json:"logprobs"`
}

type replyMessage struct {
	Role      string         `json:"role"`
	Content   *string        `json:"content"`
	ToolCalls []api.ToolCall `json:"tool_calls,omitempty"`
}

func assistantMessage(m api.Message) replyMessage {
	out := replyMessage{Role: m.Role, ToolCalls: m.ToolCalls}
	if len(m.ToolCalls) == 0 || m.Content != "" {
		c := string(m.Content)
		out.Content = &c
	}
	return out
}
