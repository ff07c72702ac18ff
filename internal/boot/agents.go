package boot

import (
	"context"
	"log/slog"

	"github.com/aios-go/aios/api"
	"github.com/aios-go/aios/internal/access"
	"github.com/aios-go/aios/internal/agents"
	"github.com/aios-go/aios/internal/config"
	"github.com/aios-go/aios/internal/kernel"
)

// Agents builds the agent runtime of cfg (docs/agents.md): its agents reach the kernel
// at kernelURL, and stopping a run cancels its program's syscalls in k; the end of a run
// ends its program. With the access manager m (access.auth on), each run gets its own
// agent key, and the run keys a previous life of the kernel left live are revoked. It
// is nil when agents.disabled is set.
func Agents(cfg config.Agents, k *kernel.Kernel, m *access.Manager, kernelURL string, log *slog.Logger) (*agents.Runtime, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	var keys func(context.Context, string, string) (string, func(), error)
	if m != nil {
		// Before the disabled check: a previous life may have run agents.
		n, err := m.RevokeOrphanRunKeys(access.AsKernel(context.Background()))
		if err != nil {
			return nil, api.Wrap(api.KindOf(err), err, "agents: revoking the run keys the previous run of the kernel left")
		}
		if n > 0 {
			log.Warn("agents: revoked the keys of agent runs the kernel's previous run left live", "keys", n)
		}
		keys = agentKeys(m, log.With("module", "agents"))
	}
	if cfg.Disabled {
		return nil, nil
	}
	return agents.New(agents.Options{
		KernelURL: kernelURL, Dirs: cfg.Dirs, Python: cfg.Python,
		MaxRunning: cfg.MaxRunning, MaxRuns: cfg.MaxRuns, LogLines: cfg.LogLines,
		Limits: api.AgentLimits{MemoryMB: cfg.Limits.MemoryMB, CPUSeconds: cfg.Limits.CPUSeconds, OpenFiles: cfg.Limits.OpenFiles},
		Restart: api.AgentRestart{
			Policy: cfg.Restart.Policy, MaxRestarts: cfg.Restart.MaxRestarts, BackoffSeconds: cfg.Restart.Backoff.Seconds(),
		},
		MaxBackoff: cfg.Restart.MaxBackoff, Timeout: cfg.Timeout, KillGrace: cfg.KillGrace,
		Env: cfg.Env, PassEnv: cfg.PassEnv,
		Cancel: func(program string, cause error) { k.CancelProgram(program, cause) },
		Ended:  k.EndProgram,
		Keys:   keys,
		Logger: log.With("module", "agents"),
	})
}
