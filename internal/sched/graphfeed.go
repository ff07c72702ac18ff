package sched

import "time"

// The scheduler feeds its Graph from the events every owner reports (the kernel's
// dispatcher and aios bench's virtual driver alike): LLM calls arriving and ending,
// tools starting and ending (ToolStarted, ToolEnded) and programs ending (EndProgram).

// Graph is the learner of the programs' execution graphs; read it only while no other
// goroutine drives the scheduler.
func (s *Scheduler) Graph() *Graph { return s.graph }

// graphClassOf names the class a call's program is learned under: its Class, else its
// agent.
func graphClassOf(c *Call) string {
	if c.Class != "" {
		return c.Class
	}
	return c.Agent
}

func (s *Scheduler) learnArrival(c *Call, now time.Duration) {
	if c.Module != LLM {
		return
	}
	s.graph.CallArrived(programKey(c), graphClassOf(c), c.InputTokens, now)
	// Forgetting scans every program; once in a while is enough to bound them.
	if s.submits++; s.submits%256 == 0 {
		s.graph.Forget(now)
	}
}

func (s *Scheduler) learnEnd(c *Call, now time.Duration) {
	if c.Module == LLM {
		s.graph.CallEnded(programKey(c), c.Service, now)
	}
}
