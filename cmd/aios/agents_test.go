package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aios-go/aios/api"
	"github.com/aios-go/aios/internal/agents"
	"github.com/aios-go/aios/internal/kernel"
	"github.com/aios-go/aios/internal/llm/sim"
	"github.com/aios-go/aios/internal/llm/simcore"
	"github.com/aios-go/aios/internal/server"
)

// agentKernel serves a kernel on the simulated core with the agent runtime on, its
// agents dirs being root.
func agentKernel(t *testing.T, root string) (string, *agents.Runtime) {
	t.Helper()
	core, err := simcore.New(simcore.Config{Config: sim.Config{Model: "sim-test", Speed: 200}, MaxInflight: 8})
	if err != nil {
		t.Fatal(err)
	}
	k, err := kernel.New(kernel.Options{}, []kernel.CoreConfig{{Model: "sim-test", Backend: "sim", Core: core}})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewUnstartedServer(nil)
	rt, err := agents.New(agents.Options{KernelURL: agents.KernelURL(ts.Listener.Addr()), Dirs: []string{root}})
	if err != nil {
		t.Fatal(err)
	}
	ts.Config.Handler = server.New(k, server.Options{Agents: rt}).Handler()
	ts.Start()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = rt.Close(ctx)
		ts.Close()
		_ = k.Shutdown(ctx)
	})
	return ts.URL, rt
}

func shManifest(t *testing.T, dir, name, script string) string {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(map[string]any{"name": name, "command": []string{"sh", "-c", script}})
	if err := os.WriteFile(filepath.Join(dir, agents.ManifestFile), b, 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// lineWatch is a writer that hands on each line written, for waiting on an agent's
// output.
type lineWatch struct {
	mu    sync.Mutex
	buf   bytes.Buffer
	lines chan string
}

func (w *lineWatch) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	for _, l := range strings.SplitAfter(string(p), "\n") {
		if l = strings.TrimSuffix(l, "\n"); l != "" {
			select {
			case w.lines <- l:
			default:
			}
		}
	}
	return len(p), nil
}

func (w *lineWatch) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

func runAgentsCmd(ctx context.Context, args ...string) (stdout string, stderr *lineWatch, err error) {
	cmd := agentsCmd()
	var out bytes.Buffer
	stderr = &lineWatch{lines: make(chan string, 64)}
	cmd.SetOut(&out)
	cmd.SetErr(stderr)
	cmd.SetArgs(args)
	err = cmd.ExecuteContext(ctx)
	return out.String(), stderr, err
}

// TestAgentsRunPrintsTheResult: the agent's output goes to stderr, its result alone to
// stdout; a failing agent fails the command.
func TestAgentsRunPrintsTheResult(t *testing.T) {
	url, _ := agentKernel(t, t.TempDir())
	dir := shManifest(t, filepath.Join(t.TempDir(), "hello"), "hello",
		`echo "hello from $AIOS_AGENT, program $AIOS_PROGRAM"; echo "::aios-result::{\"task\": \"$AIOS_TASK\", \"kernel\": \"$AIOS_KERNEL_URL\"}"`)
	out, stderr, err := runAgentsCmd(context.Background(), "run", dir, "--task", "greet", "--url", url)
	if err != nil {
		t.Fatalf("%v\n%s", err, stderr)
	}
	var res map[string]string
	if err := json.Unmarshal([]byte(out), &res); err != nil || res["task"] != "greet" || res["kernel"] != url {
		t.Errorf("stdout %q (%v)", out, err)
	}
	if !strings.Contains(stderr.String(), "hello from hello, program run-1-") {
		t.Errorf("stderr %q", stderr)
	}

	out, _, err = runAgentsCmd(context.Background(), "run", dir, "--task", "greet", "--url", url, "--json")
	var rec api.AgentRun
	if err != nil || json.Unmarshal([]byte(out), &rec) != nil || rec.State != api.AgentExited || rec.AgentName != "hello" {
		t.Errorf("--json: %v %q", err, out)
	}

	bad := shManifest(t, filepath.Join(t.TempDir(), "bad"), "bad", "echo broken >&2; exit 4")
	if _, stderr, err := runAgentsCmd(context.Background(), "run", bad, "--task", "x", "--url", url); err == nil ||
		!strings.Contains(err.Error(), "agent bad failed: exit status 4") || !strings.Contains(stderr.String(), "broken") {
		t.Errorf("failing agent: %v, stderr %q", err, stderr)
	}
	if _, _, err := runAgentsCmd(context.Background(), "run", dir, "--url", url); err == nil || !strings.Contains(err.Error(), "--task") {
		t.Errorf("no task: %v", err)
	}
	if _, _, err := runAgentsCmd(context.Background(), "run", t.TempDir(), "--task", "x", "--url", url); err == nil || !strings.Contains(err.Error(), "not an agent package") {
		t.Errorf("not a package: %v", err)
	}
	if _, _, err := runAgentsCmd(context.Background(), "run", dir, "--task", "x", "--url", "http://127.0.0.1:1"); err == nil || !strings.Contains(err.Error(), "no kernel answers") {
		t.Errorf("no kernel: %v", err)
	}
}

// TestAgentsRunStopsOnInterrupt: when the command's context ends (Ctrl-C), the agent is
// stopped and the command fails saying so.
func TestAgentsRunStopsOnInterrupt(t *testing.T) {
	url, _ := agentKernel(t, t.TempDir())
	dir := shManifest(t, filepath.Join(t.TempDir(), "sleeper"), "sleeper", "echo up; exec sleep 1000")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	type result struct {
		err    error
		stderr *lineWatch
	}
	done := make(chan result, 1)
	lines := make(chan *lineWatch, 1)
	go func() {
		cmd := agentsCmd()
		w := &lineWatch{lines: make(chan string, 64)}
		lines <- w
		cmd.SetOut(&bytes.Buffer{})
		cmd.SetErr(w)
		cmd.SetArgs([]string{"run", dir, "--task", "x", "--url", url, "--kill-grace", "100ms"})
		done <- result{cmd.ExecuteContext(ctx), w}
	}()
	w := <-lines
	select {
	case l := <-w.lines:
		if l != "up" {
			t.Fatalf("first line %q", l)
		}
	case r := <-done:
		t.Fatalf("the command ended early: %v\n%s", r.err, r.stderr)
	}
	cancel()
	if r := <-done; r.err == nil || !strings.Contains(r.err.Error(), "cancelled") {
		t.Errorf("after the interrupt: %v", r.err)
	}
}

// TestAgentsPs lists the kernel's runs.
func TestAgentsPs(t *testing.T) {
	root := t.TempDir()
	shManifest(t, filepath.Join(root, "quick"), "quick-agent", `echo '::aios-result::"done"'`)
	url, rt := agentKernel(t, root)
	rec, err := rt.Submit(api.AgentSubmit{AgentID: "quick", AgentConfig: map[string]any{"task": "list me in ps"}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := rt.Wait(ctx, rec.ExecutionID); err != nil {
		t.Fatal(err)
	}
	out, _, err := runAgentsCmd(context.Background(), "ps", "--url", url)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[0], "ID") || !strings.Contains(lines[1], "quick-agent") ||
		!strings.Contains(lines[1], "exited") || !strings.Contains(lines[1], "list me in ps") {
		t.Errorf("ps:\n%s", out)
	}
	out, _, err = runAgentsCmd(context.Background(), "ps", "--url", url, "--json")
	var list api.AgentList
	if err != nil || json.Unmarshal([]byte(out), &list) != nil || len(list.Processes) != 1 || list.Processes[0].Status != "completed" {
		t.Errorf("ps --json: %v %s", err, out)
	}
}
