package mcp

import (
	"context"
	"encoding/json"
	"errors"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/aios-go/aios/api"
	"github.com/aios-go/aios/internal/tool"
)

// codeRejectedByTransport is the SDK's code for a request that never reached the
// server (over HTTP: the connection was refused or reset).
const codeRejectedByTransport = -32005

// remoteTool is one tool of a server. It calls through whatever session is current, so
// the registry's copy stays valid across restarts.
type remoteTool struct {
	s    *Server
	name string // as the server knows it
	spec tool.Spec
}

var objectSchema = json.RawMessage(`{"type":"object"}`)

func (s *Server) newTool(t *sdk.Tool, tap *hintTap) *remoteTool {
	schema := objectSchema
	if t.InputSchema != nil {
		if b, err := json.Marshal(t.InputSchema); err == nil && string(b) != "null" {
			schema = b
		}
	}
	return &remoteTool{s: s, name: t.Name, spec: tool.Spec{
		Name:        tool.Qualified(s.cfg.Name, t.Name),
		Description: t.Description,
		InputSchema: schema,
		Annotations: tap.annotations(t),
		Source:      s.source,
	}}
}

func (t *remoteTool) Spec() tool.Spec { return t.spec }

// Call runs the tool on the server. Cancelling ctx makes the SDK send
// notifications/cancelled, so the server can stop work nobody waits for.
func (t *remoteTool) Call(ctx context.Context, in tool.Input) (tool.Result, error) {
	c, err := t.s.current()
	if err != nil {
		return tool.Result{}, err
	}
	args := in.Args
	if len(args) == 0 || string(args) == "null" {
		args = json.RawMessage(`{}`)
	}
	res, err := c.sess.CallTool(ctx, &sdk.CallToolParams{Name: t.name, Arguments: args})
	if err != nil {
		return tool.Result{}, t.callError(ctx, c, err)
	}
	out, err := result(res)
	if err != nil {
		return tool.Result{}, api.Wrap(api.BackendBadResponse, err, "MCP server %s: result of %s", t.s.cfg.Name, t.name)
	}
	return out, nil
}

// callError says whose fault a failed call was. Anything that may mean the server is
// gone also asks the supervisor to check, so an outage is noticed at the first failure.
func (t *remoteTool) callError(ctx context.Context, c *conn, err error) error {
	server := t.s.cfg.Name
	var we *jsonrpc.Error
	switch {
	case ctx.Err() != nil:
		kind := api.CallerCancelled
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			kind = api.BackendTimeout
		}
		return api.Wrap(kind, ctx.Err(), "MCP server %s: tools/call %s", server, t.name)
	case errors.Is(err, sdk.ErrConnectionClosed):
		c.suspect()
		return api.Wrap(api.BackendUnavailable, err, "MCP server %s lost the connection during tools/call %s", server, t.name)
	case errors.As(err, &we) && we.Code == codeRejectedByTransport:
		c.suspect()
		return api.Wrap(api.BackendUnavailable, err, "MCP server %s could not be reached for tools/call %s", server, t.name)
	case errors.As(err, &we) && (we.Code == jsonrpc.CodeInvalidParams || we.Code == jsonrpc.CodeMethodNotFound):
		// The server refused this call (an unknown tool, arguments it rejects); sending
		// it again will not help.
		return api.Wrap(api.BackendRejected, err, "MCP server %s rejected tools/call %s", server, t.name)
	case errors.As(err, &we):
		return api.Wrap(api.BackendBadResponse, err, "MCP server %s failed tools/call %s", server, t.name)
	default:
		c.suspect()
		return api.Wrap(api.BackendUnavailable, err, "MCP server %s: tools/call %s", server, t.name)
	}
}
