package agents

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/aios-go/aios/api"
)

// ResultMarker starts the line that carries an agent's result on stdout: the AIOS
// launcher prints run()'s return value after it as JSON, and any executable may do the
// same. The last such line wins; text before the marker on the same line is logged.
const ResultMarker = "::aios-result::"

// run is one agent run: its record, its log and the supervisor's handles.
type run struct {
	id      int64
	program string // fixed at Start, read without the lock
	pkg     *Package
	task    string
	env     []string
	key     string          // the run's API key, "" without Options.Keys
	revoke  func()          // ends key, once the run has ended for good
	ctx     context.Context // ends on cancel, timeout or Close
	cancel  context.CancelCauseFunc
	done    chan struct{} // closed when the run has ended for good

	mu   sync.Mutex
	rec  api.AgentRun
	logs *logRing
}

func (ru *run) snapshot() api.AgentRun {
	ru.mu.Lock()
	defer ru.mu.Unlock()
	rec := ru.rec
	if rec.Started != nil {
		t := *rec.Started
		rec.Started = &t
	}
	if rec.Ended != nil {
		t := *rec.Ended
		rec.Ended = &t
	}
	if rec.ExitCode != nil {
		c := *rec.ExitCode
		rec.ExitCode = &c
	}
	return rec
}

func (ru *run) ended() bool {
	select {
	case <-ru.done:
		return true
	default:
		return false
	}
}

// note logs a line of the runtime's own, on stderr of the run.
func (ru *run) note(attempt int, text string, hook func(int64, api.AgentLogLine)) {
	ru.line(attempt, "stderr", text, hook)
}

func (ru *run) line(attempt int, stream, text string, hook func(int64, api.AgentLogLine)) {
	l := api.AgentLogLine{Time: time.Now(), Stream: stream, Text: text, Attempt: attempt}
	ru.mu.Lock()
	ru.logs.add(l)
	ru.mu.Unlock()
	if hook != nil {
		hook(ru.id, l)
	}
}

// stdout handles a line of the agent's stdout: a result line, or a log line.
func (ru *run) stdout(attempt int, text string, hook func(int64, api.AgentLogLine)) {
	i := strings.Index(text, ResultMarker)
	if i < 0 {
		ru.line(attempt, "stdout", text, hook)
		return
	}
	if before := text[:i]; strings.TrimSpace(before) != "" {
		ru.line(attempt, "stdout", before, hook)
	}
	raw := strings.TrimSpace(text[i+len(ResultMarker):])
	res := json.RawMessage(raw)
	if !json.Valid(res) {
		// Not JSON: kept as a string rather than lost.
		res, _ = json.Marshal(raw)
	}
	ru.mu.Lock()
	ru.rec.Result = res
	ru.mu.Unlock()
}

// supervise drives a run from queued to its end: a slot, then attempts, restarted under
// an on-failure policy, until one succeeds, the policy gives up, or the run's context
// ends (cancel, timeout, Close).
func (r *Runtime) supervise(ru *run, restart api.AgentRestart) {
	defer r.wg.Done()
	defer ru.cancel(nil)
	select {
	case r.slots <- struct{}{}:
		defer func() { <-r.slots }()
	case <-ru.ctx.Done():
		r.end(ru, nil)
		return
	}
	backoff := time.Duration(restart.BackoffSeconds * float64(time.Second))
	for attempt := 0; ; attempt++ {
		permanent, err := r.attempt(ru, attempt)
		if ru.ctx.Err() != nil {
			r.end(ru, err)
			return
		}
		if err == nil || permanent || restart.Policy != "on-failure" || attempt >= restart.MaxRestarts {
			r.end(ru, err)
			return
		}
		ru.mu.Lock()
		ru.rec.State, ru.rec.Restarts, ru.rec.Error, ru.rec.PID = api.AgentQueued, attempt+1, err.Error(), 0
		ru.mu.Unlock()
		ru.note(attempt, fmt.Sprintf("aios: the agent failed (%v); restart %d of %d in %v", err, attempt+1, restart.MaxRestarts, backoff), r.opts.OnLog)
		t := time.NewTimer(backoff)
		select {
		case <-t.C:
		case <-ru.ctx.Done():
			t.Stop()
			r.end(ru, err)
			return
		}
		backoff = min(backoff*2, r.opts.MaxBackoff)
	}
}

// end records a run's outcome: err is its last attempt's failure (nil: success) unless
// the run's context ended, whose cause then decides.
func (r *Runtime) end(ru *run, err error) {
	state := api.AgentExited
	cause := context.Cause(ru.ctx)
	stopped := ru.ctx.Err() != nil
	switch {
	case stopped && api.KindOf(cause) == api.PolicyTimeout:
		state, err = api.AgentFailed, cause
	case stopped:
		state, err = api.AgentCancelled, cause
	case err != nil:
		state = api.AgentFailed
	}
	// The key dies with the run, before anyone learns that it ended (its status
	// included): whatever the agent left behind can make no more calls with it.
	ru.revoke()
	now := time.Now()
	ru.mu.Lock()
	ru.rec.State, ru.rec.Ended = state, &now
	if err != nil {
		ru.rec.Error = errorText(err)
	} else {
		ru.rec.Error = ""
	}
	rec := ru.rec
	ru.mu.Unlock()
	if stopped {
		// Again, for calls made while the process was being stopped.
		r.cancelProgram(ru)
	}
	if r.opts.Ended != nil {
		r.opts.Ended(rec.Program)
	}
	close(ru.done)
	r.log.Info("agent run ended", "execution_id", rec.ExecutionID, "agent", rec.AgentName, "state", state,
		"restarts", rec.Restarts, "error", rec.Error)
}

// cancelProgram has the kernel end the in-flight syscalls of a run that was stopped.
func (r *Runtime) cancelProgram(ru *run) {
	if r.opts.Cancel != nil {
		r.opts.Cancel(ru.program, context.Cause(ru.ctx))
	}
}

func errorText(err error) string {
	var ae *api.Error
	if errors.As(err, &ae) {
		if ae.Err != nil {
			return ae.Message + ": " + ae.Err.Error()
		}
		return ae.Message
	}
	return err.Error()
}

// argv is the command of one attempt.
func (r *Runtime) argv(ru *run) []string {
	if ru.pkg.Kind == KindAIOS {
		return []string{r.python, r.launcher, ru.pkg.Entry, ru.pkg.Module}
	}
	return ru.pkg.Command
}

// attempt starts the agent's process once and waits for it. It returns whether
// restarting cannot help, and the failure: nil when the process exited 0.
func (r *Runtime) attempt(ru *run, attempt int) (permanent bool, err error) {
	argv := r.argv(ru)
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir = ru.pkg.Dir
	cmd.Env = ru.env
	hook := r.opts.OnLog
	stdout := &lineWriter{line: func(s string) { ru.stdout(attempt, s, hook) }}
	stderr := &lineWriter{line: func(s string) { ru.line(attempt, "stderr", s, hook) }}
	cmd.Stdout, cmd.Stderr = stdout, stderr
	cmd.SysProcAttr = sysProcAttr()
	cmd.WaitDelay = waitDelay
	stdin, perr := cmd.StdinPipe()
	if err != nil {
		return true, fmt.Errorf("stdin pipe: %w", perr)
	}
	if err := cmd.Start(); err != nil {
		return false, fmt.Errorf("start %s: %w", argv[0], err)
	}
	pid := cmd.Process.Pid
	waitc := make(chan error, 1)
	go func() { waitc <- cmd.Wait() }()
	finish := func() {
		// Whatever the agent left running dies with it. The group outlives its leader
		// while any member does, so its id cannot have been reused.
		_ = syscall.Kill(-pid, syscall.SIGKILL)
		stdout.Flush()
		stderr.Flush()
	}
	ru.mu.Lock()
	limits := ru.rec.Limits
	ru.mu.Unlock()
	if err := setLimits(pid, limits); err != nil {
		_ = syscall.Kill(-pid, syscall.SIGKILL)
		stdin.Close()
		<-waitc
		finish()
		return true, fmt.Errorf("resource limits: %w", err)
	}
	now := time.Now()
	ru.mu.Lock()
	ru.rec.State, ru.rec.PID, ru.rec.ExitCode = api.AgentRunning, pid, nil
	if ru.rec.Started == nil {
		ru.rec.Started = &now
	}
	ru.mu.Unlock()
	r.log.Debug("agent started", "execution_id", ru.id, "pid", pid, "attempt", attempt, "argv", argv)

	// The task goes to stdin only now that the limits hold. Wait closes stdin when the
	// process exits, which ends a write the agent never read.
	wrote := make(chan struct{})
	go func() {
		defer close(wrote)
		_, _ = io.WriteString(stdin, ru.task)
		_ = stdin.Close()
	}()

	var werr error
	select {
	case werr = <-waitc:
	case <-ru.ctx.Done():
		// The program's syscalls end first, as cancelled by this run, not as calls
		// whose caller vanished; the process goes next.
		r.cancelProgram(ru)
		werr = r.terminate(pid, waitc)
	}
	<-wrote
	finish()

	code := cmd.ProcessState.ExitCode()
	ru.mu.Lock()
	ru.rec.ExitCode = &code
	ru.mu.Unlock()
	if cmd.ProcessState.Success() {
		return false, nil
	}
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return false, fmt.Errorf("killed by signal %s%s", ws.Signal(), signalHint(ws.Signal(), limits))
	}
	if werr != nil && !errors.Is(werr, exec.ErrWaitDelay) {
		var ee *exec.ExitError
		if !errors.As(werr, &ee) {
			return false, werr
		}
	}
	return false, fmt.Errorf("exit status %d", code)
}

// terminate stops the process group: SIGTERM, then SIGKILL after the grace (at once
// once Close's context has ended). It returns Wait's error.
func (r *Runtime) terminate(pid int, waitc <-chan error) error {
	_ = syscall.Kill(-pid, syscall.SIGTERM)
	t := time.NewTimer(r.opts.KillGrace)
	defer t.Stop()
	select {
	case err := <-waitc:
		return err
	case <-t.C:
	case <-r.hard.Done():
	}
	_ = syscall.Kill(-pid, syscall.SIGKILL)
	return <-waitc
}

// signalHint says which limit a signal most likely came from.
func signalHint(sig syscall.Signal, l api.AgentLimits) string {
	switch {
	case sig == syscall.SIGXCPU && l.CPUSeconds > 0:
		return fmt.Sprintf(" (the cpu_seconds limit of %d)", l.CPUSeconds)
	case sig == syscall.SIGKILL && l.CPUSeconds > 0:
		return fmt.Sprintf(" (perhaps the cpu_seconds limit of %d, or the out-of-memory killer)", l.CPUSeconds)
	case (sig == syscall.SIGSEGV || sig == syscall.SIGABRT) && l.MemoryMB > 0:
		return fmt.Sprintf(" (perhaps the memory_mb limit of %d)", l.MemoryMB)
	}
	return ""
}

// specFromConfig reads AIOS's agent_config: task (required), and this kernel's
// timeout, limits and restart.
func specFromConfig(cfg map[string]any) (Spec, error) {
	var spec Spec
	spec.Config = cfg
	task, ok := cfg["task"].(string)
	if !ok || strings.TrimSpace(task) == "" {
		return spec, api.Errorf(api.CallerBadRequest, "agent_config.task is required: the text the agent works on")
	}
	spec.Task = task
	switch v := cfg["timeout"].(type) {
	case nil:
	case float64:
		if v <= 0 {
			return spec, api.Errorf(api.CallerBadRequest, "agent_config.timeout must be positive (seconds)")
		}
		spec.Timeout = time.Duration(v * float64(time.Second))
	case string:
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			return spec, api.Errorf(api.CallerBadRequest, "agent_config.timeout %q: seconds, or a duration such as \"90s\"", v)
		}
		spec.Timeout = d
	default:
		return spec, api.Errorf(api.CallerBadRequest, "agent_config.timeout must be a number of seconds")
	}
	if v, ok := cfg["limits"]; ok && v != nil {
		if err := strictDecode(v, &spec.Limits); err != nil {
			return spec, api.Wrap(api.CallerBadRequest, err, "agent_config.limits: {memory_mb, cpu_seconds, open_files}")
		}
	}
	if v, ok := cfg["restart"]; ok && v != nil {
		var p api.AgentRestart
		if err := strictDecode(v, &p); err != nil {
			return spec, api.Wrap(api.CallerBadRequest, err, "agent_config.restart: {policy, max_restarts, backoff_seconds}")
		}
		spec.Restart = &p
	}
	return spec, nil
}

// strictDecode turns a decoded JSON value into v, refusing fields v does not have.
func strictDecode(in any, v any) error {
	b, err := json.Marshal(in)
	if err != nil {
		return err
	}
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	return dec.Decode(v)
}
