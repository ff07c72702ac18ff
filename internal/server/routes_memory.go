package server

import (
	"net/http"
	"strings"

	"github.com/aios-go/aios/api"
	"github.com/aios-go/aios/internal/kernel"
	"github.com/aios-go/aios/internal/sched"
)

func (s *Server) queryMemory(w http.ResponseWriter, r *http.Request, q *api.QueryRequest) {
	var d api.MemoryQuery
	if err := decodeJSON(q.QueryData, &d, "query_data"); err != nil {
		writeError(w, err)
		return
	}
	s.syscall(w, r, kernel.Call{Agent: q.AgentName, Module: sched.Memory, Op: d.OperationType, Args: &d.Params}, memoryAnswer)
}

// routesMemory is the REST surface over the memory module: every route is one memory
// syscall, as /query's are; the agent is X-AIOS-Agent.
func (s *Server) routesMemory() {
	s.mux.HandleFunc("POST /v1/memory/notes", s.memoryAdd)
	s.mux.HandleFunc("GET /v1/memory/notes/{id}", s.memoryNote(api.MemoryGet))
	s.mux.HandleFunc("PATCH /v1/memory/notes/{id}", s.memoryNote(api.MemoryUpdate))
	s.mux.HandleFunc("DELETE /v1/memory/notes/{id}", s.memoryNote(api.MemoryRemove))
	s.mux.HandleFunc("POST /v1/memory/search", s.memorySearch)
	s.mux.HandleFunc("POST /v1/memory/blocks/{name}", s.memoryBlock(api.MemoryCreateBlock, http.StatusCreated))
	s.mux.HandleFunc("POST /v1/memory/blocks/{name}/attach", s.memoryBlock(api.MemoryAttachBlock, http.StatusNoContent))
	s.mux.HandleFunc("POST /v1/memory/blocks/{name}/detach", s.memoryBlock(api.MemoryDetachBlock, http.StatusNoContent))
}

// memoryBlock creates, attaches to or detaches from a shared memory block.
func (s *Server) memoryBlock(op string, status int) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if _, err := s.memoryREST(r, op, &api.MemoryParams{Block: r.PathValue("name")}); err != nil {
			writeError(w, err)
			return
		}
		w.WriteHeader(status)
	}
}

// memoryREST runs one memory syscall for a REST route.
func (s *Server) memoryREST(r *http.Request, op string, p *api.MemoryParams) (*api.MemoryResponse, error) {
	agent := strings.TrimSpace(r.Header.Get(api.HeaderAgent))
	if agent == "" {
		return nil, api.Errorf(api.CallerBadRequest, "the %s header is required: memory is kept per agent", api.HeaderAgent)
	}
	if p.Owner == "" {
		p.Owner = r.URL.Query().Get("owner") // another agent's namespace (docs/security.md)
	}
	res, sc, err := s.k.Do(r.Context(), kernel.Call{
		Agent: agent, Program: r.Header.Get(api.HeaderSession), Module: sched.Memory, Op: op, Args: p,
	})
	noteSyscall(r.Context(), sc)
	if err != nil {
		return nil, err
	}
	return res.(*api.MemoryResponse), nil
}

// memoryAdd is POST /v1/memory/notes: body {content, metadata, block, agentic}.
func (s *Server) memoryAdd(w http.ResponseWriter, r *http.Request) {
	var body struct {
		api.MemoryParams
		Agentic bool `json:"agentic"`
	}
	if err := s.decodeBody(w, r, &body); err != nil {
		writeError(w, err)
		return
	}
	op := api.MemoryAdd
	if body.Agentic {
		op = api.MemoryAddAgentic
	}
	res, err := s.memoryREST(r, op, &body.MemoryParams)
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusCreated, res)
}

// memoryNote serves GET, PATCH (body {content, metadata}) and DELETE of one note.
func (s *Server) memoryNote(op string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		p := &api.MemoryParams{}
		if op == api.MemoryUpdate {
			if err := s.decodeBody(w, r, p); err != nil {
				writeError(w, err)
				return
			}
		}
		p.MemoryID = r.PathValue("id")
		res, err := s.memoryREST(r, op, p)
		if err != nil {
			writeError(w, err)
			return
		}
		if op == api.MemoryRemove {
			w.WriteHeader(http.StatusNoContent)
			return
		}
		writeJSON(w, http.StatusOK, res)
	}
}

// memorySearch is POST /v1/memory/search: body as retrieve_memory_raw's params.
func (s *Server) memorySearch(w http.ResponseWriter, r *http.Request) {
	var p api.MemoryParams
	if err := s.decodeBody(w, r, &p); err != nil {
		writeError(w, err)
		return
	}
	res, err := s.memoryREST(r, api.MemoryRetrieveRaw, &p)
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, res)
}
