package config

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Agents configures the agent runtime (docs/agents.md): where POST /agents/submit finds
// agents, and how their processes are run.
type Agents struct {
	// Disabled turns the runtime off: the /agents routes answer 501.
	Disabled bool `koanf:"disabled"`
	// Dirs are the only folders agents are loaded from (default <data_dir>/agents). A
	// submitted agent_id is a folder under one of them, or a name found there.
	// AIOS_AGENTS_DIRS separates them as PATH does.
	Dirs []string `koanf:"dirs"`
	// Python runs AIOS agent folders (python3 on PATH).
	Python string `koanf:"python"`
	// MaxRunning bounds the agents alive at once; more wait, queued (16).
	MaxRunning int `koanf:"max_running"`
	// Timeout bounds each run, restarts included, and is the most a submission may ask
	// (0: none).
	Timeout time.Duration `koanf:"timeout"`
	// KillGrace is the wait between SIGTERM and SIGKILL when a run is stopped (5s).
	KillGrace time.Duration `koanf:"kill_grace"`
	// LogLines is how many lines of each run's output are kept (1000); MaxRuns how many
	// ended runs are remembered (1000).
	LogLines int `koanf:"log_lines"`
	MaxRuns  int `koanf:"max_runs"`
	// Limits are every run's resource limits; a submission may lower them, not raise them.
	Limits AgentLimits `koanf:"limits"`
	// Restart is the default restart policy.
	Restart AgentRestart `koanf:"restart"`
	// Env is added to every agent's environment. PassEnv names the kernel's variables
	// agents also get; by default they get only PATH, HOME, the locale and TMPDIR, so
	// the kernel's provider keys stay with the kernel.
	Env     map[string]string `koanf:"env"`
	PassEnv []string          `koanf:"pass_env"`
}

// AgentLimits are per-process limits, set with prlimit on Linux; 0 leaves one alone.
type AgentLimits struct {
	MemoryMB   int64 `koanf:"memory_mb"`   // address space (RLIMIT_AS), MiB
	CPUSeconds int64 `koanf:"cpu_seconds"` // CPU time (RLIMIT_CPU)
	OpenFiles  int64 `koanf:"open_files"`  // descriptors (RLIMIT_NOFILE)
}

// AgentRestart is a restart policy: never (default), or on-failure, restarting a run
// that failed at most MaxRestarts times (3, at most 10), after Backoff (1s) doubling up
// to MaxBackoff (30s).
type AgentRestart struct {
	Policy      string        `koanf:"policy"`
	MaxRestarts int           `koanf:"max_restarts"`
	Backoff     time.Duration `koanf:"backoff"`
	MaxBackoff  time.Duration `koanf:"max_backoff"`
}

// normalise fills the defaults of the agents section and refuses what cannot work.
func (a *Agents) normalise(dataDir string) []error {
	var errs []error
	// AIOS_AGENTS_DIRS arrives as one string: a list like PATH's ("/srv/a:/srv/b").
	var dirs []string
	for _, d := range a.Dirs {
		if list := filepath.SplitList(d); len(list) > 1 {
			dirs = append(dirs, list...)
		} else {
			dirs = append(dirs, d)
		}
	}
	a.Dirs = dirs
	if len(a.Dirs) == 0 {
		a.Dirs = []string{filepath.Join(dataDir, "agents")}
	}
	for i, d := range a.Dirs {
		d = strings.TrimSpace(d)
		if strings.HasPrefix(d, "~/") {
			if home, err := os.UserHomeDir(); err == nil {
				d = filepath.Join(home, d[2:])
			}
		}
		if d == "" {
			errs = append(errs, fmt.Errorf("agents.dirs[%d] is empty", i))
		}
		a.Dirs[i] = d
	}
	switch a.Restart.Policy = strings.ToLower(strings.TrimSpace(a.Restart.Policy)); a.Restart.Policy {
	case "", "never", "on-failure":
	default:
		errs = append(errs, fmt.Errorf("agents.restart.policy %q: expected never or on-failure", a.Restart.Policy))
	}
	if a.Restart.MaxRestarts < 0 || a.Restart.MaxRestarts > 10 {
		errs = append(errs, fmt.Errorf("agents.restart.max_restarts %d: between 0 and 10", a.Restart.MaxRestarts))
	}
	if a.Restart.Backoff < 0 || a.Restart.Backoff > 5*time.Minute || a.Restart.MaxBackoff < 0 {
		errs = append(errs, fmt.Errorf("agents.restart: backoff must be between 0 and 5m, max_backoff not negative"))
	}
	if a.Limits.MemoryMB < 0 || a.Limits.CPUSeconds < 0 || a.Limits.OpenFiles < 0 {
		errs = append(errs, fmt.Errorf("agents.limits: memory_mb, cpu_seconds and open_files must not be negative"))
	}
	if a.MaxRunning < 0 || a.Timeout < 0 || a.KillGrace < 0 || a.LogLines < 0 || a.MaxRuns < 0 {
		errs = append(errs, fmt.Errorf("agents: max_running, timeout, kill_grace, log_lines and max_runs must not be negative"))
	}
	for k := range a.Env {
		if k == "" || strings.ContainsAny(k, "=\x00") {
			errs = append(errs, fmt.Errorf("agents.env: %q is not a variable name", k))
		}
	}
	return errs
}
