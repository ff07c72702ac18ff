package kernel

import (
	"github.com/aios-go/aios/internal/llm"
	"github.com/aios-go/aios/internal/sched"
)

// applySwaps carries out the working set's swaps (sched.WorkingSet.Swap). The kernel
// does not track which core holds a program's context, so each swap goes to every core
// that can move KV; a core that has not served the session ignores it. Cores only queue
// the move, so this is safe under the kernel's lock.
func (k *Kernel) applySwaps(swaps []sched.Swap) {
	for _, sw := range swaps {
		for _, e := range k.cores {
			if s, ok := e.cfg.Core.(llm.SessionSwapper); ok {
				s.SwapSession(sw.Program, sw.In)
			}
		}
	}
}
