package kernel

import (
	"fmt"
	"time"

	"github.com/aios-go/aios/internal/sched"
)

// sloState turns agents' and tenants' service-level objectives into deadlines on their
// LLM calls (docs/scheduling.md#slo). nil when no objective is configured.
type sloState struct {
	obj sched.Objectives
	// starts is when each program made its first call, the origin of its TCT deadline.
	// Guarded by Kernel.mu.
	starts *sched.ProgramStarts
}

// sloIdle is how long a program with no call is remembered: as long as the scheduler's
// policies keep their state for it, so an agent on a long tool call keeps its clock.
const sloIdle = 10 * time.Minute

func newSLOState(opts Options) (*sloState, error) {
	if opts.SLO.Empty() {
		return nil, nil
	}
	if err := opts.SLO.Check(); err != nil {
		return nil, fmt.Errorf("kernel: SLOs: %w", err)
	}
	if opts.Policy != "slo" {
		// Deadlines would be set and ignored: objectives that nothing works towards.
		return nil, fmt.Errorf("kernel: SLOs are configured but the LLM policy is %q; only slo orders calls by their deadlines", opts.Policy)
	}
	return &sloState{obj: opts.SLO, starts: sched.NewProgramStarts(sloIdle, 1<<16)}, nil
}

// objective is the SLO of c's agent, for an LLM call. It runs outside the kernel's
// lock: finding an agent's tenant may read the access manager's directory.
func (s *sloState) objective(c *Call) (sched.SLO, bool) {
	if s == nil || c.Module != sched.LLM {
		return sched.SLO{}, false
	}
	return s.obj.For(c.Agent)
}

// stamp sets an LLM call's deadline from its objective. Called under Kernel.mu.
func (s *sloState) stamp(c *sched.Call, o sched.SLO, ok bool, now time.Duration) {
	if s == nil || c.Module != sched.LLM {
		return
	}
	start := s.starts.Seen(c.Program, now)
	if ok {
		c.Deadline = o.Deadline(start, now)
	}
}

// end forgets a finished program's start. Called under Kernel.mu.
func (s *sloState) end(program string) {
	if s != nil {
		s.starts.End(program)
	}
}
