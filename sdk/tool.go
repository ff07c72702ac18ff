package sdk

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/aios-go/aios/api"
)

// CallTool runs tool calls through the kernel's tool module, as AIOS's tool query does:
// every call runs, each a tool syscall of the client's agent and session. Names may be
// AIOS's "author/tool" or the registry's "author__tool"; Parameters is the arguments
// object.
//
// The answer is AIOS's ToolResponse: ResponseMessage is the one call's result text (or
// each result under a "[name]" line), and ToolResults each call's own outcome. When a
// call could not run, the response's status_code says so; that comes back as an *Error
// along with the response, whose ToolResults tell which call failed.
func (c *Client) CallTool(ctx context.Context, calls []api.ToolCallRequest) (*api.ToolResponse, error) {
	if len(calls) == 0 {
		return nil, fmt.Errorf("sdk: CallTool needs at least one call")
	}
	b, err := json.Marshal(api.ToolQuery{QueryClass: api.QueryTool, ToolCalls: calls, Session: c.session})
	if err != nil {
		return nil, fmt.Errorf("sdk: encode tool query: %w", err)
	}
	res := &api.ToolResponse{}
	if _, err := c.query(ctx, api.QueryRequest{QueryType: api.QueryTool, QueryData: b}, res); err != nil {
		return nil, err
	}
	return res, moduleError(res.ModuleResponse, "tool call failed")
}
