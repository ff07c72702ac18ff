package server

import (
	"context"
	"encoding/json"
	"net/http"

	"github.com/aios-go/aios/api"
	"github.com/aios-go/aios/internal/mcpserver"
	"github.com/aios-go/aios/internal/tool"
)

// mcpKernel is the kernel as the MCP server at /mcp sees it: the tool registry, and
// tool syscalls made through the same path as AIOS tool queries.
type mcpKernel struct{ s *Server }

func (m mcpKernel) Tools() []tool.Spec { return m.s.opts.Tools.List() }

func (m mcpKernel) CallTool(ctx context.Context, agent, session, name string, args json.RawMessage) (tool.Result, error) {
	runs := m.s.runTools(ctx, agent, session, []api.ToolCallRequest{{Name: name, Parameters: args}})
	return runs[0].res, runs[0].err
}

// routesMCP serves the kernel as an MCP server at /mcp (streamable HTTP), for the agent
// X-AIOS-Agent names.
func (s *Server) routesMCP() {
	if s.opts.Tools == nil {
		return
	}
	agentOf := func(r *http.Request) string { return r.Header.Get(api.HeaderAgent) }
	s.mux.Handle("/mcp", mcpserver.Handler(mcpKernel{s}, agentOf, s.log))
}
