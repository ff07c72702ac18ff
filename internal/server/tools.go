package server

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/aios-go/aios/api"
	"github.com/aios-go/aios/internal/kernel"
	"github.com/aios-go/aios/internal/sched"
	"github.com/aios-go/aios/internal/tool"
)

// Tools is the kernel's tool registry as the server reads it: what /v1/tools lists and
// what the kernel's tool loop offers models.
type Tools interface {
	List() []tool.Spec
	Lookup(name string) (tool.Spec, bool)
}

// toolRun is one tool call the kernel ran (or refused) for a request.
type toolRun struct {
	name, id string
	res      tool.Result
	err      error
	took     time.Duration
	sc       *kernel.Syscall // nil when the call never became a syscall
}

// runTools runs calls as tool syscalls of one program, all submitted at once: the
// scheduler starts each as soon as its tool has a free slot, so calls of different
// tools overlap and none waits behind another tool. Outcomes keep the calls' order.
func (s *Server) runTools(ctx context.Context, agent, program string, calls []api.ToolCallRequest) []toolRun {
	runs := make([]toolRun, len(calls))
	for i, c := range calls {
		runs[i] = toolRun{name: c.Name, id: c.ID}
		args, err := toolArgs(c.Parameters)
		if err != nil {
			runs[i].err = api.Errorf(api.CallerBadRequest, "tool %s: %v", c.Name, err)
			continue
		}
		runs[i].sc, runs[i].err = s.k.Submit(ctx, kernel.Call{
			Agent: agent, Program: program, Module: sched.Tool, Op: "call",
			Resource: tool.Canonical(c.Name), Args: args,
		})
	}
	for i := range runs {
		r := &runs[i]
		if r.sc == nil {
			continue
		}
		out, err := r.sc.Wait(ctx)
		noteSyscall(ctx, r.sc)
		t := r.sc.Timings()
		if !t.Start.IsZero() {
			r.took = t.End.Sub(t.Start)
		}
		if err != nil {
			r.err = err
			continue
		}
		r.res, _ = out.(tool.Result)
	}
	return runs
}

// toolArgs accepts an arguments object, a JSON string holding one (as models emit
// arguments), or nothing (no arguments).
func toolArgs(raw json.RawMessage) (json.RawMessage, error) {
	raw = json.RawMessage(strings.TrimSpace(string(raw)))
	if len(raw) == 0 || string(raw) == "null" {
		return json.RawMessage(`{}`), nil
	}
	if raw[0] == '"' {
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return nil, err
		}
		if strings.TrimSpace(s) == "" {
			return json.RawMessage(`{}`), nil
		}
		raw = json.RawMessage(s)
	}
	if !json.Valid(raw) {
		return nil, fmt.Errorf("parameters are not valid JSON")
	}
	return raw, nil
}

// results renders runs as AIOS tool results, and says how many failed.
func results(runs []toolRun) ([]api.ToolResult, int) {
	out := make([]api.ToolResult, len(runs))
	failed := 0
	for i, r := range runs {
		tr := api.ToolResult{Name: r.name, ID: r.id, DurationMS: float64(r.took.Microseconds()) / 1000}
		if r.err != nil {
			failed++
			msg := errorMessage(r.err)
			tr.Error, tr.Kind, tr.StatusCode = &msg, api.KindOf(r.err), api.KindOf(r.err).HTTPStatus()
		} else {
			content := r.res.Content
			tr.Content, tr.IsError, tr.Truncated, tr.Structured = &content, r.res.IsError, r.res.Truncated, r.res.Structured
			tr.StatusCode = http.StatusOK
		}
		out[i] = tr
	}
	return out, failed
}

// message is what a model (or an AIOS agent) reads of runs: the one result, or each
// under a "[name]" line. A call that could not run reads as its error, so no call
// vanishes from the text.
func message(runs []toolRun) string {
	text := func(r toolRun) string {
		if r.err != nil {
			return "error: " + errorMessage(r.err)
		}
		return r.res.Content
	}
	if len(runs) == 1 {
		return text(runs[0])
	}
	var b strings.Builder
	for i, r := range runs {
		if i > 0 {
			b.WriteString("\n\n")
		}
		fmt.Fprintf(&b, "[%s]\n%s", r.name, text(r))
	}
	return b.String()
}

// toolResponse is AIOS's ToolResponse for runs: status 200 when every call ran (a tool
// reporting its own failure still ran), else the first failure's status, with every
// failure named in error.
func toolResponse(runs []toolRun) api.ToolResponse {
	res, failed := results(runs)
	out := api.ToolResponse{ModuleResponse: api.ModuleResponse{ResponseClass: api.QueryTool}, ToolResults: res}
	msg := message(runs)
	out.ResponseMessage = &msg
	if failed == 0 {
		out.Finished, out.StatusCode = true, http.StatusOK
		return out
	}
	var errs []string
	for _, r := range runs {
		if r.err != nil {
			if out.StatusCode == 0 {
				out.StatusCode, out.Kind = api.KindOf(r.err).HTTPStatus(), api.KindOf(r.err)
			}
			errs = append(errs, r.name+": "+errorMessage(r.err))
		}
	}
	e := fmt.Sprintf("%d of %d tool calls failed: %s", failed, len(runs), strings.Join(errs, "; "))
	out.Error = &e
	out.Finished = failed < len(runs)
	return out
}

// multiTimings are AIOS's timing lists with one entry per syscall: lead (the LLM call
// whose tool calls ran, or nil), then each tool call that became one.
func multiTimings(resp any, lead *kernel.Syscall, runs []toolRun) api.QueryResponse {
	q := api.QueryResponse{Response: resp}.Empty()
	scs := []*kernel.Syscall{lead}
	for _, r := range runs {
		scs = append(scs, r.sc)
	}
	for _, sc := range scs {
		if sc == nil {
			continue
		}
		t := withTimings(nil, sc)
		q.StartTimes = append(q.StartTimes, t.StartTimes...)
		q.EndTimes = append(q.EndTimes, t.EndTimes...)
		q.WaitingTimes = append(q.WaitingTimes, t.WaitingTimes...)
		q.TurnaroundTimes = append(q.TurnaroundTimes, t.TurnaroundTimes...)
	}
	return q
}

// queryTool runs every call of an AIOS tool query.
func (s *Server) queryTool(w http.ResponseWriter, r *http.Request, q *api.QueryRequest) {
	var d api.ToolQuery
	if err := decodeJSON(q.QueryData, &d, "query_data"); err != nil {
		writeError(w, err)
		return
	}
	if !s.k.Enabled(sched.Tool) {
		writeJSON(w, http.StatusOK, api.QueryResponse{Response: moduleAnswer(api.QueryTool)(nil, api.Errorf(api.PolicyNotEnabled, "the tool module is not enabled in this kernel"))}.Empty())
		return
	}
	if len(d.ToolCalls) == 0 {
		writeError(w, api.Errorf(api.CallerBadRequest, "query_data.tool_calls is required: a list of {name, parameters}"))
		return
	}
	for i, c := range d.ToolCalls {
		if strings.TrimSpace(c.Name) == "" {
			writeError(w, api.Errorf(api.CallerBadRequest, "query_data.tool_calls[%d].name is required", i))
			return
		}
	}
	runs := s.runTools(r.Context(), q.AgentName, sessionOf(r, d.Session), d.ToolCalls)
	writeJSON(w, http.StatusOK, multiTimings(toolResponse(runs), nil, runs))
}

func (s *Server) routesTools() {
	// The registry as agents and operators see it: each tool's schema, annotations (as
	// its provider states them) and source.
	s.mux.HandleFunc("GET /v1/tools", func(w http.ResponseWriter, r *http.Request) {
		if s.opts.Tools == nil {
			writeOpenAIError(w, api.Errorf(api.PolicyNotEnabled, "the tool module is not enabled in this kernel"))
			return
		}
		specs := s.opts.Tools.List()
		out := make([]api.ToolInfo, len(specs))
		for i, sp := range specs {
			ann, _ := json.Marshal(sp.Annotations)
			if string(ann) == "{}" {
				ann = nil
			}
			out[i] = api.ToolInfo{Name: sp.Name, Description: sp.Description, InputSchema: sp.InputSchema, Annotations: ann, Source: sp.Source}
		}
		writeJSON(w, http.StatusOK, map[string]any{"object": "list", "data": out})
	})
	s.mux.HandleFunc("GET /v1/tools/calls", s.toolCalls)
	s.mux.HandleFunc("GET /admin/tools", func(w http.ResponseWriter, r *http.Request) {
		if s.opts.ToolStatus == nil {
			writeError(w, api.Errorf(api.PolicyNotEnabled, "the tool module is not enabled in this kernel"))
			return
		}
		writeJSON(w, http.StatusOK, s.opts.ToolStatus())
	})
	s.routesMCP()
}
