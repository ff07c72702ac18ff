package server

import (
	"context"
	"net/http"
	"strconv"
	"time"

	"github.com/aios-go/aios/api"
)

// AgentRuntime runs agents as supervised processes (internal/agents.Runtime).
type AgentRuntime interface {
	Submit(req api.AgentSubmit) (api.AgentRun, error)
	Get(id int64) (api.AgentRun, bool)
	List() []api.AgentRun
	Logs(id int64, tail int) (api.AgentLogs, bool)
	Cancel(ctx context.Context, id int64) (api.AgentRun, error)
}

// cancelWait bounds how long a cancel request waits for the agent to be gone: past
// SIGTERM's grace the runtime sends SIGKILL, so this is enough unless the machine is
// stuck, and then the answer says the run is still stopping.
const cancelWait = 15 * time.Second

// routesAgents serves AIOS's agent routes in AIOS's shapes (POST /agents/submit,
// GET /agents/{execution_id}/status, GET /agents/ps), and the runtime's logs and cancel.
func (s *Server) routesAgents() {
	s.mux.HandleFunc("POST /agents/submit", s.agentSubmit)
	s.mux.HandleFunc("GET /agents/ps", s.agents(func(w http.ResponseWriter, r *http.Request, rt AgentRuntime) {
		runs := rt.List()
		out := api.AgentList{Status: "success", Processes: make([]api.AgentStatus, len(runs))}
		for i, run := range runs {
			out.Processes[i] = agentStatus(run)
		}
		writeJSON(w, http.StatusOK, out)
	}))
	s.mux.HandleFunc("GET /agents/{id}/status", s.agentRun(func(w http.ResponseWriter, r *http.Request, rt AgentRuntime, id int64) {
		run, ok := rt.Get(id)
		if !ok {
			writeError(w, api.Errorf(api.CallerNotFound, "no agent run with execution_id %d", id))
			return
		}
		writeJSON(w, http.StatusOK, agentStatus(run))
	}))
	s.mux.HandleFunc("GET /agents/{id}/logs", s.agentRun(func(w http.ResponseWriter, r *http.Request, rt AgentRuntime, id int64) {
		tail := 0
		if v := r.URL.Query().Get("tail"); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 {
				writeError(w, api.Errorf(api.CallerBadRequest, "tail must be a number of lines, got %q", v))
				return
			}
			tail = n
		}
		logs, ok := rt.Logs(id, tail)
		if !ok {
			writeError(w, api.Errorf(api.CallerNotFound, "no agent run with execution_id %d", id))
			return
		}
		if logs.Lines == nil {
			logs.Lines = []api.AgentLogLine{}
		}
		writeJSON(w, http.StatusOK, logs)
	}))
	cancel := s.agentRun(func(w http.ResponseWriter, r *http.Request, rt AgentRuntime, id int64) {
		ctx, stop := context.WithTimeout(r.Context(), cancelWait)
		defer stop()
		run, err := rt.Cancel(ctx, id)
		if err != nil {
			writeError(w, err)
			return
		}
		writeJSON(w, http.StatusOK, agentStatus(run))
	})
	s.mux.HandleFunc("POST /agents/{id}/cancel", cancel)
	s.mux.HandleFunc("DELETE /agents/{id}", cancel)
}

// agents answers 501 when the runtime is off.
func (s *Server) agents(h func(http.ResponseWriter, *http.Request, AgentRuntime)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if s.opts.Agents == nil {
			writeError(w, api.Errorf(api.PolicyNotEnabled, "the agent runtime is off in this kernel (agents.disabled)"))
			return
		}
		h(w, r, s.opts.Agents)
	}
}

// agentRun reads the execution id of the path, an integer as in AIOS.
func (s *Server) agentRun(h func(http.ResponseWriter, *http.Request, AgentRuntime, int64)) http.HandlerFunc {
	return s.agents(func(w http.ResponseWriter, r *http.Request, rt AgentRuntime) {
		id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
		if err != nil {
			writeError(w, api.Errorf(api.CallerBadRequest, "execution_id must be an integer, got %q", r.PathValue("id")))
			return
		}
		h(w, r, rt, id)
	})
}

func (s *Server) agentSubmit(w http.ResponseWriter, r *http.Request) {
	s.agents(func(w http.ResponseWriter, r *http.Request, rt AgentRuntime) {
		var req api.AgentSubmit
		if err := s.decodeBody(w, r, &req); err != nil {
			writeError(w, err)
			return
		}
		run, err := rt.Submit(req)
		if err != nil {
			writeError(w, err)
			return
		}
		writeJSON(w, http.StatusOK, api.AgentSubmitResponse{
			Status: "success", ExecutionID: run.ExecutionID, AgentID: run.AgentID, AgentName: run.AgentName,
			Program: run.Program, Message: "Agent " + req.AgentID + " submitted for execution",
		})
	})(w, r)
}

// agentStatus puts a run's record in AIOS's status shape.
func agentStatus(run api.AgentRun) api.AgentStatus {
	msg := run.Error
	switch run.State {
	case api.AgentQueued:
		msg = "Execution queued"
	case api.AgentRunning:
		msg = "Execution in progress"
	case api.AgentExited:
		msg = "Execution completed"
	}
	return api.AgentStatus{Status: run.State.AIOSStatus(), Message: msg, AgentRun: run}
}
