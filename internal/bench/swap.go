package bench

import (
	"errors"
	"fmt"
	"strconv"

	"github.com/aios-go/aios/internal/llm/sim"
	"github.com/aios-go/aios/internal/sched"
)

// The virtual driver's side of the kernel's program lifecycle beyond LLM calls: it
// tells the scheduler about tool calls as the kernel does when it runs them
// (kernel/tools.go), and, in +swap arms, carries out the swaps working-set admission
// asks for (sched.Swap) on the engine where each program's context was left.

// ErrSwapLive refuses a +swap arm over HTTP. The kernel can carry swaps to aios sim
// serve now (openai.Config.Offload), but live agents run their tool steps themselves,
// so the kernel never hears a tool start and would swap only suspended programs: the
// arm would measure something other than it does in virtual time.
var ErrSwapLive = errors.New("+swap arms need --virtual: live agents run their tools themselves, so the kernel would not swap programs out on their tools")

// vswap remembers, per program, its last finished request and the engine that ran it:
// the context a swap moves.
type vswap struct {
	on   bool
	last map[string]swapAt
}

type swapAt struct {
	r *sim.Request
	g *vengine
}

// swapConfig is the working set of arm: the setup's, with swapping for +swap arms,
// whose engines must have a CPU tier to swap to.
func swapConfig(setup Setup, arm Arm, p sim.Profile) (sched.WorkingSet, error) {
	ws := wsConfig(setup, arm)
	if !arm.Swap {
		return ws, nil
	}
	if setup.KVOffloadGiB <= 0 || setup.Mode != sim.ModeVLLM {
		return ws, fmt.Errorf("arm %q swaps contexts to the engines' CPU KV tier: give them one with --kv-offload-gib (vllm engine mode)", arm.Name)
	}
	ws.Swap = true
	ws.SwapRate = p.OffloadBandwidth / float64(p.KVBytesPerToken)
	return ws, nil
}

// checkSwapArms refuses, before anything runs, +swap arms the run cannot carry out.
func checkSwapArms(arms []Arm, setup Setup, virtual bool) error {
	setup.defaults()
	p, err := sim.LookupProfile(setup.Profile)
	if err != nil {
		return err
	}
	for _, a := range arms {
		if !a.Swap {
			continue
		}
		if !virtual {
			return ErrSwapLive
		}
		if _, err := swapConfig(setup, a, p); err != nil {
			return err
		}
	}
	return nil
}

func progKey(vp *vprog) string { return strconv.Itoa(vp.p.ID) }

func (s *vswap) lastRequest(vp *vprog, r *sim.Request, g *vengine) {
	if !s.on {
		return
	}
	if s.last == nil {
		s.last = map[string]swapAt{}
	}
	s.last[progKey(vp)] = swapAt{r, g}
}

func (s *vswap) forget(vp *vprog) {
	if s.on {
		delete(s.last, progKey(vp))
	}
}

// The virtual driver runs a kernel arm's tool steps as the kernel runs the tools of
// agents that call them through it: the scheduler hears each start and end
// (sched.Scheduler.ToolStarted, ToolEnded), as from internal/kernel/tools.go, so its
// working set and execution graphs learn the same way in both. Direct arms have no
// scheduler to tell.

// toolStarted tells the scheduler vp started tool, expected to take what that tool has
// taken so far. A swap-out it causes frees room in the working set at once.
func (v *vsim) toolStarted(vp *vprog, tool string) {
	if v.sched == nil {
		return
	}
	v.sched.ToolStarted(progKey(vp), tool, v.est.Expect(tool), v.now)
	if v.swap.on {
		v.dispatch()
	}
}

func (v *vsim) toolEnded(vp *vprog, tool string) {
	if v.sched != nil {
		v.sched.ToolEnded(progKey(vp), tool, v.now)
	}
}

// applySwaps carries out a round's swaps: out, the engine copies the program's context
// to its tier (Store: the copy is free, and leaves the GPU to evict it in LRU order, as
// it would anyway; evicting it first, Offload, cost more loads than it saved, see
// docs/bench.md); in, it copies it back now and pays at its next step.
func (v *vsim) applySwaps(swaps []sched.Swap) {
	for _, sw := range swaps {
		at, ok := v.swap.last[sw.Program]
		if !ok {
			continue // no call of it has finished: nothing cached to move
		}
		if sw.In {
			if at.g.e.Prefetch(at.r) > 0 {
				v.kick(at.g)
			}
		} else {
			at.g.e.Store(at.r)
		}
	}
}
