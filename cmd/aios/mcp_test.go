package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/aios-go/aios/api"
	"github.com/aios-go/aios/internal/mcpserver"
	"github.com/aios-go/aios/internal/tool"
)

// echoKernel is a kernel with one tool, recording who called it.
type echoKernel struct {
	mu     sync.Mutex
	agents []string
}

func (k *echoKernel) Tools() []tool.Spec {
	return []tool.Spec{{Name: "echo", Source: "builtin",
		InputSchema: json.RawMessage(`{"type":"object","properties":{"text":{"type":"string"}},"required":["text"]}`)}}
}

func (k *echoKernel) CallTool(_ context.Context, agent, _, name string, args json.RawMessage) (tool.Result, error) {
	k.mu.Lock()
	k.agents = append(k.agents, agent)
	k.mu.Unlock()
	var a struct{ Text string }
	if name != "echo" || json.Unmarshal(args, &a) != nil || a.Text == "" {
		return tool.Result{}, api.Errorf(api.CallerBadRequest, "echo needs text")
	}
	return tool.Result{Content: a.Text}, nil
}

// kernelURL serves k's /mcp as "aios serve" does, with the agent from X-AIOS-Agent.
func kernelURL(t *testing.T, k mcpserver.Kernel) string {
	t.Helper()
	mux := http.NewServeMux()
	mux.Handle("/mcp", mcpserver.Handler(k, func(r *http.Request) string { return r.Header.Get("X-AIOS-Agent") }, nil))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv.URL
}

// runMCPCommand runs `aios mcp args...` on pipes and returns the Go SDK's client on the
// other ends, and a channel with what the command returned.
func runMCPCommand(t *testing.T, args ...string) (*mcp.ClientSession, <-chan error) {
	t.Helper()
	prev := slog.Default()
	t.Cleanup(func() { slog.SetDefault(prev) })
	toCmd, fromClient := io.Pipe()
	toClient, fromCmd := io.Pipe()
	cmd := mcpCmd()
	cmd.SetArgs(args)
	cmd.SetIn(toCmd)
	cmd.SetOut(fromCmd)
	var stderr bytes.Buffer
	cmd.SetErr(&stderr)
	done := make(chan error, 1)
	go func() { done <- cmd.ExecuteContext(t.Context()) }()
	c := mcp.NewClient(&mcp.Implementation{Name: "desktop", Version: "1"}, nil)
	cs, err := c.Connect(t.Context(), &mcp.IOTransport{Reader: toClient, Writer: fromClient}, nil)
	if err != nil {
		_ = fromClient.Close()
		t.Fatalf("connecting to aios mcp: %v (it returned %v; stderr %q)", err, <-done, stderr.String())
	}
	return cs, done
}

func TestMCPCommand(t *testing.T) {
	k := &echoKernel{}
	url := kernelURL(t, k)
	t.Setenv("AIOS_AGENT", "from-env")
	for _, tc := range []struct{ name, want string }{{"flag", "desktop"}, {"env", "from-env"}} {
		t.Run(tc.name, func(t *testing.T) {
			args := []string{"--url", url}
			if tc.name == "flag" {
				args = append(args, "--agent", "desktop")
			}
			cs, done := runMCPCommand(t, args...)
			tools, err := cs.ListTools(t.Context(), nil)
			if err != nil || len(tools.Tools) != 1 || tools.Tools[0].Name != "echo" {
				t.Fatalf("tools: %v %+v", err, tools)
			}
			res, err := cs.CallTool(t.Context(), &mcp.CallToolParams{Name: "echo", Arguments: map[string]any{"text": "hello"}})
			if err != nil || res.IsError || res.Content[0].(*mcp.TextContent).Text != "hello" {
				t.Fatalf("echo: %v %+v", err, res)
			}
			res, err = cs.CallTool(t.Context(), &mcp.CallToolParams{Name: "echo", Arguments: map[string]any{}})
			if err != nil || !res.IsError || res.Content[0].(*mcp.TextContent).Text != "error caller_bad_request: echo needs text" {
				t.Fatalf("echo without text: %v %+v", err, res)
			}
			k.mu.Lock()
			last := k.agents[len(k.agents)-1]
			k.mu.Unlock()
			if last != tc.want {
				t.Errorf("the kernel saw agent %q, want %q", last, tc.want)
			}
			_ = cs.Close()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("aios mcp: %v, want nil when the client leaves", err)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("aios mcp did not exit when its client left")
			}
		})
	}
}

func TestMCPCommandRefuses(t *testing.T) {
	t.Setenv("AIOS_AGENT", "")
	run := func(args ...string) error {
		prev := slog.Default()
		defer slog.SetDefault(prev)
		cmd := mcpCmd()
		cmd.SetArgs(args)
		cmd.SetIn(strings.NewReader(""))
		cmd.SetOut(io.Discard)
		cmd.SetErr(io.Discard)
		return cmd.ExecuteContext(t.Context())
	}
	if err := run("--url", "http://127.0.0.1:1"); err == nil || !strings.Contains(err.Error(), "--agent") {
		t.Errorf("no agent: %v, want an error naming --agent", err)
	}
	srv := httptest.NewServer(http.NotFoundHandler())
	srv.Close()
	if err := run("--url", srv.URL, "--agent", "desktop"); err == nil || !strings.Contains(err.Error(), "aios serve") {
		t.Errorf("no kernel: %v, want an error saying to start one", err)
	}
	if got := mcpCmd().Flags().Lookup("url").DefValue; got != "http://localhost:8000" {
		t.Errorf("--url defaults to %s, want where aios serve listens", got)
	}
}
