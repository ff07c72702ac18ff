package bench

import (
	"errors"
	"strconv"
	"time"

	"github.com/aios-go/aios/internal/sched"
)

// ErrAEGLive refuses a +aeg arm over HTTP. The kernel's eviction and end-of-program
// hints reach aios sim serve now, but the kernel sends them only with its retention
// hints (scheduler.kv_retention), so a live +aeg arm would be +ttl+aeg, and the graph's
// accuracy is measured by the virtual driver alone.
var ErrAEGLive = errors.New("+aeg and +aeg-suspend need --virtual: the kernel sends eviction hints only together with its retention pins (+ttl), so the arm cannot be run alone over HTTP")

// reuseHint is the eviction hint of the call the program now runs: how long after it
// ends the program's graph expects its next call, stretched by the odds it ends
// instead (sched.Reuse.Horizon). 0, no hint, while its class is not learned.
func (v *vsim) reuseHint(vp *vprog) time.Duration {
	gap, pEnd, ok := v.sched.Graph().AfterCall(strconv.Itoa(vp.p.ID))
	if !ok {
		return 0
	}
	return max(sched.Reuse{At: gap, PEnd: pEnd}.Horizon(0), time.Nanosecond)
}

// forget tells the engine of a +aeg arm's program's last call that the program has
// ended, as the kernel knows when a session ends: its contexts past the system prompt
// its class shares are evicted first. Every branch's: a program that forked left one
// context per branch, and a branch not named would keep its blocks hinted until the
// hint went stale, evicted meanwhile only after live programs' overdue ones. Each
// branch is named past what it shares with those before it, so a block is demoted
// once.
func (v *vsim) forget(vp *vprog) {
	if !v.arm.AEG || vp.eng == nil {
		return
	}
	var done [][]uint32
	for i, c := range vp.ctx {
		if vp.children[i] > 0 || len(c) == 0 {
			continue
		}
		keep := vp.p.System
		for _, d := range done {
			keep = max(keep, commonPrefix(c, d))
		}
		vp.eng.e.Forget(c, keep)
		done = append(done, c)
	}
}

func commonPrefix(a, b []uint32) int {
	n := min(len(a), len(b))
	for i := range n {
		if a[i] != b[i] {
			return i
		}
	}
	return n
}
