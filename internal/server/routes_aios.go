package server

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

	"github.com/aios-go/aios/api"
	"github.com/aios-go/aios/internal/access"
	"github.com/aios-go/aios/internal/kernel"
	"github.com/aios-go/aios/internal/llm"
	"github.com/aios-go/aios/internal/sched"
)

func (s *Server) routesAIOS() {
	s.mux.HandleFunc("POST /query", s.handleQuery)
	s.mux.HandleFunc("GET /status", s.handleStatus)
	s.mux.HandleFunc("GET /core/status", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, s.k.Status())
	})
	s.mux.HandleFunc("GET /core/llms/list", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, s.k.LLMs())
	})
	// An agent says its program (session) is finished, so working-set admission frees
	// its place at once rather than after the idle timeout.
	s.mux.HandleFunc("DELETE /sessions/{id}", func(w http.ResponseWriter, r *http.Request) {
		s.k.EndProgram(r.PathValue("id"))
		w.WriteHeader(http.StatusNoContent)
	})
}

func (s *Server) handleStatus(w http.ResponseWriter, r *http.Request) {
	st := s.k.Status()
	writeJSON(w, http.StatusOK, api.StatusResponse{Status: st.Status, Version: s.opts.Version})
}

func (s *Server) handleQuery(w http.ResponseWriter, r *http.Request) {
	var q api.QueryRequest
	if err := s.decodeBody(w, r, &q); err != nil {
		writeError(w, err)
		return
	}
	if err := callerConflict(r, q.AgentName); err != nil {
		writeError(w, err)
		return
	}
	if p, ok := access.PrincipalFrom(r.Context()); ok && p.IsAgent() {
		q.AgentName = p.Name // the key names the agent (routes_access.go)
	}
	if strings.TrimSpace(q.AgentName) == "" {
		writeError(w, api.Errorf(api.CallerBadRequest, "agent_name is required"))
		return
	}
	switch q.QueryType {
	case api.QueryLLM:
		s.queryLLM(w, r, &q)
	case api.QueryStorage:
		s.queryStorage(w, r, &q)
	case api.QueryMemory:
		s.queryMemory(w, r, &q)
	case api.QueryTool:
		s.queryTool(w, r, &q)
	case "":
		writeError(w, api.Errorf(api.CallerBadRequest, "query_type is required: one of llm, tool, storage, memory"))
	default:
		writeError(w, api.Errorf(api.CallerBadRequest, "unknown query_type %q: expected llm, tool, storage or memory", q.QueryType))
	}
}

// syscall is the one way every /query type reaches the kernel: the call runs through
// its module's queue, and render turns its outcome into the module's AIOS response
// shape. A module that is not enabled answers in that shape too, with status_code 501;
// a call the kernel refused before it became a syscall is the caller's fault (HTTP 4xx).
func (s *Server) syscall(w http.ResponseWriter, r *http.Request, call kernel.Call, render func(res any, err error) any) {
	call.Program = sessionOf(r, call.Program)
	res, sc, err := s.k.Do(r.Context(), call)
	noteSyscall(r.Context(), sc)
	if sc == nil {
		if api.KindOf(err) == api.PolicyNotEnabled {
			writeJSON(w, http.StatusOK, api.QueryResponse{Response: render(nil, err)}.Empty())
			return
		}
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, withTimings(render(res, err), sc))
}

// moduleAnswer renders storage and tool outcomes as AIOS's StorageResponse/ToolResponse:
// the result's text in response_message.
func moduleAnswer(class string) func(res any, err error) any {
	return func(res any, err error) any {
		out := api.ModuleResponse{ResponseClass: class}
		if err != nil {
			msg := errorMessage(err)
			out.Error, out.StatusCode, out.Kind = &msg, api.KindOf(err).HTTPStatus(), api.KindOf(err)
			return out
		}
		msg := fmt.Sprint(res)
		if m, ok := res.(interface{ Message() string }); ok {
			msg = m.Message()
		}
		out.ResponseMessage, out.Finished, out.StatusCode = &msg, true, http.StatusOK
		return out
	}
}

// memoryAnswer renders memory outcomes as AIOS's MemoryResponse.
func memoryAnswer(res any, err error) any {
	out := api.MemoryResponse{ResponseClass: api.QueryMemory}
	if err != nil {
		msg := errorMessage(err)
		out.Error, out.StatusCode = &msg, api.KindOf(err).HTTPStatus()
		return out
	}
	switch m := res.(type) {
	case *api.MemoryResponse:
		out = *m
		out.ResponseClass = api.QueryMemory
	case []api.Message: // get_conversation: one search result a message
		out.SearchResults = make([]map[string]any, len(m))
		for i, msg := range m {
			out.SearchResults[i] = map[string]any{"role": msg.Role, "content": string(msg.Content)}
		}
	}
	out.Success, out.StatusCode = true, http.StatusOK
	return out
}

func (s *Server) queryLLM(w http.ResponseWriter, r *http.Request, q *api.QueryRequest) {
	var d api.LLMQuery
	if err := decodeJSON(q.QueryData, &d, "query_data"); err != nil {
		writeError(w, err)
		return
	}
	action := d.ActionType
	if action == "" {
		action = api.ActionChat
	}
	tools, names := encodeToolNames(d.Tools)
	req := llm.Request{
		Messages:       d.Messages,
		Tools:          tools,
		Temperature:    d.Temperature,
		ResponseFormat: d.ResponseFormat,
	}
	if d.MaxNewTokens != nil {
		if *d.MaxNewTokens <= 0 {
			writeError(w, api.Errorf(api.CallerBadRequest, "max_new_tokens must be positive, got %d", *d.MaxNewTokens))
			return
		}
		req.MaxTokens = *d.MaxNewTokens
	}
	for i := range req.Messages {
		req.Messages[i].ToolCalls = encodeCallNames(req.Messages[i].ToolCalls)
	}
	switch action {
	case api.ActionChat:
	case api.ActionChatJSON:
		if req.ResponseFormat == nil {
			req.ResponseFormat = &api.ResponseFormat{Type: "json_object"}
		}
	case api.ActionChatToolCall, api.ActionCallTool:
		if len(req.Tools) == 0 {
			writeError(w, api.Errorf(api.CallerBadRequest, "action_type %s needs a non-empty tools list", action))
			return
		}
		// The action asks for tool calls as output, so the model is required to make one.
		req.ToolChoice = json.RawMessage(`"required"`)
	case api.ActionOperateFile:
		msg := "action_type operate_file is not supported by this kernel: call the storage module directly (query_type storage)"
		writeJSON(w, http.StatusOK, api.QueryResponse{Response: api.LLMResponse{
			ResponseClass: api.QueryLLM, Error: &msg, StatusCode: api.PolicyNotEnabled.HTTPStatus(),
		}}.Empty())
		return
	default:
		writeError(w, api.Errorf(api.CallerBadRequest, "unknown action_type %q: expected chat, chat_with_json_output, chat_with_tool_call_output, call_tool or operate_file", action))
		return
	}
	if m, err := s.pickModel(d.LLMs); err != nil {
		writeError(w, err)
		return
	} else {
		req.Model = m
	}
	call := kernel.LLMCall{Agent: q.AgentName, Program: sessionOf(r, d.Session), Op: action, Request: req}
	if d.Priority != nil {
		call.Priority = *d.Priority
	}
	mem, err := s.memoryFor(r.Context(), r, call.Agent, call.Program, &call.Request, d.Memory, d.ManagedContext)
	if err != nil {
		writeError(w, err)
		return
	}
	reqCtx := r.Context()
	render := func(res any, err error) any {
		out := api.LLMResponse{ResponseClass: api.QueryLLM}
		if err != nil {
			msg := errorMessage(err)
			out.Error = &msg
			out.StatusCode = api.KindOf(err).HTTPStatus()
			out.Kind = api.KindOf(err)
			return out
		}
		r := res.(*llm.Result)
		mem.after(reqCtx, r)
		out.Memory = mem.usage()
		out.Finished = true
		out.StatusCode = http.StatusOK
		out.Usage = &r.Usage
		if len(r.ToolCalls) > 0 {
			out.ToolCalls = aiosToolCalls(r.ToolCalls, names)
		} else {
			text := r.Text
			out.ResponseMessage = &text
		}
		return out
	}
	if action != api.ActionCallTool {
		s.syscall(w, r, call.Call(), render)
		return
	}
	// call_tool: the kernel runs the calls the model made, as tool syscalls of the same
	// program, and answers with their results beside the calls.
	res, sc, err := s.k.Do(r.Context(), call.Call())
	noteSyscall(r.Context(), sc)
	if sc == nil {
		writeError(w, err)
		return
	}
	out := render(res, err).(api.LLMResponse)
	if err != nil || len(out.ToolCalls) == 0 {
		writeJSON(w, http.StatusOK, withTimings(out, sc))
		return
	}
	reqs := make([]api.ToolCallRequest, len(out.ToolCalls))
	for i, c := range out.ToolCalls {
		params, _ := json.Marshal(c.Parameters)
		reqs[i] = api.ToolCallRequest{Name: c.Name, Parameters: params, ID: c.ID}
	}
	runs := s.runTools(r.Context(), call.Agent, call.Program, reqs)
	out.ToolResults, _ = results(runs)
	msg := message(runs)
	out.ResponseMessage = &msg
	writeJSON(w, http.StatusOK, multiTimings(out, sc, runs))
}

// pickModel chooses the first requested model the kernel serves, or the default.
func (s *Server) pickModel(refs []api.LLMRef) (string, error) {
	if len(refs) == 0 {
		return s.k.DefaultModel(), nil
	}
	served := s.k.Models()
	for _, ref := range refs {
		for _, m := range served {
			if m == ref.Name {
				return m, nil
			}
		}
	}
	names := make([]string, len(refs))
	for i, r := range refs {
		names[i] = r.Name
	}
	return "", api.Errorf(api.CallerNotFound, "none of the requested llms %v is served by this kernel; served models: %v", names, served)
}

func withTimings(resp any, sc *kernel.Syscall) api.QueryResponse {
	t := sc.Timings()
	start := t.Start
	if start.IsZero() {
		start = t.End
	}
	return api.QueryResponse{
		Response:        resp,
		StartTimes:      []float64{unixSeconds(start)},
		EndTimes:        []float64{unixSeconds(t.End)},
		WaitingTimes:    []float64{t.Waiting.Seconds()},
		TurnaroundTimes: []float64{t.Turnaround.Seconds()},
	}
}

func (s *Server) queryStorage(w http.ResponseWriter, r *http.Request, q *api.QueryRequest) {
	var d api.StorageQuery
	if err := decodeJSON(q.QueryData, &d, "query_data"); err != nil {
		writeError(w, err)
		return
	}
	s.syscall(w, r, kernel.Call{Agent: q.AgentName, Module: sched.Storage, Op: d.OperationType, Args: &d.Params},
		storageAnswer(r))
}

// sessionOf is the program a /query call belongs to: the session its query data names,
// else the X-AIOS-Session header, which lets a supervised agent (whose runtime gives it
// a program id) have its storage and memory queries, which carry no session field,
// scheduled and cancelled with the rest of its program. "" is the agent's default.
func sessionOf(r *http.Request, named string) string {
	if named != "" {
		return named
	}
	return r.Header.Get(api.HeaderSession)
}
