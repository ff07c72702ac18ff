package sched

import (
	"sort"
	"time"
)

// Swapping through a CPU KV tier (WorkingSet.Swap), after Tokencake (offload an agent's
// KV to host memory while it waits on a function call, bring it back before the call
// returns) and KVFlow (prefetch ahead of the step that needs it). Without a tier a
// program waiting on a long tool keeps its place in the working set, and its context
// holds GPU memory the whole time, or it is suspended and its context is recomputed.
// With one, its context can leave the GPU at no compute cost and come back at PCIe
// speed, so it need not count against the cache while it waits: admission lets other
// programs in meanwhile.

// Swap is a move of a program's KV cache between an engine's GPU memory and its CPU
// tier that working-set admission asks of the owner, who knows where the program's
// context lives. Out: copy it to the tier and let the GPU evict it first. In: copy it
// back now (warm-up), before the program's next call.
type Swap struct {
	Program string
	In      bool
}

// SwapStats reports the swaps asked of owners so far, out and in (warm-ups).
func (s *Scheduler) SwapStats() (out, in int) {
	if s.ws == nil {
		return 0, 0
	}
	return s.ws.swapOuts, s.ws.swapIns
}

// toolStarted swaps p out when the tool it starts is expected to outlast SwapAfter and
// none of its calls is queued or running (then its context is in use).
func (w *workingSet) toolStarted(p *wsProgram, expect time.Duration) {
	if !w.cfg.Swap || !p.active || p.calls > 0 || expect < w.cfg.SwapAfter {
		return
	}
	w.deactivate(p)
	w.swapOut(p)
}

// swapOut notes that p left the working set with its context offloaded, so it is warmed
// before its tool returns and readmitted up to the suspension mark.
func (w *workingSet) swapOut(p *wsProgram) {
	if !w.cfg.Swap {
		return
	}
	p.swapped = true
	w.swaps = append(w.swaps, Swap{Program: p.key})
	w.swapOuts++
}

// returnLimit is the bound a swapped-out program is readmitted under: the suspension
// mark, not the admission mark, since it was admitted before and finishing the programs
// already begun is what keeps the working set small.
func (w *workingSet) returnLimit(s *Scheduler) int {
	return int(w.cfg.Suspend * float64(w.capacity(s)))
}

// warmAt is when a swapped-out program waiting on a tool is brought back: the tool's
// expected end, less the copy time of its context and the margin.
func (w *workingSet) warmAt(p *wsProgram) time.Duration {
	lead := w.cfg.SwapMargin
	if w.cfg.SwapRate > 0 {
		lead += time.Duration(float64(p.tokens) / w.cfg.SwapRate * float64(time.Second))
	}
	return p.back - lead
}

func (w *workingSet) warmable(p *wsProgram) bool {
	return p.swapped && !p.active && p.tools > 0 && p.back > 0
}

// warm readmits swapped-out programs whose warm-up time has come, soonest expected back
// first, while they fit under the suspension mark and no starving program holds the
// reservation, and asks the owner to copy their contexts back.
func (w *workingSet) warm(s *Scheduler, now time.Duration) {
	if !w.cfg.Swap {
		return
	}
	var due []*wsProgram
	for _, p := range w.progs {
		if w.warmable(p) && w.warmAt(p) <= now {
			due = append(due, p)
		}
	}
	sort.Slice(due, func(i, j int) bool {
		if due[i].back != due[j].back {
			return due[i].back < due[j].back
		}
		return due[i].arrived < due[j].arrived
	})
	limit := w.returnLimit(s)
	for _, p := range due {
		if w.reserved != nil && w.reserved != p {
			break
		}
		if w.used+p.tokens > limit && w.used > 0 {
			continue
		}
		w.activate(p, now)
		w.swaps = append(w.swaps, Swap{Program: p.key, In: true})
		w.swapIns++
	}
	w.returning = false
	for _, p := range w.progs {
		if p.swapped && p.waiting {
			w.returning = true
			break
		}
	}
}

// holdNew reports that p, never swapped out, must wait because a swapped-out program
// is back (its call queued) and not yet readmitted: programs already begun come back
// before new ones come in, or a long program swapped out at each tool waits behind
// every newcomer.
// A starving program holding the reservation is not held: it goes first of all.
func (w *workingSet) holdNew(p *wsProgram) bool {
	return w.cfg.Swap && w.returning && !p.swapped && w.reserved != p
}

// nextWarm is the earliest warm-up time after now, for the owner's timer.
func (w *workingSet) nextWarm(now time.Duration) (at time.Duration, ok bool) {
	if !w.cfg.Swap {
		return 0, false
	}
	for _, p := range w.progs {
		if !w.warmable(p) {
			continue
		}
		if t := w.warmAt(p); t > now && (!ok || t < at) {
			at, ok = t, true
		}
	}
	return at, ok
}

// takeSwaps hands over the swaps asked since the last call.
func (w *workingSet) takeSwaps() []Swap {
	out := w.swaps
	w.swaps = nil
	return out
}
