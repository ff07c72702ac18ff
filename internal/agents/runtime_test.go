package agents

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/aios-go/aios/api"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// hooks records what the runtime told the kernel, and hands each log line to whoever
// waits for it.
type hooks struct {
	mu        sync.Mutex
	cancelled map[string]error
	ended     []string
	lines     chan api.AgentLogLine
}

func newHooks() *hooks {
	return &hooks{cancelled: map[string]error{}, lines: make(chan api.AgentLogLine, 1024)}
}

func (h *hooks) opts(o Options) Options {
	o.Cancel = func(program string, cause error) {
		h.mu.Lock()
		h.cancelled[program] = cause
		h.mu.Unlock()
	}
	o.Ended = func(program string) {
		h.mu.Lock()
		h.ended = append(h.ended, program)
		h.mu.Unlock()
	}
	o.OnLog = func(_ int64, l api.AgentLogLine) {
		select {
		case h.lines <- l:
		default:
		}
	}
	if o.KernelURL == "" {
		o.KernelURL = "http://127.0.0.1:1"
	}
	return o
}

// waitLine blocks until an agent writes a line containing s.
func (h *hooks) waitLine(t *testing.T, s string) api.AgentLogLine {
	t.Helper()
	timeout := time.NewTimer(30 * time.Second)
	defer timeout.Stop()
	for {
		select {
		case l := <-h.lines:
			if strings.Contains(l.Text, s) {
				return l
			}
		case <-timeout.C:
			t.Fatalf("no log line with %q within 30s", s)
		}
	}
}

func newRuntime(t *testing.T, o Options) *Runtime {
	t.Helper()
	r, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if err := r.Close(ctx); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return r
}

// shAgent is an executable agent: sh running script in its own folder.
func shAgent(t *testing.T, name, script string, env map[string]string) *Package {
	t.Helper()
	dir := filepath.Join(t.TempDir(), name)
	writeJSON(t, filepath.Join(dir, ManifestFile), map[string]any{"name": name, "command": []string{"sh", "-c", script}, "env": env})
	p, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func wait(t *testing.T, r *Runtime, id int64) api.AgentRun {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	rec, err := r.Wait(ctx, id)
	if err != nil {
		t.Fatalf("run %d did not end: %v (%+v)", id, err, rec)
	}
	return rec
}

func logText(t *testing.T, r *Runtime, id int64) string {
	t.Helper()
	logs, ok := r.Logs(id, 0)
	if !ok {
		t.Fatalf("no logs of run %d", id)
	}
	var b strings.Builder
	for _, l := range logs.Lines {
		fmt.Fprintf(&b, "%s: %s\n", l.Stream, l.Text)
	}
	return b.String()
}

// TestExecAgentRuns: the environment points the agent at the kernel and hides the
// kernel's own secrets, the task arrives in AIOS_TASK and on stdin, stdout and stderr
// are logged, and the result line is the result.
func TestExecAgentRuns(t *testing.T) {
	t.Setenv("AIOS_TEST_SECRET", "do-not-leak")
	t.Setenv("AIOS_TEST_PASSED", "passed-through")
	h := newHooks()
	r := newRuntime(t, h.opts(Options{KernelURL: "http://127.0.0.1:8123/", PassEnv: []string{"AIOS_TEST_PASSED"}, Env: map[string]string{"FROM_CONFIG": "c"}}))
	script := `IFS= read -r task
echo "stdin=$task"
echo "env task=$AIOS_TASK agent=$AIOS_AGENT program=$AIOS_PROGRAM id=$AIOS_EXECUTION_ID key=[$AIOS_AGENT_KEY]"
echo "kernel=$AIOS_KERNEL_URL openai=$OPENAI_BASE_URL anthropic=$ANTHROPIC_BASE_URL okey=$OPENAI_API_KEY"
echo "secret=[$AIOS_TEST_SECRET] passed=$AIOS_TEST_PASSED manifest=$FROM_MANIFEST config=$FROM_CONFIG cwd=$(pwd)"
echo "config=$AIOS_CONFIG"
echo "to stderr" >&2
printf 'partial '
echo '::aios-result::{"answer": 42}'`
	pkg := shAgent(t, "env-agent", script, map[string]string{"FROM_MANIFEST": "m"})
	rec, err := r.Start(Spec{Package: pkg, Task: "count the stars", Config: map[string]any{"task": "count the stars", "extra": 1}})
	if err != nil {
		t.Fatal(err)
	}
	if rec.State != api.AgentQueued || rec.ExecutionID != 1 || !strings.HasPrefix(rec.Program, "run-1-") || rec.AgentID != pkg.Dir {
		t.Errorf("record at start: %+v", rec)
	}
	rec = wait(t, r, rec.ExecutionID)
	out := logText(t, r, rec.ExecutionID)
	if rec.State != api.AgentExited || rec.ExitCode == nil || *rec.ExitCode != 0 || rec.Error != "" {
		t.Fatalf("record: %+v\n%s", rec, out)
	}
	if string(rec.Result) != `{"answer": 42}` {
		t.Errorf("result %s", rec.Result)
	}
	for _, want := range []string{
		"stdout: stdin=count the stars",
		"stdout: env task=count the stars agent=env-agent program=" + rec.Program + " id=1 key=[]",
		"stdout: kernel=http://127.0.0.1:8123 openai=http://127.0.0.1:8123/v1 anthropic=http://127.0.0.1:8123 okey=aios",
		"stdout: secret=[] passed=passed-through manifest=m config=c cwd=" + pkg.Dir,
		`stdout: config={"extra":1,"task":"count the stars"}`,
		"stderr: to stderr",
		"stdout: partial \n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %q:\n%s", want, out)
		}
	}
	if rec.Started == nil || rec.Ended == nil || rec.Ended.Before(*rec.Started) || rec.PID == 0 {
		t.Errorf("times and pid: %+v", rec)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.cancelled) != 0 || len(h.ended) != 1 || h.ended[0] != rec.Program {
		t.Errorf("hooks: cancelled %v, ended %v", h.cancelled, h.ended)
	}
}

func TestFailingAgentIsFailed(t *testing.T) {
	r := newRuntime(t, newHooks().opts(Options{}))
	rec, err := r.Start(Spec{Package: shAgent(t, "bad", "echo oops >&2; exit 3", nil), Task: "t"})
	if err != nil {
		t.Fatal(err)
	}
	rec = wait(t, r, rec.ExecutionID)
	if rec.State != api.AgentFailed || rec.ExitCode == nil || *rec.ExitCode != 3 || rec.Error != "exit status 3" || rec.Restarts != 0 || rec.Result != nil {
		t.Errorf("record: %+v", rec)
	}
	if !strings.Contains(logText(t, r, rec.ExecutionID), "stderr: oops") {
		t.Error("stderr not logged")
	}
}

// TestRestartOnFailure: the agent fails twice, then succeeds; an on-failure policy
// restarts it with a doubling backoff and the record counts the restarts. Each
// attempt's lines carry its number.
func TestRestartOnFailure(t *testing.T) {
	r := newRuntime(t, newHooks().opts(Options{}))
	counter := filepath.Join(t.TempDir(), "n")
	script := `n=$(cat "$COUNTER" 2>/dev/null || echo 0); n=$((n+1)); echo $n > "$COUNTER"
echo "attempt $n"
[ $n -ge 3 ] && echo '::aios-result::"third time"' && exit 0
exit 1`
	pkg := shAgent(t, "flaky", script, map[string]string{"COUNTER": counter})
	rec, err := r.Start(Spec{Package: pkg, Task: "t", Restart: &api.AgentRestart{Policy: "on-failure", MaxRestarts: 5, BackoffSeconds: 0.01}})
	if err != nil {
		t.Fatal(err)
	}
	rec = wait(t, r, rec.ExecutionID)
	if rec.State != api.AgentExited || rec.Restarts != 2 || string(rec.Result) != `"third time"` || rec.Error != "" {
		t.Errorf("record: %+v\n%s", rec, logText(t, r, rec.ExecutionID))
	}
	logs, _ := r.Logs(rec.ExecutionID, 0)
	var attempts []string
	for _, l := range logs.Lines {
		if strings.HasPrefix(l.Text, "attempt ") {
			attempts = append(attempts, fmt.Sprintf("%d:%s", l.Attempt, l.Text))
		}
	}
	if strings.Join(attempts, ",") != "0:attempt 1,1:attempt 2,2:attempt 3" {
		t.Errorf("attempts %v", attempts)
	}

	// Out of restarts: failed, with the last failure.
	rec, err = r.Start(Spec{Package: shAgent(t, "always-bad", "exit 7", nil), Task: "t", Restart: &api.AgentRestart{Policy: "on-failure", MaxRestarts: 2, BackoffSeconds: 0.01}})
	if err != nil {
		t.Fatal(err)
	}
	rec = wait(t, r, rec.ExecutionID)
	if rec.State != api.AgentFailed || rec.Restarts != 2 || rec.Error != "exit status 7" {
		t.Errorf("record: %+v", rec)
	}
}

// pidGone reports whether pid has exited: no such process, or a zombie.
func pidGone(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return errors.Is(err, os.ErrNotExist) || syscall.Kill(pid, 0) == syscall.ESRCH
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i >= 0 && i+2 < len(s) && s[i+2] == 'Z'
}

// TestCancelKillsTheProcessGroup: an agent that ignores SIGTERM and has started a child
// of its own is cancelled: after the grace both are killed, the run is cancelled, and the
// kernel is told to cancel the program's syscalls.
func TestCancelKillsTheProcessGroup(t *testing.T) {
	h := newHooks()
	r := newRuntime(t, h.opts(Options{KillGrace: 100 * time.Millisecond}))
	script := `trap '' TERM
sleep 1000 &
echo "child $!"
while :; do sleep 1; done`
	rec, err := r.Start(Spec{Package: shAgent(t, "stubborn", script, nil), Task: "t"})
	if err != nil {
		t.Fatal(err)
	}
	child, err := strconv.Atoi(strings.TrimPrefix(h.waitLine(t, "child ").Text, "child "))
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := r.Get(rec.ExecutionID); got.State != api.AgentRunning || got.PID == 0 {
		t.Errorf("while it runs: %+v", got)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	rec, err = r.Cancel(ctx, rec.ExecutionID)
	if err != nil {
		t.Fatal(err)
	}
	if rec.State != api.AgentCancelled || !strings.Contains(rec.Error, "was cancelled") {
		t.Errorf("record: %+v", rec)
	}
	if !pidGone(rec.PID) {
		t.Errorf("the agent (pid %d) outlived its cancel", rec.PID)
	}
	// The child got SIGKILL with the group. Delivery is asynchronous and nothing tells
	// its end to anyone but its new parent, so this waits for it (a zombie counts as
	// dead: init may take a moment to reap it).
	deadline := time.Now().Add(10 * time.Second)
	for !pidGone(child) {
		if time.Now().After(deadline) {
			t.Fatalf("the agent's child (pid %d) outlived its cancel by 10s", child)
		}
		time.Sleep(10 * time.Millisecond)
	}
	h.mu.Lock()
	cause := h.cancelled[rec.Program]
	h.mu.Unlock()
	if api.KindOf(cause) != api.CallerCancelled {
		t.Errorf("kernel told to cancel program with %v", cause)
	}
	// Cancelling again changes nothing; an unknown run is not found.
	if again, err := r.Cancel(ctx, rec.ExecutionID); err != nil || again.State != api.AgentCancelled {
		t.Errorf("second cancel: %+v, %v", again, err)
	}
	if _, err := r.Cancel(ctx, 999); api.KindOf(err) != api.CallerNotFound {
		t.Errorf("cancel of an unknown run: %v", err)
	}
}

func TestTimeoutFailsTheRun(t *testing.T) {
	h := newHooks()
	r := newRuntime(t, h.opts(Options{}))
	rec, err := r.Start(Spec{Package: shAgent(t, "slow", "echo started; exec sleep 1000", nil), Task: "t", Timeout: 300 * time.Millisecond,
		Restart: &api.AgentRestart{Policy: "on-failure"}})
	if err != nil {
		t.Fatal(err)
	}
	rec = wait(t, r, rec.ExecutionID)
	if rec.State != api.AgentFailed || !strings.Contains(rec.Error, "did not finish within 300ms") || rec.Restarts != 0 {
		t.Errorf("record: %+v", rec)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if api.KindOf(h.cancelled[rec.Program]) != api.PolicyTimeout {
		t.Errorf("cancel hook: %v", h.cancelled)
	}
}

// TestLimitsAreSet: the agent reads its task first, so by then its limits are in force;
// the limits of a child it starts are read from /proc.
func TestLimitsAreSet(t *testing.T) {
	if _, err := os.Stat("/proc/self/limits"); err != nil {
		t.Skip("no /proc/self/limits: limits are set with Linux's prlimit")
	}
	r := newRuntime(t, newHooks().opts(Options{Limits: api.AgentLimits{MemoryMB: 4096, OpenFiles: 512}}))
	rec, err := r.Start(Spec{Package: shAgent(t, "limited", `IFS= read -r task; cat /proc/self/limits`, nil), Task: "t",
		Limits: api.AgentLimits{CPUSeconds: 30, OpenFiles: 64}})
	if err != nil {
		t.Fatal(err)
	}
	rec = wait(t, r, rec.ExecutionID)
	out := logText(t, r, rec.ExecutionID)
	if rec.State != api.AgentExited || rec.Limits != (api.AgentLimits{MemoryMB: 4096, CPUSeconds: 30, OpenFiles: 64}) {
		t.Fatalf("record: %+v\n%s", rec, out)
	}
	for _, want := range [][]string{
		{"Max cpu time", "30", "31", "seconds"},
		{"Max open files", "64", "64", "files"},
		{"Max address space", strconv.Itoa(4096 << 20), strconv.Itoa(4096 << 20), "bytes"},
	} {
		found := false
		for _, line := range strings.Split(out, "\n") {
			f := strings.Fields(strings.TrimPrefix(line, "stdout: "))
			if strings.HasPrefix(strings.TrimPrefix(line, "stdout: "), want[0]) && strings.Join(f[len(f)-3:], " ") == strings.Join(want[1:], " ") {
				found = true
			}
		}
		if !found {
			t.Errorf("no %v in\n%s", want, out)
		}
	}
	// A run may lower a limit, never raise one.
	if _, err := r.Start(Spec{Package: shAgent(t, "greedy", "true", nil), Task: "t", Limits: api.AgentLimits{MemoryMB: 8192}}); api.KindOf(err) != api.CallerBadRequest {
		t.Errorf("raising memory_mb: %v", err)
	}
}

// TestCPULimitKills: a busy loop with cpu_seconds 1 is stopped by the kernel's SIGXCPU.
func TestCPULimitKills(t *testing.T) {
	if _, err := os.Stat("/proc/self/limits"); err != nil {
		t.Skip("limits are set with Linux's prlimit")
	}
	r := newRuntime(t, newHooks().opts(Options{}))
	rec, err := r.Start(Spec{Package: shAgent(t, "spinner", `IFS= read -r task; while :; do :; done`, nil), Task: "t", Limits: api.AgentLimits{CPUSeconds: 1}})
	if err != nil {
		t.Fatal(err)
	}
	rec = wait(t, r, rec.ExecutionID)
	if rec.State != api.AgentFailed || !strings.Contains(rec.Error, "cpu_seconds limit of 1") {
		t.Errorf("record: %+v", rec)
	}
}

// TestQueuedWhileSlotsAreTaken: with one slot, a second run waits queued until the
// first ends.
func TestQueuedWhileSlotsAreTaken(t *testing.T) {
	h := newHooks()
	r := newRuntime(t, h.opts(Options{MaxRunning: 1, KillGrace: 100 * time.Millisecond}))
	a, err := r.Start(Spec{Package: shAgent(t, "a", "echo running-a; exec sleep 1000", nil), Task: "t"})
	if err != nil {
		t.Fatal(err)
	}
	b, err := r.Start(Spec{Package: shAgent(t, "b", "echo running-b; exec sleep 1000", nil), Task: "t"})
	if err != nil {
		t.Fatal(err)
	}
	// Either may win the slot; the other must wait for it.
	first, second := a, b
	if l := h.waitLine(t, "running-"); l.Text == "running-b" {
		first, second = b, a
	}
	if got, _ := r.Get(second.ExecutionID); got.State != api.AgentQueued || got.PID != 0 {
		t.Errorf("second run while the first holds the slot: %+v", got)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := r.Cancel(ctx, first.ExecutionID); err != nil {
		t.Fatal(err)
	}
	h.waitLine(t, "running-")
	if got, _ := r.Get(second.ExecutionID); got.State != api.AgentRunning {
		t.Errorf("second run after the first ended: %+v", got)
	}
	if list := r.List(); len(list) != 2 || list[0].ExecutionID != a.ExecutionID {
		t.Errorf("List: %+v", list)
	}
}

// TestCloseStopsEverything: Close cancels the runs, queued and running, and refuses new
// ones.
func TestCloseStopsEverything(t *testing.T) {
	h := newHooks()
	r, err := New(h.opts(Options{MaxRunning: 1, KillGrace: 50 * time.Millisecond}))
	if err != nil {
		t.Fatal(err)
	}
	running, _ := r.Start(Spec{Package: shAgent(t, "a", "trap '' TERM; echo up; while :; do sleep 1; done", nil), Task: "t"})
	h.waitLine(t, "up")
	queued, _ := r.Start(Spec{Package: shAgent(t, "b", "exec sleep 1000", nil), Task: "t"})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := r.Close(ctx); err != nil {
		t.Fatal(err)
	}
	for _, id := range []int64{running.ExecutionID, queued.ExecutionID} {
		if rec, _ := r.Get(id); rec.State != api.AgentCancelled || !strings.Contains(rec.Error, "shutting down") {
			t.Errorf("run %d after Close: %+v", id, rec)
		}
	}
	if _, err := os.Stat(r.tmp); !os.IsNotExist(err) {
		t.Errorf("launcher folder left behind: %v", err)
	}
	if _, err := r.Start(Spec{Package: shAgent(t, "c", "true", nil), Task: "t"}); api.KindOf(err) != api.KernelShuttingDown {
		t.Errorf("Start after Close: %v", err)
	}
}

// TestSubmitReadsAgentConfig: AIOS's agent_config gives the task and this kernel's
// timeout, limits and restart; anything malformed is the caller's error.
func TestSubmitReadsAgentConfig(t *testing.T) {
	root := t.TempDir()
	writeJSON(t, filepath.Join(root, "echo", ManifestFile), map[string]any{"name": "echo", "command": []string{"sh", "-c", `echo "::aios-result::\"$AIOS_TASK\""`}})
	r := newRuntime(t, newHooks().opts(Options{Dirs: []string{root}, Limits: api.AgentLimits{OpenFiles: 256}, Timeout: time.Hour}))
	rec, err := r.Submit(api.AgentSubmit{AgentID: "echo", AgentConfig: map[string]any{
		"task": "hello", "timeout": 60.0, "limits": map[string]any{"open_files": 128.0},
		"restart": map[string]any{"policy": "on-failure", "max_restarts": 2.0},
	}})
	if err != nil {
		t.Fatal(err)
	}
	rec = wait(t, r, rec.ExecutionID)
	if rec.State != api.AgentExited || string(rec.Result) != `"hello"` || rec.AgentID != "echo" || rec.TimeoutSeconds != 60 ||
		rec.Limits.OpenFiles != 128 || rec.Restart != (api.AgentRestart{Policy: "on-failure", MaxRestarts: 2, BackoffSeconds: 1}) {
		t.Errorf("record: %+v", rec)
	}
	for name, c := range map[string]struct {
		id   string
		cfg  map[string]any
		kind api.Kind
	}{
		"no task":        {"echo", map[string]any{}, api.CallerBadRequest},
		"task not text":  {"echo", map[string]any{"task": 3.0}, api.CallerBadRequest},
		"bad timeout":    {"echo", map[string]any{"task": "x", "timeout": -1.0}, api.CallerBadRequest},
		"long timeout":   {"echo", map[string]any{"task": "x", "timeout": "2h"}, api.CallerBadRequest},
		"raised limit":   {"echo", map[string]any{"task": "x", "limits": map[string]any{"open_files": 1024.0}}, api.CallerBadRequest},
		"unknown limit":  {"echo", map[string]any{"task": "x", "limits": map[string]any{"gpus": 1.0}}, api.CallerBadRequest},
		"bad policy":     {"echo", map[string]any{"task": "x", "restart": map[string]any{"policy": "always"}}, api.CallerBadRequest},
		"many restarts":  {"echo", map[string]any{"task": "x", "restart": map[string]any{"policy": "on-failure", "max_restarts": 99.0}}, api.CallerBadRequest},
		"huge task":      {"echo", map[string]any{"task": strings.Repeat("x", MaxTask+1)}, api.CallerTooLarge},
		"path trick":     {"../echo", map[string]any{"task": "x"}, api.CallerBadRequest},
		"unknown agent":  {"nobody", map[string]any{"task": "x"}, api.CallerNotFound},
		"outside a root": {"/bin", map[string]any{"task": "x"}, api.CallerNotFound},
	} {
		if rec, err := r.Submit(api.AgentSubmit{AgentID: c.id, AgentConfig: c.cfg}); api.KindOf(err) != c.kind {
			t.Errorf("%s: %+v, %v; want %s", name, rec, err, c.kind)
		}
	}
	if n := len(r.List()); n != 1 {
		t.Errorf("%d runs kept; refused submissions must start nothing", n)
	}
}

// TestAIOSFolderRunsOnPython: the launcher builds the entry's class with the agent's
// name, calls run(task), and returns its value; prints are logged, an exception fails
// the run with its traceback in the log.
func TestAIOSFolderRunsOnPython(t *testing.T) {
	if _, err := exec.LookPath("python3"); err != nil {
		t.Skip("python3 is not on PATH")
	}
	r := newRuntime(t, newHooks().opts(Options{}))
	code := `import os, sys

class TestAgent:
    def __init__(self, agent_name):
        self.agent_name = agent_name

    def run(self, task_input):
        print("working on", task_input)
        print("warning", file=sys.stderr)
        return {"agent_name": self.agent_name, "result": task_input.upper(),
                "program": os.environ["AIOS_PROGRAM"], "rounds": 1}
`
	pkg, err := Load(aiosFolder(t, t.TempDir(), "upper_agent", code))
	if err != nil {
		t.Fatal(err)
	}
	rec, err := r.Start(Spec{Package: pkg, Task: "shout this"})
	if err != nil {
		t.Fatal(err)
	}
	rec = wait(t, r, rec.ExecutionID)
	out := logText(t, r, rec.ExecutionID)
	var res map[string]any
	if err := json.Unmarshal(rec.Result, &res); err != nil || rec.State != api.AgentExited {
		t.Fatalf("record %+v (%v)\n%s", rec, err, out)
	}
	if res["agent_name"] != "upper_agent" || res["result"] != "SHOUT THIS" || res["program"] != rec.Program {
		t.Errorf("result %v", res)
	}
	if !strings.Contains(out, "stdout: working on shout this") || !strings.Contains(out, "stderr: warning") ||
		!strings.Contains(out, "requests==2.32.0") || strings.Contains(out, ResultMarker) {
		t.Errorf("log:\n%s", out)
	}
	if len(rec.Requirements) != 1 {
		t.Errorf("requirements %v", rec.Requirements)
	}

	failing, err := Load(aiosFolder(t, t.TempDir(), "broken", "class TestAgent:\n    def __init__(self, n): pass\n    def run(self, t): raise ValueError('no way')\n"))
	if err != nil {
		t.Fatal(err)
	}
	rec, err = r.Start(Spec{Package: failing, Task: "x"})
	if err != nil {
		t.Fatal(err)
	}
	rec = wait(t, r, rec.ExecutionID)
	if out := logText(t, r, rec.ExecutionID); rec.State != api.AgentFailed || *rec.ExitCode != 1 || !strings.Contains(out, "ValueError: no way") {
		t.Errorf("record %+v\n%s", rec, out)
	}
}

func TestLogRingKeepsTheNewest(t *testing.T) {
	r := newLogRing(3)
	for i := range 5 {
		r.add(api.AgentLogLine{Text: strconv.Itoa(i)})
	}
	var got []string
	for _, l := range r.tail(0) {
		got = append(got, l.Text)
	}
	if strings.Join(got, ",") != "2,3,4" || r.dropped != 2 {
		t.Errorf("ring %v, dropped %d", got, r.dropped)
	}
	if tail := r.tail(2); len(tail) != 2 || tail[0].Text != "3" {
		t.Errorf("tail(2) %v", tail)
	}
	r.add(api.AgentLogLine{Text: strings.Repeat("é", maxLogLine)})
	if l := r.tail(1)[0].Text; len(l) > maxLogLine+20 || !strings.HasSuffix(l, "[line cut]") {
		t.Errorf("long line kept as %d bytes", len(l))
	}
}

func TestLineWriterSplitsLines(t *testing.T) {
	var got []string
	w := &lineWriter{line: func(s string) { got = append(got, s) }}
	for _, chunk := range []string{"a", "b\nc\r\n\n", "d", strings.Repeat("x", maxLine), "\n", "tail"} {
		if n, err := w.Write([]byte(chunk)); err != nil || n != len(chunk) {
			t.Fatal(n, err)
		}
	}
	w.Flush()
	if len(got) != 4 || got[0] != "ab" || got[1] != "c" || !strings.HasPrefix(got[2], "dxxx") || got[3] != "tail" {
		t.Errorf("lines %q", got[:min(len(got), 2)])
	}
}

func TestKernelURL(t *testing.T) {
	for addr, want := range map[string]string{
		"127.0.0.1:8000": "http://127.0.0.1:8000",
		"0.0.0.0:8000":   "http://127.0.0.1:8000",
		"[::]:9000":      "http://[::1]:9000",
		"[::1]:9000":     "http://[::1]:9000",
	} {
		if got := KernelURL(fakeAddr(addr)); got != want {
			t.Errorf("KernelURL(%s) = %s, want %s", addr, got, want)
		}
	}
}

type fakeAddr string

func (a fakeAddr) Network() string { return "tcp" }
func (a fakeAddr) String() string  { return string(a) }
