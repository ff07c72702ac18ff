package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aios-go/aios/internal/testnpm"
)

// TestToolsEndToEnd starts the kernel binary with the npm reference server-everything
// configured as an MCP server, then: an AIOS tool query runs a built-in tool and the
// server's tool; the official TypeScript MCP client calls the kernel's own /mcp (tools
// listed, called, storage scoped to its agent, invalid arguments refused, unknown tool
// an error); the server is killed by PID and the kernel restarts it.
func TestToolsEndToEnd(t *testing.T) {
	everything := testnpm.Bin(t, "mcp-npm", "mcp-server-everything")
	testnpm.Package(t, "mcp-npm", "@modelcontextprotocol/sdk")
	node := testnpm.Node(t)
	cfg := filepath.Join(t.TempDir(), "aios.yaml")
	yaml := fmt.Sprintf("tools:\n  mcp:\n    - name: everything\n      command: %q\n      args: [stdio]\n", everything)
	if err := os.WriteFile(cfg, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	k := startKernel(t, "--config", cfg)

	var q struct {
		Response struct {
			StatusCode  int `json:"status_code"`
			ToolResults []struct {
				Content *string `json:"content"`
			} `json:"tool_results"`
		} `json:"response"`
	}
	postJSON(t, k.URL+"/query", `{"agent_name": "e2e", "query_type": "tool", "query_data": {"query_class": "tool",
		"tool_calls": [{"name": "everything/echo", "parameters": {"message": "hello"}}, {"name": "calculator", "parameters": {"expression": "2^10"}}]}}`, &q)
	if r := q.Response; r.StatusCode != 200 || len(r.ToolResults) != 2 || !strings.Contains(*r.ToolResults[0].Content, "hello") || *r.ToolResults[1].Content != "1024" {
		t.Fatalf("tool query: %+v", r)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, "kernel-client.mjs")
	cmd.Dir = testnpm.Folder("mcp-npm")
	cmd.Env = append(os.Environ(), "AIOS_MCP_URL="+k.URL+"/mcp", "AIOS_AGENT=mcp-agent")
	out, err := runCmd(ctx, cmd)
	if err != nil {
		t.Fatalf("node kernel-client.mjs: %v\n%s", err, out)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	var got struct {
		Tools      []string
		Calculator struct {
			Text    string
			IsError bool
		}
		Echo, Read, Invalid struct {
			Text    string
			IsError bool
		}
		EchoAnnotations map[string]any
		Unknown         string
	}
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &got); err != nil {
		t.Fatalf("%v:\n%s", err, out)
	}
	has := strings.Join(got.Tools, " ")
	for _, want := range []string{"calculator", "everything__echo", "storage_read", "memory_search"} {
		if !strings.Contains(has, want) {
			t.Errorf("tools over /mcp lack %s: %v", want, got.Tools)
		}
	}
	if got.Calculator.Text != "42" || got.Calculator.IsError || !strings.Contains(got.Echo.Text, "through the kernel") ||
		got.Read.Text == "" || !strings.Contains(got.Read.Text, "written over MCP") {
		t.Errorf("calls over /mcp: %+v", got)
	}
	if !got.Invalid.IsError || !strings.Contains(got.Invalid.Text, "expression") {
		t.Errorf("invalid arguments over /mcp: %+v", got.Invalid)
	}
	if !strings.Contains(got.Unknown, "no_such_tool") {
		t.Errorf("unknown tool over /mcp: %q", got.Unknown)
	}
	// The file was written in the MCP client's agent's namespace, not anyone else's.
	if code := getStatus(t, k.URL+"/v1/storage/files/mcp/note.txt", "mcp-agent"); code != 200 {
		t.Errorf("the MCP agent's file: HTTP %d", code)
	}
	if code := getStatus(t, k.URL+"/v1/storage/files/mcp/note.txt", "someone-else"); code != 404 {
		t.Errorf("another agent reads the MCP agent's file: HTTP %d", code)
	}

	// Crash and restart: kill the server by PID; the kernel brings it back.
	pid := mcpServer(t, k.URL).PID
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for st := mcpServer(t, k.URL); !st.Connected || st.PID == pid || st.Restarts < 1; st = mcpServer(t, k.URL) {
		if time.Now().After(deadline) {
			t.Fatalf("server not restarted: %+v", st)
		}
		time.Sleep(50 * time.Millisecond)
	}
	postJSON(t, k.URL+"/query", `{"agent_name": "e2e", "query_type": "tool", "query_data": {"tool_calls": [{"name": "everything__echo", "parameters": {"message": "again"}}]}}`, &q)
	if r := q.Response; r.StatusCode != 200 || !strings.Contains(*r.ToolResults[0].Content, "again") {
		t.Fatalf("after the restart: %+v", r)
	}
}

type mcpStatus struct {
	Connected bool `json:"connected"`
	PID       int  `json:"pid"`
	Restarts  int  `json:"restarts"`
}

func mcpServer(t *testing.T, url string) mcpStatus {
	t.Helper()
	var st struct {
		Servers []mcpStatus `json:"mcp_servers"`
	}
	resp, err := http.Get(url + "/admin/tools")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil || len(st.Servers) != 1 {
		t.Fatalf("/admin/tools: %v %+v", err, st)
	}
	return st.Servers[0]
}

func getStatus(t *testing.T, url, agent string) int {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	req.Header.Set("X-AIOS-Agent", agent)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func postJSON(t *testing.T, url, body string, out any) {
	t.Helper()
	resp, err := http.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("POST %s: HTTP %d", url, resp.StatusCode)
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		t.Fatal(err)
	}
}
