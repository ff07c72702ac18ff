package kernel

import (
	"errors"

	"github.com/aios-go/aios/api"
	"github.com/aios-go/aios/internal/sched"
)

// CancelProgram cancels every queued or running syscall of program and returns how many
// it cancelled. The agent runtime calls it when it stops an agent: killing the process
// closes its connections, but a call whose request the server has not yet seen end would
// otherwise keep its core until it finished. A cause that is not a typed error is
// wrapped as caller_cancelled, so the calls end in state cancelled.
func (k *Kernel) CancelProgram(program string, cause error) int {
	if program == "" {
		return 0
	}
	if ae := (*api.Error)(nil); !errors.As(cause, &ae) {
		cause = api.Wrap(api.CallerCancelled, cause, "program %s was cancelled", program)
	}
	k.mu.Lock()
	var queued, running []*Syscall
	for _, sc := range k.inflight {
		if sc.Program != program {
			continue
		}
		if sc.call.State == sched.Queued {
			queued = append(queued, sc)
		} else {
			running = append(running, sc)
		}
	}
	k.mu.Unlock()
	// Queued calls go first, and synchronously (abandon, rather than waiting for the
	// context's AfterFunc): otherwise the slot a cancelled running call frees could be
	// given to the next queued call of the same program before its cancellation lands.
	// Both run outside the lock, which abandon takes.
	for _, sc := range queued {
		sc.cancel(cause)
		k.abandon(sc)
	}
	for _, sc := range running {
		sc.cancel(cause)
	}
	return len(queued) + len(running)
}
