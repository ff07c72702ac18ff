package boot

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"time"

	"github.com/aios-go/aios/api"
	"github.com/aios-go/aios/internal/config"
	"github.com/aios-go/aios/internal/kernel"
	"github.com/aios-go/aios/internal/sched"
	"github.com/aios-go/aios/internal/tool"
	"github.com/aios-go/aios/internal/tool/builtin"
	"github.com/aios-go/aios/internal/tool/httptool"
	"github.com/aios-go/aios/internal/tool/mcp"
)

// toolService runs tool syscalls on the tool manager. It is Gated: each tool's own
// limit on parallel calls is a resource the scheduler allocates, so calls of free tools
// start while a busy tool's calls wait. Arguments are validated at admission, so an
// invalid call is answered at once and never waits for its tool.
type toolService struct {
	m       *tool.Manager
	servers []*mcp.Server
}

func (s *toolService) Run(ctx context.Context, r kernel.Request) (any, error) {
	args, _ := r.Args.(json.RawMessage)
	return s.m.Run(ctx, r.Resource, tool.Input{Agent: r.Agent, Session: r.Program, Args: args})
}

func (s *toolService) Admit(r kernel.Request) error {
	args, _ := r.Args.(json.RawMessage)
	return s.m.Validate(r.Resource, args)
}

func (s *toolService) Acquire(name string) bool { return s.m.TryAcquire(name) }
func (s *toolService) Release(name string)      { s.m.Release(name) }

func (s *toolService) QueueLimits(name string) (int, time.Duration) {
	l := s.m.LimitsOf(name)
	return l.Queue, l.QueueTimeout
}

// Close stops the MCP servers, killing their subprocesses.
func (s *toolService) Close() error {
	var errs []error
	for _, srv := range s.servers {
		errs = append(errs, srv.Close())
	}
	return errors.Join(errs...)
}

// kernelCalls reaches the kernel's storage and memory modules for the built-in tools,
// as syscalls of the calling agent: scheduled, and confined to its namespace.
type kernelCalls struct{ k **kernel.Kernel }

func (c kernelCalls) Storage(ctx context.Context, agent, op string, p *api.StorageParams) (any, error) {
	res, _, err := (*c.k).Do(ctx, kernel.Call{Agent: agent, Module: sched.Storage, Op: op, Args: p})
	return res, err
}

func (c kernelCalls) Memory(ctx context.Context, agent, op string, p *api.MemoryParams) (any, error) {
	res, _, err := (*c.k).Do(ctx, kernel.Call{Agent: agent, Module: sched.Memory, Op: op, Args: p})
	return res, err
}

// openTools builds the tool manager: built-in tools, HTTP tools from config and the
// tools of every configured MCP server. A server that cannot start, or a tool that
// cannot be built, stops the kernel from starting.
func openTools(cfg config.Config, k **kernel.Kernel, log *slog.Logger) (*toolService, error) {
	tc := cfg.Tools
	perTool := make(map[string]tool.Limits, len(tc.PerTool))
	for name, l := range tc.PerTool {
		perTool[name] = toolLimits(l)
	}
	m, err := tool.New(tool.Config{Defaults: toolLimits(tc.Limits), PerTool: perTool, Logger: log})
	if err != nil {
		return nil, fmt.Errorf("tools: %w", err)
	}
	if err := builtin.CheckAllowlist(tc.FetchAllow); err != nil {
		return nil, fmt.Errorf("tools.fetch_allow: %w", err)
	}
	want := func(name string) bool { return len(tc.Builtin) == 0 || slices.Contains(tc.Builtin, name) }
	var tools []tool.Tool
	for _, t := range builtin.Default(time.Now, tc.FetchAllow) {
		if want(t.Spec().Name) {
			tools = append(tools, t)
		}
	}
	tools = append(tools, builtin.KernelTools(kernelCalls{k}, want("storage") && !cfg.Storage.Disabled, want("memory") && !cfg.Memory.Disabled)...)
	for i, h := range tc.HTTP {
		t, err := httpTool(h)
		if err != nil {
			return nil, fmt.Errorf("tools.http[%d] (%s): %w", i, h.Name, err)
		}
		tools = append(tools, t)
	}
	for _, t := range tools {
		if err := m.Register(t); err != nil {
			return nil, fmt.Errorf("tools: %w", err)
		}
	}
	s := &toolService{m: m}
	for i, sc := range tc.MCP {
		srv, err := mcp.Start(context.Background(), mcp.ServerConfig{
			Name: sc.Name, Command: sc.Command, Args: sc.Args, Env: sc.Env, Dir: sc.Dir,
			URL: sc.URL, Headers: sc.Headers, StartTimeout: sc.StartTimeout,
		}, m, log)
		if err != nil {
			_ = s.Close()
			return nil, fmt.Errorf("tools.mcp[%d] (%s): %w", i, sc.Name, err)
		}
		s.servers = append(s.servers, srv)
	}
	return s, nil
}

func toolLimits(l config.ToolLimits) tool.Limits {
	return tool.Limits{
		Concurrency: l.Concurrency, Queue: l.Queue, QueueTimeout: l.QueueTimeout, Timeout: l.Timeout,
		MaxOutput: l.MaxOutput, BreakerThreshold: l.BreakerThreshold, BreakerCooldown: l.BreakerCooldown,
	}
}

func httpTool(h config.HTTPTool) (tool.Tool, error) {
	params, err := json.Marshal(h.Parameters)
	if err != nil {
		return nil, err
	}
	if h.Parameters == nil {
		params = nil
	}
	var ann tool.Annotations
	if h.Annotations != nil {
		raw, _ := json.Marshal(h.Annotations)
		if err := json.Unmarshal(raw, &ann); err != nil {
			return nil, fmt.Errorf("annotations: %w", err)
		}
	}
	return httptool.New(httptool.Config{
		Name: h.Name, Description: h.Description, Method: h.Method, URL: h.URL, Headers: h.Headers,
		Parameters: params, Annotations: ann, Timeout: h.Timeout,
	}, &http.Client{})
}

// ToolStatus is the tool module's state for the admin API: each tool's counters and
// limits, and each MCP server's connection.
type ToolStatus struct {
	Tools   []tool.Stats `json:"tools"`
	Servers []mcp.Status `json:"mcp_servers"`
}

// ToolStatus reports the tool module, or nil when it is disabled.
func (s *System) ToolStatus() any {
	if s.Tools == nil {
		return nil
	}
	st := ToolStatus{Tools: s.Tools.Stats(), Servers: []mcp.Status{}}
	for _, srv := range s.MCPServers {
		st.Servers = append(st.Servers, srv.Status())
	}
	return st
}
