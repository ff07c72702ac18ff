package sched

import (
	"fmt"
	"time"
)

// SLO is a service-level objective: TCT bounds a whole program's completion time from
// its first call, TTFT each call's time from submission to its first token. A zero
// field sets no objective.
type SLO struct {
	TCT  time.Duration
	TTFT time.Duration
}

// Check refuses objectives no deadline can be derived from.
func (o SLO) Check() error {
	if o.TCT < 0 || o.TTFT < 0 {
		return fmt.Errorf("SLO objectives must be positive durations, got tct %v and ttft %v", o.TCT, o.TTFT)
	}
	if o.TCT == 0 && o.TTFT == 0 {
		return fmt.Errorf("an SLO needs a tct or a ttft objective")
	}
	return nil
}

// Deadline is the earlier of the two deadlines the objectives set for a call submitted
// at submit, of a program that started at start; 0 when neither is set. The earlier
// one is what the call must meet: a call whose first token is late fails its TTFT
// objective whatever the program's, and one whose program is late fails the TCT.
func (o SLO) Deadline(start, submit time.Duration) time.Duration {
	var d time.Duration
	if o.TCT > 0 {
		d = start + o.TCT
	}
	if o.TTFT > 0 && (d == 0 || submit+o.TTFT < d) {
		d = submit + o.TTFT
	}
	return d
}

// Objectives are the SLOs of agents and of tenants; an agent's own wins over its
// tenant's.
type Objectives struct {
	Agents  map[string]SLO
	Tenants map[string]SLO
	// TenantOf names an agent's tenant; nil when tenants are unknown (then Tenants
	// cannot apply, which Check refuses).
	TenantOf func(agent string) string
}

// Check refuses objectives that cannot be met or applied.
func (o Objectives) Check() error {
	for name, s := range o.Agents {
		if err := s.Check(); err != nil {
			return fmt.Errorf("agent %q: %w", name, err)
		}
	}
	for name, s := range o.Tenants {
		if err := s.Check(); err != nil {
			return fmt.Errorf("tenant %q: %w", name, err)
		}
	}
	if len(o.Tenants) > 0 && o.TenantOf == nil {
		return fmt.Errorf("tenant SLOs need to know each agent's tenant (the access manager)")
	}
	return nil
}

// Empty reports whether no objective is set.
func (o Objectives) Empty() bool { return len(o.Agents) == 0 && len(o.Tenants) == 0 }

// For is agent's SLO, ok false when none applies.
func (o Objectives) For(agent string) (SLO, bool) {
	if s, ok := o.Agents[agent]; ok {
		return s, true
	}
	if o.TenantOf != nil && len(o.Tenants) > 0 {
		s, ok := o.Tenants[o.TenantOf(agent)]
		return s, ok
	}
	return SLO{}, false
}

// ProgramStarts remembers when each program made its first call, the origin of its TCT
// deadline. An owner that sees programs only through their calls (the kernel) cannot
// tell a finished program from one waiting on a tool, so a program with no call for
// idle is forgotten, and its next call starts it again.
type ProgramStarts struct {
	start map[string]time.Duration
	idle  idleSet[string]
}

// NewProgramStarts forgets programs idle for ttl, and the longest idle beyond max.
func NewProgramStarts(ttl time.Duration, max int) *ProgramStarts {
	return &ProgramStarts{start: map[string]time.Duration{}, idle: newIdleSet[string](ttl, max)}
}

// Seen notes a call of program at now and returns the program's start.
func (p *ProgramStarts) Seen(program string, now time.Duration) time.Duration {
	p.idle.expire(now, func(k string) { delete(p.start, k) })
	s, ok := p.start[program]
	if !ok {
		s = now
		p.start[program] = s
	}
	p.idle.add(program, now)
	return s
}

// End forgets a finished program.
func (p *ProgramStarts) End(program string) {
	delete(p.start, program)
	p.idle.remove(program)
}

// Len is how many programs are remembered.
func (p *ProgramStarts) Len() int { return len(p.start) }
