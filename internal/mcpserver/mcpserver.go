// Package mcpserver exposes the kernel's tools as an MCP server, over streamable HTTP
// (Handler, mounted at /mcp) and over stdio (ServeStdio), and reaches a running kernel's
// /mcp as a client (Remote). Every call goes through the Kernel, so tools called over MCP
// are scheduled, validated and accounted like any other tool syscall, and always as the
// one agent the transport names: nothing in a request can choose another.
package mcpserver

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"runtime/debug"
	"sync"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/aios-go/aios/internal/tool"
)

// Kernel is what the MCP server exposes: the kernel's tool registry, and tool syscalls
// made as the calling agent (scheduled, validated and accounted by the kernel).
type Kernel interface {
	Tools() []tool.Spec
	CallTool(ctx context.Context, agent, session, name string, args json.RawMessage) (tool.Result, error)
}

// toolLister is a Kernel whose tool list can fail: a Remote one. Listing through it lets
// an MCP client see "the kernel is unreachable" instead of an empty list of tools.
type toolLister interface {
	ListTools(ctx context.Context) ([]tool.Spec, error)
}

func listTools(ctx context.Context, k Kernel) ([]tool.Spec, error) {
	if l, ok := k.(toolLister); ok {
		return l.ListTools(ctx)
	}
	return k.Tools(), nil
}

var implementation = &mcp.Implementation{Name: "aios", Title: "AIOS kernel", Version: moduleVersion()}

func moduleVersion() string {
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
		return bi.Main.Version
	}
	return "dev"
}

// bridge is one MCP server acting for one agent: its tools mirror the kernel's registry
// as of the last sync, and every call is made as that agent.
type bridge struct {
	k     Kernel
	agent string
	srv   *mcp.Server
	log   *slog.Logger
	// request is the HTTP request the bridge serves, if any. Stateless, a call's answer
	// can only go back on its own request, so a client that hangs up no longer wants
	// it, and the kernel should stop the tool rather than hold a slot for it. The SDK
	// ties calls to the request only for the 2026-07-28 protocol; this covers them all.
	request context.Context

	mu    sync.Mutex
	known map[string]tool.Spec // what the server was last given, to add only what changed
}

// newBridge builds the server. listChanged says whether the client can be told of new
// tools: true on stdio, where one session outlives registry changes; false for
// stateless HTTP, where no notification can reach the client and it re-lists anyway.
func newBridge(k Kernel, agent string, log *slog.Logger, listChanged bool) *bridge {
	b := &bridge{k: k, agent: agent, log: log, known: map[string]tool.Spec{}}
	b.srv = mcp.NewServer(implementation, &mcp.ServerOptions{
		Logger: quiet(log),
		// Set, not inferred: a kernel with no tools yet still serves tools/list, and
		// the SDK's default logging capability is deprecated in the 2026 protocol.
		Capabilities: &mcp.ServerCapabilities{Tools: &mcp.ToolCapabilities{ListChanged: listChanged}},
		// Every answer is made for one agent; the SDK's default lets an intermediary
		// hand it to others.
		SetCacheable: func(_ context.Context, _ mcp.Request, c *mcp.Cacheable) { c.CacheScope = "private" },
	})
	return b
}

// sync makes the server's tools the kernel's: tools that appeared are added, changed
// ones replaced, vanished ones removed.
func (b *bridge) sync(ctx context.Context) error {
	specs, err := listTools(ctx, b.k)
	if err != nil {
		return err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	seen := make(map[string]bool, len(specs))
	var gone []string
	for _, s := range specs {
		seen[s.Name] = true
		if old, ok := b.known[s.Name]; ok && sameSpec(old, s) {
			continue
		}
		if err := b.add(s); err != nil {
			b.log.Warn("mcp: tool not offered: its schema is not one MCP accepts", "tool", s.Name, "source", s.Source, "error", err)
			if _, ok := b.known[s.Name]; ok {
				gone = append(gone, s.Name)
				delete(b.known, s.Name)
			}
			continue
		}
		b.known[s.Name] = s
	}
	for name := range b.known {
		if !seen[name] {
			gone = append(gone, name)
			delete(b.known, name)
		}
	}
	if len(gone) > 0 {
		b.srv.RemoveTools(gone...)
	}
	return nil
}

func (b *bridge) has(name string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	_, ok := b.known[name]
	return ok
}

// add gives the server one tool. The SDK panics on an input schema it rejects; schemas
// come from third-party MCP servers, and one bad tool must not take the others down.
func (b *bridge) add(s tool.Spec) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%v", r)
		}
	}()
	b.srv.AddTool(mcpTool(s), b.handler(s.Name))
	return nil
}

func mcpTool(s tool.Spec) *mcp.Tool {
	schema := s.InputSchema
	if len(schema) == 0 {
		schema = json.RawMessage(`{"type":"object"}`)
	}
	t := &mcp.Tool{Name: s.Name, Description: s.Description, InputSchema: schema}
	if a := s.Annotations; a != (tool.Annotations{}) {
		// MCP's readOnlyHint and idempotentHint are plain booleans whose default is
		// false, so "unknown" goes on the wire as false, which means the same.
		t.Annotations = &mcp.ToolAnnotations{
			Title:           a.Title,
			ReadOnlyHint:    a.ReadOnlyHint != nil && *a.ReadOnlyHint,
			IdempotentHint:  a.IdempotentHint != nil && *a.IdempotentHint,
			DestructiveHint: a.DestructiveHint,
			OpenWorldHint:   a.OpenWorldHint,
		}
	}
	return t
}

func sameSpec(a, b tool.Spec) bool {
	return a.Name == b.Name && a.Description == b.Description && string(a.InputSchema) == string(b.InputSchema) &&
		sameAnnotations(a.Annotations, b.Annotations)
}

func sameAnnotations(a, b tool.Annotations) bool {
	eq := func(x, y *bool) bool { return (x == nil) == (y == nil) && (x == nil || *x == *y) }
	return a.Title == b.Title && eq(a.ReadOnlyHint, b.ReadOnlyHint) && eq(a.DestructiveHint, b.DestructiveHint) &&
		eq(a.IdempotentHint, b.IdempotentHint) && eq(a.OpenWorldHint, b.OpenWorldHint)
}
