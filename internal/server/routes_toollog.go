package server

import (
	"net/http"
	"strconv"
	"strings"

	"github.com/aios-go/aios/api"
	"github.com/aios-go/aios/internal/access"
	"github.com/aios-go/aios/internal/tool"
)

// toolLog is the registry's log of each agent's recent tool calls.
type toolLog interface {
	Calls(agent string, limit int) []tool.Call
}

// toolCalls serves GET /v1/tools/calls: the caller's recent tool calls, or, with
// ?owner=, another agent's, which the access manager allows to agents of the owner's
// privilege groups (tool.log.read on its namespace).
func (s *Server) toolCalls(w http.ResponseWriter, r *http.Request) {
	tl, ok := s.opts.Tools.(toolLog)
	if !ok || s.opts.Tools == nil {
		writeOpenAIError(w, api.Errorf(api.PolicyNotEnabled, "the tool module is not enabled in this kernel"))
		return
	}
	agent := strings.TrimSpace(r.Header.Get(api.HeaderAgent))
	if agent == "" {
		writeOpenAIError(w, api.Errorf(api.CallerBadRequest, "the %s header is required: tool calls are logged per agent", api.HeaderAgent))
		return
	}
	limit := 0
	if v := r.URL.Query().Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			writeOpenAIError(w, api.Errorf(api.CallerBadRequest, "limit must be a non-negative integer, got %q", v))
			return
		}
		limit = n
	}
	owner := strings.TrimSpace(r.URL.Query().Get("owner"))
	if owner == "" {
		owner = agent
	}
	if m := s.opts.Access; m != nil {
		p, _ := access.PrincipalFrom(r.Context())
		d, err := m.Check(r.Context(), p, access.ToolLogRead, access.Namespace(owner), access.Context{})
		if err != nil {
			writeOpenAIError(w, err)
			return
		}
		d.Release(0)
	} else if owner != agent {
		writeOpenAIError(w, api.Errorf(api.PolicyDenied,
			"owner names agent %s, but reading another agent's tool calls needs the access manager (access.auth: true), whose privilege groups and policies decide it", owner))
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"object": "list", "agent": owner, "data": tl.Calls(owner, limit)})
}
