package e2e

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aios-go/aios/internal/testnpm"
)

// uiAgent is the work one finished agent does before the browser opens the dashboard.
type uiAgent struct {
	LLM     int `json:"llm"`
	Storage int `json:"storage"`
	Tool    int `json:"tool"`
}

// TestUIDashboardInChromium starts the kernel binary with access.auth on (an admin key
// bootstrapped with `aios admin key create`, each agent registered with its own key),
// has agents make LLM, storage and tool calls through it, and, while one more agent
// keeps calling the LLM, runs ui-npm/ui-check.mjs: playwright-core drives the dashboard
// at /ui in Debian's headless chromium, signs in with the admin key (after an agent's
// key is refused), checks the agents, queues, cores, token counts and timeline it shows
// against the kernel's own answers, clicks through (an agent, a call, the filter),
// approves and denies deletes that wait in the approvals panel, signs out, and saves
// screenshots. They go to t.ArtifactDir() (kept with `go test -artifacts`), or to
// AIOS_UI_SCREENSHOTS when set.
func TestUIDashboardInChromium(t *testing.T) {
	testnpm.Package(t, "ui-npm", "playwright-core")
	node := testnpm.Node(t)
	browser := os.Getenv("CHROMIUM")
	if browser == "" {
		var err error
		if browser, err = exec.LookPath("chromium"); err != nil {
			skipOrFail(t, "chromium is not on PATH and CHROMIUM is not set: run `make chromium` (test/e2e/ui-npm/install-chromium.sh)")
		}
	}
	shots, kept := os.Getenv("AIOS_UI_SCREENSHOTS"), " (kept)"
	if shots == "" {
		shots = t.ArtifactDir()
		if f := flag.Lookup("test.artifacts"); f == nil || f.Value.String() != "true" {
			kept = " (removed after the test: run go test with -artifacts, or set AIOS_UI_SCREENSHOTS, to keep them)"
		}
	} else if err := os.MkdirAll(shots, 0o755); err != nil {
		t.Fatal(err)
	}

	// Two sequences at once on the one core, so calls queue; round robin with a short
	// slice, so long calls are preempted and the timeline shows it. Keys are required.
	dir := t.TempDir()
	cfg, data := filepath.Join(dir, "aios.yaml"), filepath.Join(dir, "data")
	yaml := "llms:\n  models:\n    - name: sim-llama3-8b\n      backend: sim\n      max_inflight: 2\naccess:\n  auth: true\n"
	if err := os.WriteFile(cfg, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	keyOut, err := exec.CommandContext(t.Context(), aiosBinary(t), "admin", "key", "create", "--config", cfg, "--data-dir", data).Output()
	admin := strings.TrimSpace(string(keyOut))
	if err != nil || !strings.HasPrefix(admin, "aios_admin_") {
		t.Fatalf("aios admin key create: %v %q", err, keyOut)
	}
	k := startKernel(t, "--config", cfg, "--data-dir", data, "--policy", "rr", "--time-slice", "100ms")
	hc := &http.Client{Transport: &http.Transport{}}
	defer hc.CloseIdleConnections()

	// approver is the agent whose deletes wait for the browser's decisions.
	const live, approver = "gamma", "dora"
	agents := map[string]uiAgent{"alpha": {LLM: 3, Storage: 2, Tool: 2}, "beta": {LLM: 2, Storage: 1, Tool: 3}}
	keys := map[string]string{}
	for _, name := range []string{"alpha", "beta", live, approver} {
		keys[name] = uiAddAgent(t, hc, k.URL, admin, name)
	}
	var wg sync.WaitGroup
	for name, a := range agents {
		wg.Go(func() {
			key := keys[name]
			for i := range max(a.LLM, a.Storage, a.Tool) {
				program := fmt.Sprintf("%s-task-%d", name, i%2)
				if i < a.LLM {
					uiQuery(t, hc, k.URL, key, fmt.Sprintf(`{"agent_name":%q,"query_type":"llm","query_data":{"messages":[{"role":"user","content":"plan step %d"}],"action_type":"chat","max_new_tokens":60,"session":%q}}`, name, i, program))
				}
				if i < a.Storage {
					uiQuery(t, hc, k.URL, key, fmt.Sprintf(`{"agent_name":%q,"query_type":"storage","query_data":{"query_class":"storage","operation_type":"write","params":{"file_path":"notes/%d.txt","content":"step %d"}}}`, name, i, i))
				}
				if i < a.Tool {
					uiQuery(t, hc, k.URL, key, fmt.Sprintf(`{"agent_name":%q,"query_type":"tool","query_data":{"tool_calls":[{"name":"calculator","parameters":{"expression":"%d*7"}}]}}`, name, i))
				}
			}
		})
	}
	// The approver's files, which the browser's script then deletes: each delete asks.
	files := []string{"reports/q1.md", "reports/q2.md", "reports/draft.md"}
	for _, f := range files {
		uiQuery(t, hc, k.URL, keys[approver], fmt.Sprintf(`{"agent_name":%q,"query_type":"storage","query_data":{"query_class":"storage","operation_type":"write","params":{"file_path":%q,"content":"figures"}}}`, approver, f))
	}
	wg.Wait()
	if t.Failed() {
		return
	}

	// gamma keeps three long LLM calls going until the browser is done: one more than
	// the core runs at once, so one queues and round robin preempts them in turn.
	ctx, stop := context.WithCancel(t.Context())
	var running sync.WaitGroup
	defer func() { stop(); running.Wait() }()
	for w := range 3 {
		running.Go(func() {
			for i := 0; ctx.Err() == nil; i++ {
				body := fmt.Sprintf(`{"model":"sim-llama3-8b","user":%q,"max_tokens":300,"messages":[{"role":"user","content":"write chapter %d"}]}`, live, i)
				req, _ := http.NewRequestWithContext(ctx, "POST", k.URL+"/v1/chat/completions", strings.NewReader(body))
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set("Authorization", "Bearer "+keys[live])
				req.Header.Set("X-AIOS-Session", fmt.Sprintf("%s-writer-%d", live, w))
				resp, err := hc.Do(req)
				if err != nil {
					if ctx.Err() == nil {
						t.Errorf("%s: %v", live, err)
					}
					return
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		})
	}

	want, _ := json.Marshal(agents)
	wantFiles, _ := json.Marshal(files)
	rctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(rctx, node, "ui-check.mjs")
	cmd.Dir = testnpm.Folder("ui-npm")
	cmd.Env = append(os.Environ(), "AIOS_URL="+k.URL, "CHROMIUM="+browser, "SCREENSHOTS="+shots,
		"AIOS_AGENTS="+string(want), "AIOS_LIVE_AGENT="+live, "AIOS_ADMIN_KEY="+admin,
		"AIOS_APPROVER="+approver, "AIOS_APPROVER_KEY="+keys[approver], "AIOS_APPROVER_FILES="+string(wantFiles))
	started := time.Now()
	out, err := runCmd(rctx, cmd)
	t.Logf("screenshots in %s%s", shots, kept)
	if err != nil {
		t.Fatalf("node ui-check.mjs: %v\n%s", err, out)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	t.Logf("the browser checked the dashboard in %v: %s", time.Since(started).Round(time.Millisecond), lines[len(lines)-1])
	for _, name := range []string{"signin.png", "dashboard.png", "agent-selected.png", "approvals.png", "dashboard-full.png"} {
		if st, err := os.Stat(filepath.Join(shots, name)); err != nil || st.Size() == 0 {
			t.Errorf("screenshot %s: %v", name, err)
		}
	}
}

// uiAddAgent registers an agent through the admin API and returns its key.
func uiAddAgent(t *testing.T, hc *http.Client, url, admin, name string) string {
	t.Helper()
	req, _ := http.NewRequest("POST", url+"/admin/agents", strings.NewReader(fmt.Sprintf(`{"name":%q}`, name)))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+admin)
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var v struct {
		Key string `json:"key"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&v); err != nil || resp.StatusCode != http.StatusCreated || v.Key == "" {
		t.Fatalf("POST /admin/agents %s: HTTP %d %v", name, resp.StatusCode, err)
	}
	return v.Key
}

// uiQuery posts one AIOS query with the agent's key and requires it to succeed.
// Storage and tool queries run in the agent's own program; LLM queries name theirs
// (query_data.session).
func uiQuery(t *testing.T, hc *http.Client, url, key, body string) {
	t.Helper()
	req, _ := http.NewRequest("POST", url+"/query", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := hc.Do(req)
	if err != nil {
		t.Error(err)
		return
	}
	defer resp.Body.Close()
	var r struct {
		Response struct {
			StatusCode int `json:"status_code"`
		} `json:"response"`
	}
	b, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(b, &r); err != nil || resp.StatusCode != 200 || r.Response.StatusCode != 200 {
		t.Errorf("POST /query %s: HTTP %d %s", body, resp.StatusCode, b)
	}
}
