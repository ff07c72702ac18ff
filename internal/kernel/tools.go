package kernel

import (
	"time"

	"github.com/aios-go/aios/api"
	"github.com/aios-go/aios/internal/sched"
)

// The kernel runs agents' tool calls as syscalls, so it knows exactly when a session's
// tool starts and ends. Those times replace what was otherwise guessed from the gaps
// between the session's LLM calls: KV retention learns each tool's duration from them,
// and working-set admission keeps a program whose tool runs active and knows when its
// context will be needed again.

// toolStarted notes that sc, a call of tool, got a slot; k.mu held.
func (k *Kernel) toolStarted(sc *Syscall, tool string) {
	if sc.Module != sched.Tool {
		return
	}
	var expect time.Duration
	if k.retain != nil {
		expect = k.retain.toolStarted(sc.Program, tool, time.Now())
	}
	k.sched.ToolStarted(sc.Program, tool, expect, k.now())
}

// toolEnded notes that sc's run ended; k.mu held, before the scheduler completes it.
func (k *Kernel) toolEnded(sc *Syscall, tool string) {
	if sc.Module != sched.Tool {
		return
	}
	if k.retain != nil {
		k.retain.toolEnded(tool, k.now()-sc.call.Started)
	}
	k.sched.ToolEnded(sc.Program, tool, k.now())
}

// armQueueTimer fails sc as busy if it still waits for its resource after its queue
// bound; k.mu held.
func (k *Kernel) armQueueTimer(sc *Syscall) {
	if sc.queueWait <= 0 {
		return
	}
	wait, resource, m := sc.queueWait, sc.call.Model, sc.Module
	sc.queueTimer = time.AfterFunc(wait, func() {
		k.mu.Lock()
		queued := sc.call.State == sched.Queued
		k.mu.Unlock()
		if queued {
			e := api.Errorf(api.BackendOverloaded, "%s %q stayed busy: the call waited %v for a free slot; retry later", m, resource, wait)
			e.RetryAfter = time.Second
			sc.cancel(e)
		}
	})
}

// stopQueueTimer disarms sc's queue bound once it has started or ended; k.mu held.
func (sc *Syscall) stopQueueTimer() {
	if sc.queueTimer != nil {
		sc.queueTimer.Stop()
		sc.queueTimer = nil
	}
}
