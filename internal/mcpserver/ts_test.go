package mcpserver

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestTypeScriptClient runs testdata/ts-client.mjs, the official TypeScript MCP client
// (@modelcontextprotocol/sdk, installed in test/e2e/mcp-npm by `make test`), against
// Handler on a loopback server.
func TestTypeScriptClient(t *testing.T) {
	sdk, err := filepath.Abs(filepath.Join("..", "..", "test", "e2e", "mcp-npm", "node_modules", "@modelcontextprotocol", "sdk"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(sdk, "package.json")); err != nil {
		skipOrFail(t, "the TypeScript MCP SDK is not installed: run `make test`, or `npm ci` in test/e2e/mcp-npm")
	}
	node, err := exec.LookPath("node")
	if err != nil {
		skipOrFail(t, "node is not on PATH: the TypeScript client test needs Node.js 20 or later")
	}

	f := newFake()
	srv := serveHTTP(t, f)
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, filepath.Join("testdata", "ts-client.mjs"))
	cmd.Env = append(os.Environ(), "AIOS_MCP_SDK_DIR="+sdk, "AIOS_MCP_URL="+srv.URL+"/", "AIOS_AGENT=ts-agent")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Run(); err != nil {
		t.Fatalf("node ts-client.mjs: %v\nstderr:\n%s\nstdout:\n%s", err, stderr.String(), stdout.String())
	}

	var out struct {
		Protocol string
		Server   struct{ Name string }
		Tools    []struct {
			Name        string
			Annotations map[string]any
			Required    []string
		}
		Echo, BadInput struct {
			Text    string
			IsError bool
		}
		Stats   struct{ Structured map[string]any }
		Unknown struct {
			Code    *int
			Message string
		}
	}
	if err := json.Unmarshal(stdout.Bytes(), &out); err != nil {
		t.Fatalf("summary: %v\n%s", err, stdout.String())
	}
	t.Logf("TypeScript client: %s", stdout.String())

	if out.Protocol == "" || out.Server.Name != "aios" {
		t.Errorf("protocol %q server %q", out.Protocol, out.Server.Name)
	}
	var names []string
	for _, tl := range out.Tools {
		names = append(names, tl.Name)
		if tl.Name == "echo" && (tl.Annotations["title"] != "Echo" || tl.Annotations["readOnlyHint"] != true || strings.Join(tl.Required, ",") != "text") {
			t.Errorf("echo as listed: %+v", tl)
		}
	}
	if len(names) != 5 {
		t.Errorf("tools %v, want the fake kernel's 5", names)
	}
	if out.Echo.Text != "from typescript" || out.Echo.IsError {
		t.Errorf("echo: %+v", out.Echo)
	}
	if !out.BadInput.IsError || !strings.HasPrefix(out.BadInput.Text, "error caller_bad_request: ") {
		t.Errorf("echo with bad input: %+v, want an error result naming caller_bad_request", out.BadInput)
	}
	if out.Stats.Structured["calls"] != float64(3) {
		t.Errorf("stats: %+v", out.Stats)
	}
	if out.Unknown.Code == nil || *out.Unknown.Code != -32602 {
		t.Errorf("unknown tool: %+v, want JSON-RPC -32602", out.Unknown)
	}
	for _, c := range f.recorded() {
		if c.Agent != "ts-agent" {
			t.Errorf("%s called as %q, want ts-agent", c.Name, c.Agent)
		}
	}
}

// skipOrFail skips a test whose outside dependency is missing, unless
// AIOS_E2E_REQUIRED=1 says that a run without it does not count.
func skipOrFail(t *testing.T, msg string) {
	t.Helper()
	if os.Getenv("AIOS_E2E_REQUIRED") == "1" {
		t.Fatalf("%s (AIOS_E2E_REQUIRED=1, so this is a failure, not a skip)", msg)
	}
	t.Skip(msg)
}
