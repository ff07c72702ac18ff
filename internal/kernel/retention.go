package kernel

import (
	"time"

	"github.com/aios-go/aios/api"
	"github.com/aios-go/aios/internal/sched"
)

// toolRetention asks engines to keep a session's KV cache pinned across its tool calls
// (the simulator's kv_ttl_ms hint), for a TTL learned from how long each tool took:
// the time from a call that ended in a tool call to the session's next call. Guarded by
// the kernel's mutex.
type toolRetention struct {
	est     *sched.Retention
	pending map[string]toolWait // session → the tool call it is waiting on
}

type toolWait struct {
	tool string
	at   time.Time
	// measured: the kernel ran the tool and timed it exactly, so the gap before the
	// session's next call (which adds the agent's own time) is not learned from.
	measured bool
}

// maxPending bounds the memory of sessions that never came back.
const maxPending = 1 << 16

func newToolRetention() *toolRetention {
	return &toolRetention{est: sched.NewRetention(), pending: map[string]toolWait{}}
}

// arrive learns from a session's return and returns the TTL for its new call: only a
// call that offers tools can end in a tool call, so only such calls are pinned, for the
// tool this session last waited on (or a first guess).
func (r *toolRetention) arrive(session string, tools []api.Tool, tokens, capacity int, now time.Time) time.Duration {
	w, back := r.pending[session]
	if back {
		if !w.measured {
			r.est.Observe(w.tool, now.Sub(w.at))
		}
		delete(r.pending, session)
	}
	if len(tools) == 0 {
		return 0
	}
	return r.est.TTL(w.tool, tokens, capacity)
}

// ended notes that a session's call ended in tool calls at now.
func (r *toolRetention) ended(session string, calls []api.ToolCall, now time.Time) {
	if len(calls) == 0 {
		return
	}
	if len(r.pending) >= maxPending {
		clear(r.pending)
	}
	r.pending[session] = toolWait{tool: calls[0].Function.Name, at: now}
}

// toolStarted notes that the kernel started tool for session and returns how long it
// is expected to take.
func (r *toolRetention) toolStarted(session, tool string, now time.Time) time.Duration {
	if len(r.pending) >= maxPending {
		clear(r.pending)
	}
	r.pending[session] = toolWait{tool: tool, at: now, measured: true}
	return r.est.Expect(tool)
}

// toolEnded learns how long a tool the kernel ran took: the exact time, where the gap
// between a session's calls can only guess it.
func (r *toolRetention) toolEnded(tool string, d time.Duration) {
	r.est.Observe(tool, d)
}
