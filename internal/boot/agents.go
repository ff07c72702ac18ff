package boot

import (
	"log/slog"

	"github.com/aios-go/aios/api"
	"github.com/aios-go/aios/internal/agents"
	"github.com/aios-go/aios/internal/config"
	"github.com/aios-go/aios/internal/kernel"
)

// Agents builds the agent runtime of cfg (docs/agents.md): its agents reach the kernel
// at kernelURL, and stopping a run cancels its program's syscalls in k; the end of a run
// ends its program. It is nil when agents.disabled is set.
func Agents(cfg config.Agents, k *kernel.Kernel, kernelURL string, log *slog.Logger) (*agents.Runtime, error) {
	if cfg.Disabled {
		return nil, nil
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
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
		Logger: log.With("module", "agents"),
	})
}
