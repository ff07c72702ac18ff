package mcpserver

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/aios-go/aios/api"
	"github.com/aios-go/aios/internal/tool"
)

// errorMetaKey names, in a failed call's _meta, the kernel error behind it, so that a
// Remote can hand its caller the same *api.Error the kernel returned.
const errorMetaKey = "io.github.aios-go/error"

type errorMeta struct {
	Kind         api.Kind `json:"kind"`
	Message      string   `json:"message"`
	RetryAfterMS int64    `json:"retry_after_ms,omitempty"`
}

func (b *bridge) handler(name string) mcp.ToolHandler {
	return func(ctx context.Context, req *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		session := b.agent
		if req.Session != nil && req.Session.ID() != "" {
			session = req.Session.ID()
		}
		args := req.Params.Arguments
		if len(bytes.TrimSpace(args)) == 0 || string(args) == "null" {
			args = json.RawMessage(`{}`)
		}
		if b.request != nil {
			var cancel context.CancelFunc
			ctx, cancel = context.WithCancel(ctx)
			defer cancel()
			defer context.AfterFunc(b.request, cancel)()
		}
		res, err := b.k.CallTool(ctx, b.agent, session, name, args)
		if err != nil {
			if api.KindOf(err) == api.CallerNotFound && !b.listed(ctx, name) {
				return nil, unknownTool(name)
			}
			return errorResult(err), nil
		}
		return toolResult(res), nil
	}
}

// listed tells a tool that left the registry since the last sync (MCP wants an unknown
// tool to be a protocol error) from a tool that reported something not found.
func (b *bridge) listed(ctx context.Context, name string) bool {
	specs, err := listTools(ctx, b.k)
	if err != nil {
		return true
	}
	return slices.ContainsFunc(specs, func(s tool.Spec) bool { return s.Name == name })
}

func unknownTool(name string) *jsonrpc.Error {
	return &jsonrpc.Error{Code: jsonrpc.CodeInvalidParams, Message: fmt.Sprintf("unknown tool %q", name)}
}

func toolResult(r tool.Result) *mcp.CallToolResult {
	out := &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: r.Content}}, IsError: r.IsError}
	if s := bytes.TrimSpace(r.Structured); len(s) > 0 && s[0] == '{' && json.Valid(s) {
		out.StructuredContent = json.RawMessage(s)
	}
	return out
}

// errorResult puts a kernel error where the model reads it: MCP reserves protocol errors
// for calls that never reached a tool, and a refused or failed syscall is something the
// model should see and react to (wait, change its arguments, give up).
func errorResult(err error) *mcp.CallToolResult {
	m := errorMeta{Kind: api.KindOf(err), Message: err.Error()}
	var e *api.Error
	if errors.As(err, &e) {
		m.Message = e.Message
		if e.Err != nil {
			m.Message += ": " + e.Err.Error()
		}
		m.RetryAfterMS = e.RetryAfter.Milliseconds()
	}
	text := fmt.Sprintf("error %s: %s", m.Kind, m.Message)
	if m.RetryAfterMS > 0 {
		text += fmt.Sprintf(" (retry after %s)", time.Duration(m.RetryAfterMS)*time.Millisecond)
	}
	return &mcp.CallToolResult{
		Content: []mcp.Content{&mcp.TextContent{Text: text}},
		IsError: true,
		Meta:    mcp.Meta{errorMetaKey: m},
	}
}

// quiet passes on only warnings and errors: the SDK logs every connection at Info,
// which for stateless HTTP is every request.
func quiet(log *slog.Logger) *slog.Logger {
	return slog.New(minLevel{log.Handler(), slog.LevelWarn})
}

type minLevel struct {
	slog.Handler
	min slog.Level
}

func (h minLevel) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= h.min && h.Handler.Enabled(ctx, l)
}

func (h minLevel) WithAttrs(as []slog.Attr) slog.Handler {
	return minLevel{h.Handler.WithAttrs(as), h.min}
}

func (h minLevel) WithGroup(name string) slog.Handler {
	return minLevel{h.Handler.WithGroup(name), h.min}
}
