package boot

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aios-go/aios/internal/config"
	"github.com/aios-go/aios/internal/kernel"
	"github.com/aios-go/aios/internal/sched"
	"github.com/aios-go/aios/internal/testnpm"
	"github.com/aios-go/aios/internal/tool"
)

func toolConfig(t *testing.T, edit func(*config.Tools)) config.Config {
	cfg := config.Defaults()
	cfg.DataDir = t.TempDir()
	cfg.LLMs.Models = []config.Model{{Name: "sim", Backend: "sim", Cores: 1}}
	if edit != nil {
		edit(&cfg.Tools)
	}
	return cfg
}

func shutdown(t *testing.T, sys *System) {
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = sys.Kernel.Shutdown(ctx)
	})
}

// A kernel built with an MCP server from config offers its tools as server__tool beside
// the built-in ones, and runs them as tool syscalls; shutting the kernel down stops
// the server.
func TestBuildWithMCPServer(t *testing.T) {
	bin := testnpm.Bin(t, "mcp-npm", "mcp-server-everything")
	cfg := toolConfig(t, func(tc *config.Tools) {
		tc.MCP = []config.MCPServer{{Name: "everything", Command: bin, Args: []string{"stdio"}}}
		tc.Builtin = []string{"calculator"}
	})
	sys, err := Build(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	shutdown(t, sys)
	names := map[string]bool{}
	for _, s := range sys.Tools.List() {
		names[s.Name] = true
	}
	if !names["everything__echo"] || !names["calculator"] || names["current_time"] {
		t.Fatalf("tools: %v", names)
	}
	res, _, err := sys.Kernel.Do(t.Context(), kernel.Call{Agent: "a", Module: sched.Tool, Op: "call",
		Resource: "everything__echo", Args: json.RawMessage(`{"message": "hi there"}`)})
	if err != nil || !strings.Contains(res.(tool.Result).Content, "hi there") {
		t.Fatalf("echo through the kernel: %+v %v", res, err)
	}
	if st := sys.MCPServers[0].Status(); !st.Connected || st.PID == 0 {
		t.Fatalf("server status: %+v", st)
	}
}

// What cannot work stops the start: an MCP server that does not start, a malformed
// fetch allowlist, an HTTP tool with a bad URL, limits that make no sense.
func TestBuildRefusesBrokenTools(t *testing.T) {
	for name, edit := range map[string]func(*config.Tools){
		"mcp server": func(tc *config.Tools) {
			tc.MCP = []config.MCPServer{{Name: "gone", Command: "/nonexistent/mcp-server", StartTimeout: 2 * time.Second}}
		},
		"allowlist":  func(tc *config.Tools) { tc.FetchAllow = []string{"http://example.com/path"} },
		"http tool":  func(tc *config.Tools) { tc.HTTP = []config.HTTPTool{{Name: "w", URL: "ftp://x"}} },
		"limits":     func(tc *config.Tools) { tc.Limits.Concurrency = -1 },
		"tool names": func(tc *config.Tools) { tc.HTTP = []config.HTTPTool{{Name: "bad name", URL: "http://x"}} },
	} {
		t.Run(name, func(t *testing.T) {
			if sys, err := Build(toolConfig(t, edit), nil); err == nil {
				shutdown(t, sys)
				t.Fatal("built")
			}
		})
	}
}

// 100 parallel calls of a real MCP server's tool, limited to 3 at once: all succeed and
// the server never sees more than 3; a built-in tool called meanwhile answers too. (That
// a free tool's calls pass a busy tool's queue is shown with a tool that blocks, in
// internal/kernel's TestGatedServiceHoldsLimitAndRunsFreeResources: echo is too quick
// to stay busy.)
func TestMCPToolConcurrencyLimitUnder100Calls(t *testing.T) {
	bin := testnpm.Bin(t, "mcp-npm", "mcp-server-everything")
	cfg := toolConfig(t, func(tc *config.Tools) {
		tc.MCP = []config.MCPServer{{Name: "everything", Command: bin, Args: []string{"stdio"}}}
		tc.PerTool = map[string]config.ToolLimits{"everything__*": {Concurrency: 3, Queue: 200}}
	})
	sys, err := Build(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	shutdown(t, sys)
	errs := make(chan error, 100)
	var wg sync.WaitGroup
	for i := range 100 {
		wg.Go(func() {
			msg := fmt.Sprintf("call %d", i)
			res, _, err := sys.Kernel.Do(t.Context(), kernel.Call{Agent: "a", Module: sched.Tool, Op: "call",
				Resource: "everything__echo", Args: json.RawMessage(fmt.Sprintf(`{"message": %q}`, msg))})
			if err == nil && !strings.Contains(res.(tool.Result).Content, msg) {
				err = fmt.Errorf("echo of %q answered %q", msg, res.(tool.Result).Content)
			}
			errs <- err
		})
	}
	res, _, err := sys.Kernel.Do(t.Context(), kernel.Call{Agent: "b", Module: sched.Tool, Op: "call",
		Resource: "calculator", Args: json.RawMessage(`{"expression": "6*7"}`)})
	if err != nil || res.(tool.Result).Content != "42" {
		t.Fatalf("calculator beside the busy server: %+v %v", res, err)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	for _, s := range sys.Tools.Stats() {
		if s.Name == "everything__echo" && (s.PeakInflight != 3 || s.Calls != 100 || s.Errors != 0) {
			t.Fatalf("echo: peak %d calls %d errors %d; want the limit of 3 reached and held", s.PeakInflight, s.Calls, s.Errors)
		}
	}
}
