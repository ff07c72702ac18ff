package agents

import (
	"context"
	"crypto/rand"
	_ "embed"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/aios-go/aios/api"
)

//go:embed launcher.py
var launcherPy []byte

// Defaults of Options.
const (
	DefaultMaxRunning = 16
	DefaultMaxRuns    = 1000
	DefaultLogLines   = 1000
	DefaultKillGrace  = 5 * time.Second
	DefaultBackoff    = time.Second
	DefaultMaxBackoff = 30 * time.Second
	// DefaultRestarts is max_restarts of an on-failure policy that names none.
	DefaultRestarts = 3
	// MaxRestarts bounds any run's restarts.
	MaxRestarts = 10
	// MaxTask bounds a task: it travels in the environment too, where Linux allows
	// 128 KiB a variable.
	MaxTask = 64 << 10
)

// waitDelay is how long Wait waits, after the agent exits, for the output its leftover
// children still hold open; then the pipes are closed and the group is killed.
const waitDelay = time.Second

// Options configure a Runtime.
type Options struct {
	// KernelURL is the kernel's base URL as agents reach it (KernelURL turns a listener's
	// address into one).
	KernelURL string
	// Dirs are the roots agent_id is looked up in (Submit). Start takes any package.
	Dirs []string
	// Python runs AIOS folders: a name on PATH or a path (default python3).
	Python string
	// MaxRunning bounds the runs alive at once; more wait, queued (DefaultMaxRunning).
	MaxRunning int
	// MaxRuns bounds the records kept; the oldest ended runs are forgotten first.
	MaxRuns int
	// LogLines is the size of each run's log ring (DefaultLogLines).
	LogLines int
	// Limits are every run's resource limits, and the most a submission may ask: it may
	// set a limit the kernel leaves at 0, or lower one, never raise one.
	Limits api.AgentLimits
	// Restart is the default restart policy (never).
	Restart api.AgentRestart
	// MaxBackoff caps the doubling restart backoff (DefaultMaxBackoff).
	MaxBackoff time.Duration
	// Timeout bounds a whole run, restarts included, and is the most a submission may
	// ask; 0 is none.
	Timeout time.Duration
	// KillGrace is the wait between SIGTERM and SIGKILL (DefaultKillGrace).
	KillGrace time.Duration
	// Env is added to every agent's environment; PassEnv names the kernel's own
	// variables agents get besides PATH, HOME, the locale and TMPDIR.
	Env     map[string]string
	PassEnv []string

	// Cancel, when set, is called when a run is cancelled, times out or is stopped by
	// Close, after its process was signalled: the kernel cancels the program's
	// in-flight syscalls (kernel.CancelProgram).
	Cancel func(program string, cause error)
	// Ended, when set, is called once a run has ended for good (kernel.EndProgram).
	Ended func(program string)
	// Keys, when set, gives each run its own API key (docs/agents.md): it is called as
	// the run starts, with the package's name and the run's program id, and its key goes
	// to AIOS_AGENT_KEY, OPENAI_API_KEY and ANTHROPIC_API_KEY. revoke is called once,
	// when the run has ended for good, however it ended; restarts keep the key. An
	// error fails the start. The kernel sets it when authentication is on, so that the
	// runs' syscalls pass its access manager as their agent.
	Keys func(ctx context.Context, agent, program string) (key string, revoke func(), err error)
	// OnLog, when set, sees every line an agent writes (aios agents run echoes them).
	// It runs on the goroutine reading the agent's output and must not block for long.
	OnLog  func(id int64, l api.AgentLogLine)
	Logger *slog.Logger
}

// Spec is one run to start.
type Spec struct {
	AgentID string // as the caller named it; default the package's folder
	Package *Package
	Task    string
	Config  map[string]any // agent_config, for the record and AIOS_CONFIG
	// Limits: 0 fields take Options.Limits; none may exceed a non-zero one there.
	Limits api.AgentLimits
	// Restart: nil takes Options.Restart.
	Restart *api.AgentRestart
	// Timeout: 0 takes Options.Timeout, which it may not exceed when set.
	Timeout time.Duration
}

// Runtime runs agent packages. Its methods are safe for concurrent use.
type Runtime struct {
	opts      Options
	log       *slog.Logger
	resolver  *Resolver
	python    string
	pythonErr error
	launcher  string // launcher.py in tmp
	tmp       string

	base  context.Context // ends on Close: every run stops
	stop  context.CancelCauseFunc
	hard  context.Context // ends when Close's context does: no more grace
	kill  context.CancelFunc
	slots chan struct{}
	wg    sync.WaitGroup

	mu     sync.Mutex
	closed bool
	nextID int64
	runs   map[int64]*run
	order  []int64 // ids, oldest first
}

// New returns a runtime. It writes the AIOS launcher to a temporary folder, removed by
// Close.
func New(opts Options) (*Runtime, error) {
	if opts.MaxRunning <= 0 {
		opts.MaxRunning = DefaultMaxRunning
	}
	if opts.MaxRuns <= 0 {
		opts.MaxRuns = DefaultMaxRuns
	}
	if opts.LogLines <= 0 {
		opts.LogLines = DefaultLogLines
	}
	if opts.KillGrace <= 0 {
		opts.KillGrace = DefaultKillGrace
	}
	if opts.MaxBackoff <= 0 {
		opts.MaxBackoff = DefaultMaxBackoff
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Python == "" {
		opts.Python = "python3"
	}
	if err := checkLimits(opts.Limits, "agents.limits"); err != nil {
		return nil, err
	}
	restart, err := normaliseRestart(opts.Restart)
	if err != nil {
		return nil, fmt.Errorf("agents.restart: %w", err)
	}
	opts.Restart = restart
	res, err := NewResolver(opts.Dirs)
	if err != nil {
		return nil, err
	}
	tmp, err := os.MkdirTemp("", "aios-agents-")
	if err != nil {
		return nil, err
	}
	launcher := filepath.Join(tmp, "launcher.py")
	if err := os.WriteFile(launcher, launcherPy, 0o600); err != nil {
		os.RemoveAll(tmp)
		return nil, err
	}
	r := &Runtime{
		opts: opts, log: opts.Logger, resolver: res, launcher: launcher, tmp: tmp,
		slots: make(chan struct{}, opts.MaxRunning), runs: map[int64]*run{},
	}
	// A missing interpreter fails AIOS runs with this error; executables still run.
	r.python, r.pythonErr = exec.LookPath(opts.Python)
	r.base, r.stop = context.WithCancelCause(context.Background())
	r.hard, r.kill = context.WithCancel(context.Background())
	return r, nil
}

// KernelURL is the base URL agents on this machine use to reach a kernel listening on
// addr: an unspecified host (":8000", "0.0.0.0", "[::]") becomes loopback.
func KernelURL(addr net.Addr) string {
	host, port, err := net.SplitHostPort(addr.String())
	if err != nil {
		return "http://" + addr.String()
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
		if ip != nil && ip.To4() == nil {
			host = "::1"
		}
	}
	return "http://" + net.JoinHostPort(host, port)
}

// Roots are the folders Submit looks agents up in.
func (r *Runtime) Roots() []string { return r.resolver.Roots() }

// Submit starts the agent a POST /agents/submit names, found under the roots.
func (r *Runtime) Submit(req api.AgentSubmit) (api.AgentRun, error) {
	spec, err := specFromConfig(req.AgentConfig)
	if err != nil {
		return api.AgentRun{}, err
	}
	pkg, err := r.resolver.Resolve(req.AgentID)
	if err != nil {
		return api.AgentRun{}, err
	}
	spec.AgentID, spec.Package = req.AgentID, pkg
	return r.Start(spec)
}

// Start starts a run of spec.Package and returns its record; the run goes on in the
// background, queued until a slot is free.
func (r *Runtime) Start(spec Spec) (api.AgentRun, error) {
	if spec.Package == nil {
		return api.AgentRun{}, api.Errorf(api.CallerBadRequest, "no agent package to run")
	}
	if len(spec.Task) > MaxTask {
		return api.AgentRun{}, api.Errorf(api.CallerTooLarge, "the task is %d bytes; at most %d are taken", len(spec.Task), MaxTask)
	}
	if spec.Package.Kind == KindAIOS && r.pythonErr != nil {
		return api.AgentRun{}, api.Wrap(api.PolicyNotEnabled, r.pythonErr, "AIOS agent folders run on Python, and %q was not found (set agents.python)", r.opts.Python)
	}
	limits, err := r.limits(spec.Limits)
	if err != nil {
		return api.AgentRun{}, err
	}
	restart := r.opts.Restart
	if spec.Restart != nil {
		if restart, err = normaliseRestart(*spec.Restart); err != nil {
			return api.AgentRun{}, api.Wrap(api.CallerBadRequest, err, "restart")
		}
	}
	timeout := r.opts.Timeout
	if spec.Timeout > 0 {
		if r.opts.Timeout > 0 && spec.Timeout > r.opts.Timeout {
			return api.AgentRun{}, api.Errorf(api.CallerBadRequest, "timeout %v is longer than the kernel allows (%v)", spec.Timeout, r.opts.Timeout)
		}
		timeout = spec.Timeout
	}
	if spec.AgentID == "" {
		spec.AgentID = spec.Package.Dir
	}

	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return api.AgentRun{}, errShuttingDown()
	}
	r.nextID++
	id := r.nextID
	r.mu.Unlock()
	program := programID(id)
	// The key is issued outside the lock: it is a database write.
	key, revoke, err := r.runKey(spec.Package.Name, program)
	if err != nil {
		return api.AgentRun{}, err
	}

	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		revoke()
		return api.AgentRun{}, errShuttingDown()
	}
	ctx, cancel := context.WithCancelCause(r.base)
	var stopTimer context.CancelFunc = func() {}
	if timeout > 0 {
		ctx, stopTimer = context.WithTimeoutCause(ctx, timeout, api.Errorf(api.PolicyTimeout, "agent run %d did not finish within %v", id, timeout))
	}
	ru := &run{
		id: id, program: program, pkg: spec.Package, ctx: ctx, done: make(chan struct{}),
		key: key, revoke: revoke,
		cancel: func(cause error) { cancel(cause); stopTimer() },
		logs:   newLogRing(r.opts.LogLines),
		rec: api.AgentRun{
			ExecutionID: id, AgentID: spec.AgentID, AgentName: spec.Package.Name, Kind: string(spec.Package.Kind),
			Dir: spec.Package.Dir, Program: program, Task: spec.Task, Config: spec.Config,
			State: api.AgentQueued, Submitted: time.Now(), Limits: limits, Restart: restart,
			TimeoutSeconds: timeout.Seconds(), Requirements: spec.Package.Requirements,
		},
	}
	ru.task = spec.Task
	ru.env = r.childEnv(ru)
	r.runs[id] = ru
	r.order = append(r.order, id)
	r.evict()
	rec := ru.snapshot()
	r.wg.Add(1)
	r.mu.Unlock()

	r.log.Info("agent run submitted", "execution_id", id, "agent", spec.Package.Name, "dir", spec.Package.Dir,
		"kind", spec.Package.Kind, "program", rec.Program)
	if len(spec.Package.Requirements) > 0 {
		ru.note(0, fmt.Sprintf("aios: %s lists requirements %v; the kernel installs nothing, so they must already be importable", RequirementsFile, spec.Package.Requirements), r.opts.OnLog)
	}
	go r.supervise(ru, restart)
	return rec, nil
}

func errShuttingDown() error {
	return api.Errorf(api.KernelShuttingDown, "the agent runtime is shutting down and starts no new runs")
}

// keyTimeout bounds issuing or revoking a run's key.
const keyTimeout = 10 * time.Second

// runKey issues a run's key through Options.Keys; without Keys a run has none. The
// revoke returned is safe to call more than once.
func (r *Runtime) runKey(agent, program string) (string, func(), error) {
	if r.opts.Keys == nil {
		return "", func() {}, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), keyTimeout)
	defer cancel()
	key, revoke, err := r.opts.Keys(ctx, agent, program)
	if err != nil {
		return "", nil, err
	}
	if revoke == nil {
		revoke = func() {}
	}
	return key, sync.OnceFunc(revoke), nil
}

// programID names a run's program: unique within the kernel's life, and across the
// runtimes of several `aios agents run` against one kernel.
func programID(id int64) string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return "run-" + strconv.FormatInt(id, 10) + "-" + hex.EncodeToString(b[:])
}

// evict forgets the oldest ended runs past MaxRuns. Called with r.mu held.
func (r *Runtime) evict() {
	excess := len(r.runs) - r.opts.MaxRuns
	if excess <= 0 {
		return
	}
	keep := r.order[:0]
	for _, id := range r.order {
		ru := r.runs[id]
		if excess > 0 && ru.ended() {
			delete(r.runs, id)
			excess--
			continue
		}
		keep = append(keep, id)
	}
	r.order = keep
}

func (r *Runtime) get(id int64) *run {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.runs[id]
}

func notFound(id int64) error {
	return api.Errorf(api.CallerNotFound, "no agent run with execution_id %d", id)
}

// Get returns the record of run id.
func (r *Runtime) Get(id int64) (api.AgentRun, bool) {
	ru := r.get(id)
	if ru == nil {
		return api.AgentRun{}, false
	}
	return ru.snapshot(), true
}

// List returns every run kept, oldest first.
func (r *Runtime) List() []api.AgentRun {
	r.mu.Lock()
	runs := make([]*run, 0, len(r.order))
	for _, id := range r.order {
		runs = append(runs, r.runs[id])
	}
	r.mu.Unlock()
	out := make([]api.AgentRun, len(runs))
	for i, ru := range runs {
		out[i] = ru.snapshot()
	}
	return out
}

// Logs returns the newest n lines of run id (all kept when n <= 0).
func (r *Runtime) Logs(id int64, n int) (api.AgentLogs, bool) {
	ru := r.get(id)
	if ru == nil {
		return api.AgentLogs{}, false
	}
	ru.mu.Lock()
	defer ru.mu.Unlock()
	return api.AgentLogs{ExecutionID: id, State: ru.rec.State, Lines: ru.logs.tail(n), Dropped: ru.logs.dropped}, true
}

// Cancel stops run id: its process group gets SIGTERM, then SIGKILL after the grace,
// and the kernel's Cancel hook ends the program's syscalls. It waits, until ctx ends,
// for the run to be over, and returns its record. Cancelling an ended run changes
// nothing.
func (r *Runtime) Cancel(ctx context.Context, id int64) (api.AgentRun, error) {
	ru := r.get(id)
	if ru == nil {
		return api.AgentRun{}, notFound(id)
	}
	ru.cancel(api.Errorf(api.CallerCancelled, "agent run %d was cancelled", id))
	select {
	case <-ru.done:
	case <-ctx.Done():
	}
	return ru.snapshot(), nil
}

// Wait blocks until run id has ended, or ctx has, and returns its record.
func (r *Runtime) Wait(ctx context.Context, id int64) (api.AgentRun, error) {
	ru := r.get(id)
	if ru == nil {
		return api.AgentRun{}, notFound(id)
	}
	select {
	case <-ru.done:
		return ru.snapshot(), nil
	case <-ctx.Done():
		return ru.snapshot(), context.Cause(ctx)
	}
}

// Close stops every run and waits for them: SIGTERM, then SIGKILL after the grace, or
// at once when ctx ends first. It then removes the launcher. Runs are not restarted.
func (r *Runtime) Close(ctx context.Context) error {
	r.mu.Lock()
	r.closed = true
	r.mu.Unlock()
	r.stop(api.Errorf(api.KernelShuttingDown, "the kernel is shutting down"))
	done := make(chan struct{})
	go func() { r.wg.Wait(); close(done) }()
	var err error
	select {
	case <-done:
	case <-ctx.Done():
		err = ctx.Err()
		r.kill()
		<-done
	}
	r.kill()
	if rerr := os.RemoveAll(r.tmp); rerr != nil && err == nil {
		err = rerr
	}
	return err
}

// limits applies the runtime's limits to what a run asked for.
func (r *Runtime) limits(ask api.AgentLimits) (api.AgentLimits, error) {
	if err := checkLimits(ask, "limits"); err != nil {
		return api.AgentLimits{}, err
	}
	def := r.opts.Limits
	pick := func(name string, ask, def int64) (int64, error) {
		switch {
		case ask == 0:
			return def, nil
		case def > 0 && ask > def:
			return 0, api.Errorf(api.CallerBadRequest, "limits.%s %d is above the kernel's limit %d; a run may only lower it", name, ask, def)
		}
		return ask, nil
	}
	var out api.AgentLimits
	var err error
	if out.MemoryMB, err = pick("memory_mb", ask.MemoryMB, def.MemoryMB); err != nil {
		return out, err
	}
	if out.CPUSeconds, err = pick("cpu_seconds", ask.CPUSeconds, def.CPUSeconds); err != nil {
		return out, err
	}
	if out.OpenFiles, err = pick("open_files", ask.OpenFiles, def.OpenFiles); err != nil {
		return out, err
	}
	return out, nil
}

func checkLimits(l api.AgentLimits, what string) error {
	if l.MemoryMB < 0 || l.CPUSeconds < 0 || l.OpenFiles < 0 {
		return api.Errorf(api.CallerBadRequest, "%s: memory_mb, cpu_seconds and open_files must not be negative", what)
	}
	return nil
}

// normaliseRestart checks a restart policy and fills its defaults.
func normaliseRestart(p api.AgentRestart) (api.AgentRestart, error) {
	switch p.Policy {
	case "", "never", "no":
		return api.AgentRestart{Policy: "never"}, nil
	case "on-failure", "on_failure":
		p.Policy = "on-failure"
	default:
		return p, fmt.Errorf("policy %q: expected never or on-failure", p.Policy)
	}
	if p.MaxRestarts < 0 || p.MaxRestarts > MaxRestarts {
		return p, fmt.Errorf("max_restarts %d: between 0 and %d", p.MaxRestarts, MaxRestarts)
	}
	if p.MaxRestarts == 0 {
		p.MaxRestarts = DefaultRestarts
	}
	if p.BackoffSeconds < 0 || p.BackoffSeconds > 300 {
		return p, fmt.Errorf("backoff_seconds %v: between 0 and 300", p.BackoffSeconds)
	}
	if p.BackoffSeconds == 0 {
		p.BackoffSeconds = DefaultBackoff.Seconds()
	}
	return p, nil
}
