package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aios-go/aios/api"
	"github.com/aios-go/aios/internal/access"
	"github.com/aios-go/aios/internal/agents"
)

// keyedAgentEnv makes this test binary the agent of the tests below (TestMain).
const keyedAgentEnv = "AIOS_TEST_KEYED_AGENT"

// keyedAgent is that agent: it makes one syscall with the key the runtime gave it, and
// prints as its result the kernel's answer and the keys it found.
func keyedAgent() int {
	key := os.Getenv(agents.EnvAgentKey)
	body, _ := json.Marshal(map[string]any{"agent_name": os.Getenv(agents.EnvAgent), "query_type": "llm",
		"query_data": map[string]any{"messages": []map[string]string{{"role": "user", "content": "hi"}}, "max_new_tokens": 3}})
	req, err := http.NewRequest(http.MethodPost, os.Getenv(agents.EnvKernelURL)+"/query", strings.NewReader(string(body)))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	req.Header.Set("Authorization", "Bearer "+key)
	status := 0
	if resp, err := http.DefaultClient.Do(req); err != nil {
		fmt.Fprintln(os.Stderr, err)
	} else {
		status = resp.StatusCode
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		fmt.Fprintln(os.Stderr, "kernel answered", status, strings.TrimSpace(string(b)))
	}
	out, _ := json.Marshal(map[string]any{"status": status, "key": key,
		"openai": os.Getenv("OPENAI_API_KEY"), "anthropic": os.Getenv("ANTHROPIC_API_KEY")})
	fmt.Println(agents.ResultMarker + string(out))
	return 0
}

type keyedResult struct {
	Status    int    `json:"status"`
	Key       string `json:"key"`
	OpenAI    string `json:"openai"`
	Anthropic string `json:"anthropic"`
}

// authKernel serves a kernel with access.auth on and agents.dirs holding the agent
// "keyed"; it returns its URL, an admin key bootstrapped on its store, and the agent's
// folder.
func authKernel(t *testing.T) (base, adminKey, agentDir string) {
	t.Helper()
	t.Setenv("AIOS_ADMIN_KEY", "") // only what a test passes
	dataDir := t.TempDir()
	m, err := access.Open(context.Background(), access.Options{Store: access.StoreConfig{Path: filepath.Join(dataDir, "access.db")}})
	if err != nil {
		t.Fatal(err)
	}
	adminKey, _, err = m.Keys.Issue(context.Background(), access.KindAdmin, "ops")
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	agentDir = filepath.Join(root, "keyed")
	if err := os.MkdirAll(agentDir, 0o755); err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(map[string]any{"name": "keyed", "command": []string{self}, "env": map[string]string{keyedAgentEnv: "1"}})
	if err := os.WriteFile(filepath.Join(agentDir, agents.ManifestFile), b, 0o644); err != nil {
		t.Fatal(err)
	}
	base, stop := startServe(t, map[string]any{"data_dir": dataDir, "access.auth": true, "agents.dirs": []string{root}})
	t.Cleanup(stop)
	return base, adminKey, agentDir
}

// call sends a request with key as the bearer token and returns the status and body.
func call(t *testing.T, method, url, key, body string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// llmQuery is a syscall an agent key may make.
func llmQuery(agent string) string {
	return `{"agent_name":"` + agent + `","query_type":"llm","query_data":{"messages":[{"role":"user","content":"hi"}],"max_new_tokens":3}}`
}

// With access.auth on, a run the kernel starts (POST /agents/submit) gets its own agent
// key in AIOS_AGENT_KEY, OPENAI_API_KEY and ANTHROPIC_API_KEY; a syscall made with it
// succeeds; the unregistered agent was registered in tenant default with no groups;
// once the run has ended, the key gets 401. A disabled agent's run does not start.
func TestSubmittedRunGetsItsOwnKey(t *testing.T) {
	base, admin, _ := authKernel(t)
	submit := `{"agent_id": "keyed", "agent_config": {"task": "use your key"}}`
	if st, _ := call(t, "POST", base+"/agents/submit", "", submit); st != http.StatusUnauthorized {
		t.Fatalf("submit without a key: %d", st)
	}
	st, b := call(t, "POST", base+"/agents/submit", admin, submit)
	if st != http.StatusOK {
		t.Fatalf("submit: %d %s", st, b)
	}
	var sub struct {
		ExecutionID int64 `json:"execution_id"`
	}
	if err := json.Unmarshal(b, &sub); err != nil {
		t.Fatal(err)
	}
	var rec api.AgentRun
	deadline := time.Now().Add(60 * time.Second)
	for {
		st, b := call(t, "GET", fmt.Sprintf("%s/agents/%d/status", base, sub.ExecutionID), admin, "")
		if st != http.StatusOK || json.Unmarshal(b, &rec) != nil {
			t.Fatalf("status: %d %s", st, b)
		}
		if rec.State != api.AgentQueued && rec.State != api.AgentRunning {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the run did not end: %+v", rec)
		}
		time.Sleep(20 * time.Millisecond)
	}
	var res keyedResult
	if rec.State != api.AgentExited || json.Unmarshal(rec.Result, &res) != nil {
		t.Fatalf("run: %+v", rec)
	}
	if res.Status != http.StatusOK || !strings.HasPrefix(res.Key, "aios_agent_") || res.OpenAI != res.Key || res.Anthropic != res.Key {
		t.Fatalf("the agent saw %+v", res)
	}
	if st, b := call(t, "POST", base+"/query", res.Key, llmQuery("keyed")); st != http.StatusUnauthorized {
		t.Fatalf("the run's key after its end: %d %s", st, b)
	}

	st, b = call(t, "GET", base+"/admin/agents", admin, "")
	var list struct {
		Agents []access.Agent `json:"agents"`
	}
	if st != http.StatusOK || json.Unmarshal(b, &list) != nil || len(list.Agents) != 1 ||
		list.Agents[0].Name != "keyed" || list.Agents[0].Tenant != access.DefaultTenant || len(list.Agents[0].Groups) != 0 {
		t.Fatalf("agents: %d %s", st, b)
	}
	st, b = call(t, "GET", base+"/admin/audit?who=kernel&action=key.issue", admin, "")
	if st != http.StatusOK || !strings.Contains(string(b), `"program":"`+rec.Program+`"`) {
		t.Errorf("the kernel's issue is not in the audit log: %d %s", st, b)
	}

	if st, b := call(t, "PATCH", base+"/admin/agents/keyed", admin, `{"disabled": true}`); st != http.StatusOK {
		t.Fatalf("disable: %d %s", st, b)
	}
	if st, b := call(t, "POST", base+"/agents/submit", admin, submit); st != http.StatusForbidden || !strings.Contains(string(b), "disabled") {
		t.Fatalf("submit of a disabled agent: %d %s", st, b)
	}
}

// `aios agents run` against a kernel with auth on: with an admin key the run gets its
// own key through the admin API, revoked when the run ends; without one it refuses to
// start, naming --admin-key and AIOS_ADMIN_KEY.
func TestAgentsRunGetsItsOwnKey(t *testing.T) {
	base, admin, dir := authKernel(t)
	out, stderr, err := runAgentsCmd(context.Background(), "run", dir, "--task", "x", "--url", base, "--admin-key", admin)
	if err != nil {
		t.Fatalf("%v\n%s", err, stderr)
	}
	var res keyedResult
	if err := json.Unmarshal([]byte(out), &res); err != nil || res.Status != http.StatusOK || !strings.HasPrefix(res.Key, "aios_agent_") ||
		res.OpenAI != res.Key {
		t.Fatalf("stdout %q (%v)\n%s", out, err, stderr)
	}
	if !strings.Contains(stderr.String(), "agent keyed registered in tenant default") {
		t.Errorf("stderr does not say the agent was registered: %s", stderr)
	}
	if st, b := call(t, "POST", base+"/query", res.Key, llmQuery("keyed")); st != http.StatusUnauthorized {
		t.Fatalf("the run's key after its end: %d %s", st, b)
	}
	// The agent is registered now: the next run gets another key.
	out, stderr, err = runAgentsCmd(context.Background(), "run", dir, "--task", "x", "--url", base, "--admin-key", admin)
	var again keyedResult
	if err != nil || json.Unmarshal([]byte(out), &again) != nil || again.Status != http.StatusOK || again.Key == res.Key {
		t.Fatalf("second run: %v %q\n%s", err, out, stderr)
	}

	_, _, err = runAgentsCmd(context.Background(), "run", dir, "--task", "x", "--url", base)
	if err == nil || !strings.Contains(err.Error(), "--admin-key") || !strings.Contains(err.Error(), "AIOS_ADMIN_KEY") {
		t.Fatalf("without an admin key: %v", err)
	}
	if st, b := call(t, "PATCH", base+"/admin/agents/keyed", admin, `{"disabled": true}`); st != http.StatusOK {
		t.Fatalf("disable: %d %s", st, b)
	}
	_, _, err = runAgentsCmd(context.Background(), "run", dir, "--task", "x", "--url", base, "--admin-key", admin)
	if err == nil || !strings.Contains(err.Error(), "disabled") {
		t.Fatalf("a disabled agent: %v", err)
	}
}

// The commands that call admin routes send the admin key, and a refusal names
// --admin-key and AIOS_ADMIN_KEY: no key (401), a key the kernel does not know (401),
// an agent's key (403).
func TestAdminCommandsSendTheKey(t *testing.T) {
	base, admin, _ := authKernel(t)
	st, b := call(t, "POST", base+"/admin/agents", admin, `{"name": "alice"}`)
	var added struct {
		Key string `json:"key"`
	}
	if st != http.StatusCreated || json.Unmarshal(b, &added) != nil {
		t.Fatalf("add alice: %d %s", st, b)
	}
	commands := map[string]func(key string) (string, error){
		"agents ps": func(key string) (string, error) {
			out, _, err := runAgentsCmd(context.Background(), "ps", "--url", base, "--admin-key", key)
			return out, err
		},
		"top": func(key string) (string, error) {
			var out strings.Builder
			cmd := topCmd()
			cmd.SetOut(&out)
			cmd.SetArgs([]string{"--once", "--url", base, "--admin-key", key})
			err := cmd.ExecuteContext(context.Background())
			return out.String(), err
		},
		"audit verify": func(key string) (string, error) {
			var out strings.Builder
			cmd := auditCmd()
			cmd.SetOut(&out)
			cmd.SetArgs([]string{"verify", "--url", base, "--admin-key", key})
			err := cmd.ExecuteContext(context.Background())
			return out.String(), err
		},
	}
	for name, run := range commands {
		out, err := run(admin)
		if err != nil || out == "" {
			t.Errorf("%s with the admin key: %v %q", name, err, out)
		}
		for _, c := range []struct{ key, want string }{
			{"", "requires an admin key (401"},
			{"aios_admin_0123456789abcdef_" + strings.Repeat("x", 43), "refused the admin key (401"},
			{added.Key, "may not use the kernel's admin routes (403"},
		} {
			_, err := run(c.key)
			if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "--admin-key") ||
				!strings.Contains(err.Error(), "AIOS_ADMIN_KEY") {
				t.Errorf("%s with key %q: %v, want %q and the flag and variable named", name, c.key, err, c.want)
			}
		}
	}
}
