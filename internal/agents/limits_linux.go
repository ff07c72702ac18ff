package agents

import (
	"fmt"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/aios-go/aios/api"
)

// setLimits applies l to the running process pid with prlimit(2). It is called right
// after the process starts, so there is a window, from exec to this call, in which the
// agent runs unlimited; the runtime closes it for agents that read their task from
// stdin first (the AIOS launcher does): the task is written only after this returns.
// Children the agent forked inside the window keep the limits they were born with.
//
// Soft and hard limits are set alike, except CPU time: its hard limit is one second
// later, so the process gets SIGXCPU first and SIGKILL only if it ignores that. A limit
// above the process's current hard limit is lowered to it (raising needs
// CAP_SYS_RESOURCE).
func setLimits(pid int, l api.AgentLimits) error {
	set := func(name string, res int, cur, max uint64) error {
		var old unix.Rlimit
		if err := unix.Prlimit(pid, res, nil, &old); err != nil {
			return fmt.Errorf("read %s: %w", name, err)
		}
		if old.Max != unix.RLIM_INFINITY {
			cur, max = min(cur, old.Max), min(max, old.Max)
		}
		if err := unix.Prlimit(pid, res, &unix.Rlimit{Cur: cur, Max: max}, nil); err != nil {
			return fmt.Errorf("set %s: %w", name, err)
		}
		return nil
	}
	if l.MemoryMB > 0 {
		b := uint64(l.MemoryMB) << 20
		if err := set("RLIMIT_AS", unix.RLIMIT_AS, b, b); err != nil {
			return err
		}
	}
	if l.CPUSeconds > 0 {
		s := uint64(l.CPUSeconds)
		if err := set("RLIMIT_CPU", unix.RLIMIT_CPU, s, s+1); err != nil {
			return err
		}
	}
	if l.OpenFiles > 0 {
		n := uint64(l.OpenFiles)
		if err := set("RLIMIT_NOFILE", unix.RLIMIT_NOFILE, n, n); err != nil {
			return err
		}
	}
	return nil
}

// sysProcAttr puts the agent in a process group of its own, which signals reach whole,
// and asks Linux to kill it should the kernel's process die without stopping it.
// (Pdeathsig fires when the forking thread exits; Go keeps its threads for the life of
// the process, so in practice that is the process.)
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
