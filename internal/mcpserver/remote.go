package mcpserver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/aios-go/aios/api"
	"github.com/aios-go/aios/internal/tool"
)

// listTimeout bounds Tools, whose signature has no context: a kernel that stopped
// answering must not hang the MCP client waiting on it.
const listTimeout = 30 * time.Second

// Remote is a Kernel reached over HTTP: a running kernel's /mcp, as agent. `aios mcp`
// uses it so a stdio MCP client (Claude Desktop, an IDE) shares the running kernel's
// scheduler with every other agent. ctx bounds connecting only; the io.Closer ends the
// connection. hc may be nil for http.DefaultClient.
//
// Every request carries X-AIOS-Agent: agent. A call as any other agent is refused here
// rather than sent, since the far kernel would run it as agent regardless.
func Remote(ctx context.Context, baseURL, agent string, hc *http.Client) (Kernel, io.Closer, error) {
	if agent == "" {
		return nil, nil, errors.New("mcp: Remote needs the agent to act as")
	}
	if hc == nil {
		hc = http.DefaultClient
	}
	withAgent := *hc
	withAgent.Transport = agentHeader{base: hc.Transport, agent: agent}
	endpoint := strings.TrimRight(baseURL, "/") + "/mcp"
	client := mcp.NewClient(&mcp.Implementation{Name: "aios-mcp", Version: moduleVersion()}, nil)
	cs, err := client.Connect(ctx, &mcp.StreamableClientTransport{
		Endpoint:   endpoint,
		HTTPClient: &withAgent,
		// The kernel's /mcp is stateless and answers GET with 405.
		DisableStandaloneSSE: true,
	}, nil)
	if err != nil {
		return nil, nil, fmt.Errorf("mcp: connecting to %s: %w", endpoint, err)
	}
	return &remote{cs: cs, agent: agent, endpoint: endpoint}, cs, nil
}

type agentHeader struct {
	base  http.RoundTripper
	agent string
}

func (t agentHeader) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context()) // a RoundTripper must not change the caller's request
	r.Header.Set("X-AIOS-Agent", t.agent)
	base := t.base
	if base == nil {
		base = http.DefaultTransport
	}
	return base.RoundTrip(r)
}

type remote struct {
	cs       *mcp.ClientSession
	agent    string
	endpoint string
}

// Tools lists the far kernel's tools, or none when it cannot be reached; ServeStdio
// uses ListTools instead, so that its client sees the failure.
func (r *remote) Tools() []tool.Spec {
	ctx, cancel := context.WithTimeout(context.Background(), listTimeout)
	defer cancel()
	specs, _ := r.ListTools(ctx)
	return specs
}

func (r *remote) ListTools(ctx context.Context) ([]tool.Spec, error) {
	var specs []tool.Spec
	for t, err := range r.cs.Tools(ctx, nil) {
		if err != nil {
			return nil, api.Wrap(api.BackendUnavailable, err, "the kernel at %s did not list its tools", r.endpoint)
		}
		specs = append(specs, toolSpec(t))
	}
	return specs, nil
}

func toolSpec(t *mcp.Tool) tool.Spec {
	s := tool.Spec{Name: t.Name, Description: t.Description, Source: "mcp:aios"}
	if t.InputSchema != nil {
		s.InputSchema, _ = json.Marshal(t.InputSchema)
	}
	if a := t.Annotations; a != nil {
		// The wire cannot say "unknown" for these two; false is their default, and
		// a hint read as unknown is the reading that trusts the tool least.
		s.Annotations = tool.Annotations{Title: a.Title, DestructiveHint: a.DestructiveHint, OpenWorldHint: a.OpenWorldHint}
		if a.ReadOnlyHint {
			s.Annotations.ReadOnlyHint = &a.ReadOnlyHint
		}
		if a.IdempotentHint {
			s.Annotations.IdempotentHint = &a.IdempotentHint
		}
	}
	return s
}

// CallTool calls the tool on the far kernel. session is not sent: the far kernel names
// the session itself (the agent, on its stateless /mcp).
func (r *remote) CallTool(ctx context.Context, agent, _, name string, args json.RawMessage) (tool.Result, error) {
	if agent != r.agent {
		return tool.Result{}, api.Errorf(api.PolicyDenied, "this connection to the kernel acts as agent %q, not %q", r.agent, agent)
	}
	res, err := r.cs.CallTool(ctx, &mcp.CallToolParams{Name: name, Arguments: args})
	if err != nil {
		return tool.Result{}, callError(ctx, err, r.endpoint, name)
	}
	if e := kernelError(res.Meta); e != nil {
		return tool.Result{}, e
	}
	out := tool.Result{IsError: res.IsError}
	var text []string
	for _, c := range res.Content {
		if t, ok := c.(*mcp.TextContent); ok {
			text = append(text, t.Text)
		}
	}
	out.Content = strings.Join(text, "\n")
	if res.StructuredContent != nil {
		out.Structured, _ = json.Marshal(res.StructuredContent)
	}
	return out, nil
}

func callError(ctx context.Context, err error, endpoint, name string) error {
	if ctx.Err() != nil {
		return api.Wrap(api.CallerCancelled, err, "the call to tool %q was cancelled", name)
	}
	var rpc *jsonrpc.Error
	if errors.As(err, &rpc) && rpc.Code == jsonrpc.CodeInvalidParams {
		if strings.Contains(rpc.Message, "unknown tool") {
			return api.Wrap(api.CallerNotFound, err, "the kernel has no tool %q", name)
		}
		return api.Wrap(api.CallerBadRequest, err, "the kernel refused the call to tool %q", name)
	}
	return api.Wrap(api.BackendUnavailable, err, "the kernel at %s did not answer the call to tool %q", endpoint, name)
}

// kernelError rebuilds the *api.Error the far kernel returned, from the _meta
// errorResult put it in.
func kernelError(meta mcp.Meta) *api.Error {
	raw, ok := meta[errorMetaKey]
	if !ok {
		return nil
	}
	b, err := json.Marshal(raw)
	if err != nil {
		return nil
	}
	var m errorMeta
	if json.Unmarshal(b, &m) != nil || m.Kind == "" {
		return nil
	}
	return &api.Error{Kind: m.Kind, Message: m.Message, RetryAfter: time.Duration(m.RetryAfterMS) * time.Millisecond}
}
