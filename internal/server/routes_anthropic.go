package server

import (
	"context"
	"fmt"
	"net/http"
	"strings"

	"github.com/aios-go/aios/api"
	"github.com/aios-go/aios/internal/kernel"
	"github.com/aios-go/aios/internal/llm"
	"github.com/aios-go/aios/internal/llm/tokenizer"
)

// routesAnthropic serves Anthropic's Messages API (/v1/messages).
func (s *Server) routesAnthropic() {
	s.mux.HandleFunc("POST /v1/messages", s.handleMessages)
	s.mux.HandleFunc("POST /v1/messages/count_tokens", s.handleCountTokens)
}

// messagesCall decodes and translates a Messages request into an LLM syscall. Keys
// (x-api-key, Authorization) and anthropic-version are accepted and not checked.
func (s *Server) messagesCall(w http.ResponseWriter, r *http.Request) (*api.MessagesRequest, kernel.LLMCall, error) {
	var req api.MessagesRequest
	if err := s.decodeBody(w, r, &req); err != nil {
		return nil, kernel.LLMCall{}, err
	}
	lreq, err := messagesToLLM(&req, s.k.DefaultModel())
	if err != nil {
		return nil, kernel.LLMCall{}, err
	}
	user := ""
	if req.Metadata != nil {
		user = req.Metadata.UserID
	}
	agent := v1Agent(r, user)
	call := kernel.LLMCall{Agent: agent, Program: r.Header.Get(api.HeaderSession), Op: "messages", Request: lreq}
	return &req, call, nil
}

func (s *Server) handleCountTokens(w http.ResponseWriter, r *http.Request) {
	var req api.MessagesRequest
	if err := s.decodeBody(w, r, &req); err != nil {
		writeAnthropicError(w, err)
		return
	}
	if req.MaxTokens == nil {
		// count_tokens takes no max_tokens; the translation wants one.
		one := 1
		req.MaxTokens = &one
	}
	lreq, err := messagesToLLM(&req, s.k.DefaultModel())
	if err != nil {
		writeAnthropicError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, api.CountTokensResponse{InputTokens: tokenizer.Prompt(lreq.Messages, lreq.Tools)})
}

func (s *Server) handleMessages(w http.ResponseWriter, r *http.Request) {
	req, call, err := s.messagesCall(w, r)
	if err != nil {
		writeAnthropicError(w, err)
		return
	}
	offer, err := s.offerTools(r, nil, &call.Request)
	if err != nil {
		writeAnthropicError(w, err)
		return
	}
	mem, err := s.memoryFor(r.Context(), r, call.Agent, call.Program, &call.Request, false, false)
	if err != nil {
		writeAnthropicError(w, err)
		return
	}
	if mem != nil && len(mem.use.Injected) > 0 {
		w.Header().Set("X-AIOS-Memory-Injected", strings.Join(mem.use.Injected, ","))
	}
	stop := newStopText(req.StopSequences)
	if req.Stream {
		s.streamMessages(w, r, call, stop, mem, offer)
		return
	}
	res, sc, err := s.loopTools(r.Context(), call, offer, notedTurn(s.k.CallLLM))
	if err != nil {
		writeAnthropicError(w, err)
		return
	}
	res.Text = stop.cut(res.Text)
	if stop.Stopped() {
		// The model's answer ended at the stop sequence, before any call it made after.
		res.ToolCalls = nil
	}
	content, err := messageContent(res, func(i int) string { return toolUseID(sc, i) })
	if err != nil {
		writeAnthropicError(w, err)
		return
	}
	offer.headers(w)
	mem.after(r.Context(), res)
	if mem != nil && mem.use.Stored != "" {
		w.Header().Set("X-AIOS-Memory-Stored", mem.use.Stored)
	}
	reason := stopReason(res, stop.Hit())
	var seq *string
	if h := stop.Hit(); h != "" {
		seq = &h
	}
	writeJSON(w, http.StatusOK, api.MessagesResponse{
		ID: messageID(sc), Type: "message", Role: "assistant", Model: call.Request.Model,
		Content: content, StopReason: &reason, StopSequence: seq, Usage: anthropicUsage(res.Usage),
	})
}

// messageContent is a result as content blocks: its text, then one tool_use block per
// tool call. An answer with neither has one empty text block, so clients that read the
// first block's text find one.
func messageContent(res *llm.Result, id func(int) string) ([]api.ResponseBlock, error) {
	var out []api.ResponseBlock
	if res.Text != "" || len(res.ToolCalls) == 0 {
		text := res.Text
		out = append(out, api.ResponseBlock{Type: "text", Text: &text})
	}
	for i, tc := range res.ToolCalls {
		input, err := toolInput(tc)
		if err != nil {
			return nil, err
		}
		tid := tc.ID
		if tid == "" {
			tid = id(i)
		}
		out = append(out, api.ResponseBlock{Type: "tool_use", ID: tid, Name: tc.Function.Name, Input: input})
	}
	return out, nil
}

func messageID(sc *kernel.Syscall) string { return fmt.Sprintf("msg_aios_%d", sc.ID) }

// toolUseID names a tool call whose backend gave it no id.
func toolUseID(sc *kernel.Syscall, i int) string { return fmt.Sprintf("toolu_aios_%d_%d", sc.ID, i) }

// submitTurn is a turn of the tool loop that submits with a hook and waits, for
// streams: before sees each syscall before it is dispatched.
func (s *Server) submitTurn(before func(*kernel.Syscall)) turn {
	return func(ctx context.Context, call kernel.LLMCall) (*llm.Result, *kernel.Syscall, error) {
		sc, err := s.k.SubmitLLMWith(ctx, call, before)
		if err != nil {
			return nil, nil, err
		}
		out, err := sc.Wait(ctx)
		if err != nil {
			return nil, sc, err
		}
		return out.(*llm.Result), sc, nil
	}
}
