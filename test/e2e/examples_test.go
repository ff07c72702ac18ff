package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aios-go/aios/api"
	"github.com/aios-go/aios/internal/agents"
	"github.com/aios-go/aios/internal/testnpm"
)

// The examples in examples/, each run against the binary on the simulated core as a user
// would run them: through the agent runtime (POST /agents/submit, `aios agents run`).
// Each uses an LLM call, memory, storage and a tool through the kernel; the tests check
// the result each printed and that the kernel accounted the agent's syscalls.

// exampleResult is what the examples print as their result.
type exampleResult struct {
	AgentName string  `json:"agent_name"`
	Result    string  `json:"result"`
	File      *string `json:"file"`
	FileBytes int     `json:"file_bytes"`
	MemoryID  string  `json:"memory_id"`
	Recalled  int     `json:"recalled"`
	// Per example: the calculator's answer under its own name.
	Budget   string `json:"budget"`
	Cost     string `json:"cost"`
	Requests int    `json:"requests"`
}

// agentsRun runs `aios agents run dir --task task` against k and decodes the result it
// prints on stdout; the agent's own output, on stderr, is returned for failures.
func agentsRun(t *testing.T, k *kernel, dir, task string, flags ...string) (exampleResult, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, aiosBinary(t), append([]string{"agents", "run", dir, "--task", task, "--url", k.URL}, flags...)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Run(); err != nil {
		t.Fatalf("aios agents run %s: %v\nstdout:\n%s\nstderr:\n%s", dir, err, stdout.String(), stderr.String())
	}
	var res exampleResult
	if err := json.Unmarshal(stdout.Bytes(), &res); err != nil {
		t.Fatalf("aios agents run %s printed no JSON result (%v):\n%s\nstderr:\n%s", dir, err, stdout.String(), stderr.String())
	}
	return res, stderr.String()
}

// kernelGet decodes GET url (as agent, when set) into out.
func kernelGet(t *testing.T, url, agent string, out any) {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	if agent != "" {
		req.Header.Set(api.HeaderAgent, agent)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %s: %s", url, resp.Status, b)
	}
	if s, ok := out.(*string); ok {
		*s = string(b)
		return
	}
	if err := json.Unmarshal(b, out); err != nil {
		t.Fatalf("GET %s: %v: %s", url, err, b)
	}
}

// checkAccounted: the kernel charged the agent's LLM calls to it (and to program, when
// given), and its tool calls reached the calculator.
func checkAccounted(t *testing.T, k *kernel, agent, program string, calculatorCalls int64) {
	t.Helper()
	var usage api.UsageReport
	kernelGet(t, k.URL+"/admin/usage", "", &usage)
	if u, ok := usage.Agents[agent]; !ok || u.Calls == 0 || u.CompletionTokens == 0 {
		t.Errorf("/admin/usage has no LLM calls of %s: %+v", agent, usage.Agents)
	}
	if program != "" {
		if u, ok := usage.Sessions[program]; !ok || u.Calls == 0 {
			t.Errorf("/admin/usage has no LLM calls of program %s: %+v", program, usage.Sessions)
		}
	}
	var tools struct {
		Tools []struct {
			Name  string `json:"name"`
			Calls int64  `json:"calls"`
		} `json:"tools"`
	}
	kernelGet(t, k.URL+"/admin/tools", "", &tools)
	for _, tl := range tools.Tools {
		if tl.Name == "calculator" {
			if tl.Calls < calculatorCalls {
				t.Errorf("/admin/tools: calculator called %d times, want at least %d", tl.Calls, calculatorCalls)
			}
			return
		}
	}
	t.Errorf("/admin/tools lists no calculator: %+v", tools)
}

func checkResult(t *testing.T, res exampleResult, agent string) {
	t.Helper()
	if res.AgentName != agent || res.Result == "" || res.File == nil || res.FileBytes == 0 || res.MemoryID == "" {
		t.Errorf("result of %s: %+v", agent, res)
	}
}

// examplesKernel starts the binary with agents.dirs naming the examples folder.
func examplesKernel(t *testing.T) *kernel {
	t.Helper()
	cfg := filepath.Join(t.TempDir(), "aios.yaml")
	body := "agents:\n  dirs: [" + filepath.Join(repoRoot(t), "examples") + "]\n"
	if err := os.WriteFile(cfg, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return startKernel(t, "--config", cfg)
}

// TestExamplesPythonAIOS: the AIOS agent folder, submitted to the kernel by agent_id
// (POST /agents/submit, then its status until it completes) and run by `aios agents
// run`; the second run recalls the note the first one left in memory.
func TestExamplesPythonAIOS(t *testing.T) {
	if _, err := exec.LookPath("python3"); err != nil {
		skipOrFail(t, "python3 is not on PATH: the AIOS example agent is Python")
	}
	k := examplesKernel(t)

	resp, err := http.Post(k.URL+"/agents/submit", "application/json",
		strings.NewReader(`{"agent_id": "python-aios", "agent_config": {"task": "A weekend in Lisbon for two"}}`))
	if err != nil {
		t.Fatal(err)
	}
	var sub api.AgentSubmitResponse
	err = json.NewDecoder(resp.Body).Decode(&sub)
	resp.Body.Close()
	if err != nil || resp.StatusCode != 200 || sub.Status != "success" || sub.AgentName != "trip_planner" {
		t.Fatalf("submit: %s %+v (%v)", resp.Status, sub, err)
	}
	// Nothing tells a client that a run ended but its status: poll it, as AIOS's SDK does.
	var st api.AgentStatus
	deadline := time.Now().Add(2 * time.Minute)
	for {
		kernelGet(t, k.URL+"/agents/"+strconv.FormatInt(sub.ExecutionID, 10)+"/status", "", &st)
		if st.Status != "running" || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	var logs api.AgentLogs
	kernelGet(t, k.URL+"/agents/"+strconv.FormatInt(sub.ExecutionID, 10)+"/logs", "", &logs)
	if st.Status != "completed" {
		t.Fatalf("the submitted run: %+v\nlogs: %+v", st, logs)
	}
	var first exampleResult
	if err := json.Unmarshal(st.Result, &first); err != nil {
		t.Fatalf("result %s: %v", st.Result, err)
	}
	checkResult(t, first, "trip_planner")
	if first.Budget != "900" || first.Recalled != 0 {
		t.Errorf("first run: %+v", first)
	}
	if len(logs.Lines) == 0 || !strings.Contains(logs.Lines[len(logs.Lines)-1].Text, "planned 'A weekend in Lisbon for two'") {
		t.Errorf("logs: %+v", logs)
	}
	checkAccounted(t, k, "trip_planner", sub.Program, 1)

	second, stderr := agentsRun(t, k, filepath.Join(repoRoot(t), "examples", "python-aios"), "A weekend in Lisbon for four")
	checkResult(t, second, "trip_planner")
	if second.Recalled == 0 {
		t.Errorf("the second run recalled nothing of the first: %+v\n%s", second, stderr)
	}
	checkAccounted(t, k, "trip_planner", "", 2)

	// The plan is in the agent's storage.
	var plan string
	kernelGet(t, k.URL+"/v1/storage/files/"+*second.File, "trip_planner", &plan)
	if !strings.Contains(plan, "A weekend in Lisbon for four") {
		t.Errorf("stored plan: %q", plan)
	}
}

// TestExamplesJSOpenAIAgents: the @openai/agents example on the Responses API, run by
// `aios agents run` from its manifest. The example imports its packages by name; the
// test gives it the ones `make test` installs in test/e2e/openai-npm (the same pinned
// versions) by running a copy of it beside a link to that node_modules, since ES modules
// resolve packages from the importing file's folder and ignore NODE_PATH.
func TestExamplesJSOpenAIAgents(t *testing.T) {
	for _, pkg := range []string{"openai", "@openai/agents", "zod"} {
		testnpm.Package(t, "openai-npm", pkg)
	}
	testnpm.Node(t)
	src := filepath.Join(repoRoot(t), "examples", "js-openai-agents")
	dir := filepath.Join(t.TempDir(), "js-openai-agents")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"agent.mjs", "package.json", agents.ManifestFile} {
		b, err := os.ReadFile(filepath.Join(src, f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, f), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink(filepath.Join(testnpm.Folder("openai-npm"), "node_modules"), filepath.Join(dir, "node_modules")); err != nil {
		t.Fatal(err)
	}
	checkPins(t, src, testnpm.Folder("openai-npm"))

	k := startKernel(t)
	res, stderr := agentsRun(t, k, dir, "Plan a picnic for six")
	checkResult(t, res, "js-openai-agents")
	// A function-tool round trip is two model requests through /v1/responses.
	if res.Budget != "39" || res.Requests < 2 {
		t.Errorf("result: %+v\n%s", res, stderr)
	}
	program := strings.TrimSuffix(strings.TrimPrefix(*res.File, "plans/"), ".md")
	checkAccounted(t, k, "js-openai-agents", program, 1)
	var plan string
	kernelGet(t, k.URL+"/v1/storage/files/"+*res.File, "js-openai-agents", &plan)
	if !strings.Contains(plan, "Budget: 39") {
		t.Errorf("stored plan: %q", plan)
	}
}

// checkPins: the example pins the versions the tests install, and its lockfile agrees
// with theirs on every package both hold.
func checkPins(t *testing.T, example, tested string) {
	t.Helper()
	type lock struct {
		Dependencies map[string]string `json:"dependencies"`
		Packages     map[string]struct {
			Version   string `json:"version"`
			Integrity string `json:"integrity"`
		} `json:"packages"`
	}
	read := func(p string) lock {
		var l lock
		b, err := os.ReadFile(p)
		if err == nil {
			err = json.Unmarshal(b, &l)
		}
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	want := read(filepath.Join(tested, "package.json")).Dependencies
	for name, v := range read(filepath.Join(example, "package.json")).Dependencies {
		if want[name] != v {
			t.Errorf("%s pins %s %s; the tests install %s", example, name, v, want[name])
		}
	}
	theirs := read(filepath.Join(tested, "package-lock.json")).Packages
	for path, p := range read(filepath.Join(example, "package-lock.json")).Packages {
		if q, ok := theirs[path]; path != "" && (!ok || q.Version != p.Version || q.Integrity != p.Integrity) {
			t.Errorf("%s/package-lock.json has %s %s; the tests install %s", example, path, p.Version, q.Version)
		}
	}
}

// TestExamplesGoSDK: the Go SDK example, built, and run by `aios agents run` from a
// manifest naming the binary (its own manifest runs `go run .`, for a checkout).
func TestExamplesGoSDK(t *testing.T) {
	dir := goSDKExample(t)
	k := startKernel(t)
	res, stderr := agentsRun(t, k, dir, "Estimate the cost of a bike trip")
	checkResult(t, res, "go-sdk-example")
	if res.Cost != "130.5" {
		t.Errorf("result: %+v\n%s", res, stderr)
	}
	program := strings.TrimSuffix(strings.TrimPrefix(*res.File, "estimates/"), ".md")
	if !strings.HasPrefix(program, "run-1-") {
		t.Errorf("the agent's program %q is not the runtime's", program)
	}
	checkAccounted(t, k, "go-sdk-example", program, 1)
}

// TestExamplesWithAccess: against a kernel with access.auth on, `aios agents run
// --admin-key` gives each run its own key, the Python and Go examples send it with every
// call (AIOS_AGENT_KEY), and they work as they do without auth; the runtime registered
// each agent, and each run's key is revoked once it ended.
func TestExamplesWithAccess(t *testing.T) {
	if _, err := exec.LookPath("python3"); err != nil {
		skipOrFail(t, "python3 is not on PATH: the AIOS example agent is Python")
	}
	goDir := goSDKExample(t)
	dir := t.TempDir()
	cfg, data := filepath.Join(dir, "aios.yaml"), filepath.Join(dir, "data")
	if err := os.WriteFile(cfg, []byte("access:\n  auth: true\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.CommandContext(t.Context(), aiosBinary(t), "admin", "key", "create", "--config", cfg, "--data-dir", data).Output()
	admin := strings.TrimSpace(string(out))
	if err != nil || !strings.HasPrefix(admin, "aios_admin_") {
		t.Fatalf("aios admin key create: %v %q", err, out)
	}
	k := startKernel(t, "--config", cfg, "--data-dir", data)

	py, stderr := agentsRun(t, k, filepath.Join(repoRoot(t), "examples", "python-aios"), "A weekend in Porto for two", "--admin-key", admin)
	checkResult(t, py, "trip_planner")
	if py.Budget != "900" {
		t.Errorf("python example: %+v\n%s", py, stderr)
	}
	gores, stderr := agentsRun(t, k, goDir, "Estimate the cost of a bike trip", "--admin-key", admin)
	checkResult(t, gores, "go-sdk-example")
	if gores.Cost != "130.5" {
		t.Errorf("go example: %+v\n%s", gores, stderr)
	}

	for _, agent := range []string{"trip_planner", "go-sdk-example"} {
		req, _ := http.NewRequest("GET", k.URL+"/admin/agents/"+agent+"/keys", nil)
		req.Header.Set("Authorization", "Bearer "+admin)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		var v struct {
			Keys []struct {
				Revoked time.Time `json:"revoked"`
			} `json:"keys"`
		}
		if resp.StatusCode != 200 || json.Unmarshal(b, &v) != nil || len(v.Keys) != 1 || v.Keys[0].Revoked.IsZero() {
			t.Errorf("%s's keys after its run: %d %s", agent, resp.StatusCode, b)
		}
	}
}

// goSDKExample builds examples/go-sdk and returns a folder whose manifest runs the
// binary (the example's own runs `go run .`, which needs the module's folder).
func goSDKExample(t *testing.T) string {
	t.Helper()
	root := repoRoot(t)
	if _, err := agents.Load(filepath.Join(root, "examples", "go-sdk")); err != nil {
		t.Fatalf("the example's manifest: %v", err)
	}
	bin := filepath.Join(t.TempDir(), "go-sdk-example")
	build := exec.Command("go", "build", "-o", bin, "./examples/go-sdk")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build ./examples/go-sdk: %v\n%s", err, out)
	}
	dir := filepath.Join(t.TempDir(), "go-sdk")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	manifest, _ := json.Marshal(map[string]any{"name": "go-sdk-example", "command": []string{bin}})
	if err := os.WriteFile(filepath.Join(dir, agents.ManifestFile), manifest, 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}
