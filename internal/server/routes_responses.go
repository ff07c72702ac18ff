package server

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/aios-go/aios/api"
	"github.com/aios-go/aios/internal/kernel"
	"github.com/aios-go/aios/internal/llm"
	"github.com/aios-go/aios/internal/respstore"
)

// OpenAI's Responses API (docs/responses.md): a request is translated onto the kernel's
// one call shape (responses_translate.go) and run as an LLM syscall like a chat
// completion, so every backend serves it and it is scheduled like any other; the result
// becomes output items, streamed as typed events (responses_stream.go). With store,
// the response and its conversation are kept (Options.Responses) for
// previous_response_id and GET/DELETE, private to the agent that created them.

// ResponseStore keeps stored responses; respstore.Store is the kernel's. Get and Delete
// answer caller_not_found for an id the agent does not hold.
type ResponseStore interface {
	Put(ctx context.Context, rec respstore.Record) error
	Get(ctx context.Context, agent, id string) (respstore.Record, error)
	Delete(ctx context.Context, agent, id string) error
}

func (s *Server) routesResponses() {
	s.mux.HandleFunc("POST /v1/responses", s.handleResponses)
	s.mux.HandleFunc("GET /v1/responses/{id}", s.handleGetResponse)
	s.mux.HandleFunc("DELETE /v1/responses/{id}", s.handleDeleteResponse)
	s.mux.HandleFunc("GET /v1/responses/{id}/input_items", s.handleResponseInputItems)
}

// newResponseID makes an id such as resp_<32 hex>: random, so ids stay unique across
// restarts of a kernel whose store outlives them.
func newResponseID(prefix string) string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return prefix + "_" + hex.EncodeToString(b)
}

// v1Agent is the caller of a /v1 request: X-AIOS-Agent, else the body's user field
// (OpenAI's user, Anthropic's metadata.user_id), else anonymous.
func v1Agent(r *http.Request, user string) string {
	if a := r.Header.Get(api.HeaderAgent); a != "" {
		return a
	}
	if user != "" {
		return user
	}
	return "anonymous"
}

// writeResponsesError writes err in OpenAI's error shape, naming the parameter at fault
// when there is one.
func writeResponsesError(w http.ResponseWriter, err error) {
	k := api.KindOf(err)
	var ae *api.Error
	if errors.As(err, &ae) && ae.RetryAfter > 0 {
		w.Header().Set("Retry-After", fmt.Sprint(int(ae.RetryAfter.Seconds()+0.999)))
	}
	msg := errorMessage(err)
	base := openAIErrorBody(k, msg)
	body := api.ResponsesErrorBody{Error: api.ResponsesErrorDetail{Message: msg, Type: base.Error.Type, Code: base.Error.Code}, Detail: msg}
	var pe *paramError
	if errors.As(err, &pe) {
		param := pe.param
		body.Error.Param = &param
		if pe.code != "" {
			body.Error.Code = pe.code
		}
	}
	writeJSON(w, k.HTTPStatus(), body)
}

// noStore is the answer when responses cannot be stored: the storage module is off.
func noStore(param string) error {
	return &paramError{param: param, err: api.Errorf(api.PolicyNotEnabled,
		"stored responses need the storage module, which is not enabled in this kernel; send the whole conversation as input instead of previous_response_id")}
}

func (s *Server) handleResponses(w http.ResponseWriter, r *http.Request) {
	var body json.RawMessage
	if err := s.decodeBody(w, r, &body); err != nil {
		writeResponsesError(w, err)
		return
	}
	var req api.ResponsesRequest
	if err := decodeResponsesRequest(body, &req); err != nil {
		writeResponsesError(w, err)
		return
	}
	agent := v1Agent(r, req.User)
	var prior []api.Message
	if req.PreviousResponseID != nil && *req.PreviousResponseID != "" {
		prev, err := s.previousResponse(r.Context(), agent, *req.PreviousResponseID)
		if err != nil {
			writeResponsesError(w, err)
			return
		}
		prior = prev.Messages
	}
	t, err := translateResponses(&req, prior, newResponseID)
	if err != nil {
		writeResponsesError(w, err)
		return
	}
	model := req.Model
	if model == "" {
		model = s.k.DefaultModel()
	}
	conv := append(prior[:len(prior):len(prior)], t.turn...)
	lreq := llm.Request{
		Model: model, Messages: append(append([]api.Message(nil), t.system...), conv...),
		Tools: t.tools, ToolChoice: t.choice, Temperature: req.Temperature, ResponseFormat: t.format,
	}
	if req.MaxOutputTokens != nil {
		lreq.MaxTokens = *req.MaxOutputTokens
	}
	call := kernel.LLMCall{Agent: agent, Program: r.Header.Get(api.HeaderSession), Op: "responses", Request: lreq}
	if req.Priority != nil {
		call.Priority = *req.Priority
	}
	offer, err := s.offerTools(r, req.KernelTools, &call.Request)
	if err == nil {
		err = t.checkChoice(call.Request.Tools)
	}
	if err != nil {
		writeResponsesError(w, err)
		return
	}
	mem, err := s.memoryFor(r.Context(), r, call.Agent, call.Program, &call.Request, false, false)
	if err != nil {
		writeResponsesError(w, err)
		return
	}
	if mem != nil && len(mem.use.Injected) > 0 {
		w.Header().Set("X-AIOS-Memory-Injected", strings.Join(mem.use.Injected, ","))
	}

	var sse *sseWriter
	if req.Stream {
		sse = newSSEWriter(w)
		defer sse.Close()
	}
	out := newRespOutput(sse, s.responseShell(&req, model), offer != nil, newResponseID)
	if req.Stream {
		call.Emit = out.Delta
	}
	res, _, err := s.loopTools(r.Context(), call, offer, notedTurn(s.k.CallLLM))
	if err != nil {
		if out.Started() {
			out.Fail(string(api.KindOf(err)), errorMessage(err))
			return
		}
		writeResponsesError(w, err)
		return
	}
	final := out.Finish(res)
	mem.after(r.Context(), res)
	if final.Store {
		if err := s.storeResponse(r.Context(), agent, final, conv, t.input); err != nil {
			// The answer is good; only keeping it failed. Say so in the response rather
			// than lose the answer.
			s.log.Warn("storing a response failed", "agent", agent, "id", final.ID, "error", err)
			final.Store = false
		}
	}
	if req.Stream {
		out.Complete(final)
		return
	}
	offer.headers(w)
	if mem != nil && mem.use.Stored != "" {
		w.Header().Set("X-AIOS-Memory-Stored", mem.use.Stored)
	}
	writeJSON(w, http.StatusOK, final)
}

// responseShell is the response before its output: its id and the request's settings,
// echoed as OpenAI echoes them. Store says whether it will be kept: asked (the
// default) and a store configured.
func (s *Server) responseShell(req *api.ResponsesRequest, model string) api.Response {
	resp := api.Response{
		ID: newResponseID("resp"), Object: "response", CreatedAt: time.Now().Unix(), Model: model,
		Instructions: req.Instructions, MaxOutputTokens: req.MaxOutputTokens, ParallelToolCalls: true,
		PreviousResponseID: req.PreviousResponseID, Store: (req.Store == nil || *req.Store) && s.opts.Responses != nil,
		Temperature: req.Temperature, TopP: req.TopP, ToolChoice: json.RawMessage(`"auto"`),
		Tools: req.Tools, Truncation: "disabled", Metadata: req.Metadata,
		Text: api.ResponseTextConfig{Format: &api.ResponseTextFormat{Type: "text"}},
	}
	if req.ParallelToolCalls != nil {
		resp.ParallelToolCalls = *req.ParallelToolCalls
	}
	if isSet(req.ToolChoice) {
		resp.ToolChoice = req.ToolChoice
	}
	if resp.Tools == nil {
		resp.Tools = []api.ResponseTool{}
	}
	if resp.Metadata == nil {
		resp.Metadata = map[string]string{}
	}
	if req.Truncation != nil && *req.Truncation != "" {
		resp.Truncation = *req.Truncation
	}
	if req.Text != nil && req.Text.Format != nil {
		resp.Text = *req.Text
	}
	if req.User != "" {
		resp.User = &req.User
	}
	return resp
}

// previousResponse reads the response a request continues.
func (s *Server) previousResponse(ctx context.Context, agent, id string) (respstore.Record, error) {
	if s.opts.Responses == nil {
		return respstore.Record{}, noStore("previous_response_id")
	}
	rec, err := s.opts.Responses.Get(ctx, agent, id)
	if api.KindOf(err) == api.CallerNotFound {
		return rec, &paramError{param: "previous_response_id", code: "previous_response_not_found",
			err: api.Errorf(api.CallerNotFound, "previous response with id %q not found (responses are kept only with store: true, and only for the agent that created them)", id)}
	}
	return rec, err
}

// storeResponse keeps final with the conversation through it: conv and the reply.
func (s *Server) storeResponse(ctx context.Context, agent string, final api.Response, conv []api.Message, input []api.ResponseItem) error {
	reply := api.Message{Role: "assistant"}
	var text strings.Builder
	for _, it := range final.Output {
		switch it.Type {
		case "message":
			for _, c := range it.Content {
				text.WriteString(c.Text)
			}
		case "function_call":
			reply.ToolCalls = append(reply.ToolCalls, api.ToolCall{ID: it.CallID, Type: "function",
				Function: api.FunctionCall{Name: it.Name, Arguments: it.Arguments}})
		}
	}
	reply.Content = api.Content(text.String())
	if input == nil {
		input = []api.ResponseItem{}
	}
	in, err := json.Marshal(input)
	if err != nil {
		return err
	}
	body, err := json.Marshal(final)
	if err != nil {
		return err
	}
	msgs := append(conv[:len(conv):len(conv)], reply)
	// The client may go away once it has its answer; the record is still written whole.
	return s.opts.Responses.Put(context.WithoutCancel(ctx), respstore.Record{ID: final.ID, Agent: agent,
		CreatedAt: final.CreatedAt, Messages: msgs, Input: in, Response: body})
}

// storedResponse reads the response named in the path, for its agent.
func (s *Server) storedResponse(r *http.Request) (respstore.Record, error) {
	if s.opts.Responses == nil {
		return respstore.Record{}, noStore("response_id")
	}
	rec, err := s.opts.Responses.Get(r.Context(), v1Agent(r, ""), r.PathValue("id"))
	return rec, pathNotFound(err)
}

// pathNotFound names the path's response id as the parameter of a not-found error.
func pathNotFound(err error) error {
	var ae *api.Error
	if errors.As(err, &ae) && ae.Kind == api.CallerNotFound {
		return &paramError{param: "response_id", err: ae}
	}
	return err
}

func (s *Server) handleGetResponse(w http.ResponseWriter, r *http.Request) {
	if v := r.URL.Query().Get("stream"); v != "" && v != "false" {
		writeResponsesError(w, badParam("stream", "replaying a stored response as a stream is not supported; GET it without stream"))
		return
	}
	rec, err := s.storedResponse(r)
	if err != nil {
		writeResponsesError(w, err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(append(rec.Response, '\n'))
}

func (s *Server) handleDeleteResponse(w http.ResponseWriter, r *http.Request) {
	if s.opts.Responses == nil {
		writeResponsesError(w, noStore("response_id"))
		return
	}
	id := r.PathValue("id")
	if err := s.opts.Responses.Delete(r.Context(), v1Agent(r, ""), id); err != nil {
		writeResponsesError(w, pathNotFound(err))
		return
	}
	writeJSON(w, http.StatusOK, api.ResponseDeleted{ID: id, Object: "response.deleted", Deleted: true})
}

// handleResponseInputItems lists a stored response's input items, newest first unless
// order=asc, limit (1-100, default 20) at a time after the item id in after.
func (s *Server) handleResponseInputItems(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	order := q.Get("order")
	if order == "" {
		order = "desc"
	}
	if order != "asc" && order != "desc" {
		writeResponsesError(w, badParam("order", "order must be asc or desc, got %q", order))
		return
	}
	limit := 20
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 100 {
			writeResponsesError(w, badParam("limit", "limit must be a whole number from 1 to 100, got %q", v))
			return
		}
		limit = n
	}
	rec, err := s.storedResponse(r)
	if err != nil {
		writeResponsesError(w, err)
		return
	}
	var items []json.RawMessage
	if err := json.Unmarshal(rec.Input, &items); err != nil {
		writeResponsesError(w, api.Wrap(api.KernelInternal, err, "the stored input of %s is damaged", rec.ID))
		return
	}
	if order == "desc" {
		for i, j := 0, len(items)-1; i < j; i, j = i+1, j-1 {
			items[i], items[j] = items[j], items[i]
		}
	}
	if after := q.Get("after"); after != "" {
		found := false
		for i, it := range items {
			if itemID(it) == after {
				items, found = items[i+1:], true
				break
			}
		}
		if !found {
			writeResponsesError(w, badParam("after", "after names item %q, which is not among the input items of %s", after, rec.ID))
			return
		}
	}
	list := api.ResponseItemList{Object: "list", Data: items, HasMore: len(items) > limit}
	if len(items) > limit {
		list.Data = items[:limit]
	}
	if list.Data == nil {
		list.Data = []json.RawMessage{}
	}
	if n := len(list.Data); n > 0 {
		list.FirstID, list.LastID = itemID(list.Data[0]), itemID(list.Data[n-1])
	}
	writeJSON(w, http.StatusOK, list)
}

func itemID(raw json.RawMessage) string {
	var head struct {
		ID string `json:"id"`
	}
	_ = json.Unmarshal(raw, &head)
	return head.ID
}
