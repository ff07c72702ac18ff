package kernel

import (
	"time"

	"github.com/aios-go/aios/api"
	"github.com/aios-go/aios/internal/sched"
)

// Graphs reports the execution graphs the scheduler has learned, per class of program,
// so an operator can see what the kernel expects of each agent.
func (k *Kernel) Graphs() api.ExecutionGraphs {
	k.mu.Lock()
	defer k.mu.Unlock()
	g := k.sched.Graph()
	mae, n := g.Accuracy()
	out := api.ExecutionGraphs{Classes: []api.GraphClass{}, PredictionMAEMs: float64(mae) / float64(time.Millisecond), Predictions: n}
	for _, c := range g.Snapshot() {
		ac := api.GraphClass{Class: c.Class, Programs: c.Programs, States: make([]api.GraphState, 0, len(c.States))}
		for _, s := range c.States {
			ac.States = append(ac.States, api.GraphState{State: s.State, Next: s.Next, Seen: s.Seen,
				DurationMs: s.DurationMS, ContextGrowth: s.Growth})
		}
		out.Classes = append(out.Classes, ac)
	}
	return out
}

// reuseHint is the eviction hint sent with a call of program to engines that take
// retention hints: how long after the call ends the program's execution graph expects
// its next call, stretched by the odds it ends instead (sched.Reuse.Horizon); 0 while
// its class is not learned. k.mu held.
func (k *Kernel) reuseHint(program string) time.Duration {
	gap, pEnd, ok := k.sched.Graph().AfterCall(program)
	if !ok {
		return 0
	}
	return max(sched.Reuse{At: gap, PEnd: pEnd}.Horizon(0), time.Millisecond)
}
