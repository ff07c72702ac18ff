//go:build !linux

package agents

import (
	"errors"
	"syscall"

	"github.com/aios-go/aios/api"
)

// setLimits: prlimit(2) is Linux's; elsewhere a run with limits is refused rather than
// run without them.
func setLimits(pid int, l api.AgentLimits) error {
	if l == (api.AgentLimits{}) {
		return nil
	}
	return errors.New("resource limits on agents need Linux (prlimit); set agents.limits to 0 on this system")
}

func sysProcAttr() *syscall.SysProcAttr { return &syscall.SysProcAttr{Setpgid: true} }
