package kernel

import (
	"context"
	"strings"
	"sync"
	"time"

	"github.com/aios-go/aios/api"
	"github.com/aios-go/aios/internal/llm"
	"github.com/aios-go/aios/internal/sched"
)

// State is a syscall's terminal state. Every syscall reaches exactly one.
type State string

const (
	StatePending   State = ""
	StateDone      State = "done"
	StateFailed    State = "failed"
	StateCancelled State = "cancelled"
	StateTimedOut  State = "timed_out"
)

// Timings are a syscall's wall-clock milestones. Waiting is the time spent queued across
// all its slices; Turnaround is arrival to end.
type Timings struct {
	Arrival    time.Time
	Start      time.Time // first time it was given a core
	End        time.Time
	Waiting    time.Duration
	Turnaround time.Duration
}

// Syscall is one system call in flight: the record of DESIGN.md plus its future.
type Syscall struct {
	ID       uint64
	Agent    string
	Program  string
	Thread   string
	Module   sched.Module
	Op       string
	Priority int
	Deadline time.Time

	call *sched.Call
	args any // a service module's arguments
	// queueWait bounds the time a call of a gated service waits for its resource;
	// queueTimer enforces it. Guarded by the kernel's mutex.
	queueWait  time.Duration
	queueTimer *time.Timer
	// LLM calls only: the request, its stream and the state kept across its slices.
	*llmState

	// ctx ends when the caller goes away, the deadline passes or the kernel shuts down.
	ctx    context.Context
	cancel context.CancelCauseFunc
	// release unhooks the syscall from the caller's context once it is terminal.
	release func() bool
	// gateRelease ends the call's hold on the access gate (Options.Gate); end calls it.
	gateRelease func(tokens int64)

	once    sync.Once
	done    chan struct{}
	state   State
	result  any
	err     error
	timings Timings
}

// Done is closed when the syscall reaches its terminal state.
func (s *Syscall) Done() <-chan struct{} { return s.done }

// State returns the terminal state, or StatePending.
func (s *Syscall) State() State {
	select {
	case <-s.done:
		return s.state
	default:
		return StatePending
	}
}

// Result returns the outcome; valid after Done is closed. An LLM call's result is an
// *llm.Result, a service's whatever its module returns.
func (s *Syscall) Result() (any, error) { return s.result, s.err }

// Timings returns the milestones; valid after Done is closed.
func (s *Syscall) Timings() Timings { return s.timings }

// Arrival is when the syscall was submitted; safe to read at any time.
func (s *Syscall) Arrival() time.Time { return s.timings.Arrival }

// Preempted is how many times the call was context-switched out.
func (s *Syscall) Preempted() int {
	if s.llmState == nil {
		return 0
	}
	return s.preempted
}

// Wait blocks until the syscall ends and returns its outcome. When ctx ends first the
// syscall is cancelled, and Wait still returns only after its terminal state is set.
func (s *Syscall) Wait(ctx context.Context) (any, error) {
	select {
	case <-s.done:
	case <-ctx.Done():
		s.cancel(api.Wrap(api.CallerCancelled, context.Cause(ctx), "the caller went away"))
		<-s.done
	}
	return s.result, s.err
}

// finish sets the terminal state once; later calls are no-ops, which is what makes
// "exactly one terminal state" hold when completion races cancellation.
//
// charge, when set, runs once with the outcome before anyone waiting sees it, so a caller
// that reads the token accounting after its call returns finds the call there.
func (s *Syscall) finish(res any, err error, now time.Time, charge func()) bool {
	first := false
	s.once.Do(func() {
		first = true
		s.result, s.err = res, err
		if charge != nil {
			charge()
		}
		switch api.KindOf(err) {
		case "":
			s.state = StateDone
		case api.CallerCancelled, api.KernelShuttingDown:
			s.state = StateCancelled
		case api.PolicyTimeout:
			s.state = StateTimedOut
		default:
			s.state = StateFailed
		}
		s.timings.End = now
		s.timings.Turnaround = now.Sub(s.timings.Arrival)
		if s.call != nil {
			s.timings.Waiting = s.call.Waited
		}
		s.cancel(nil)
		if s.release != nil {
			s.release()
		}
		close(s.done)
	})
	return first
}

// llmState is what an LLM syscall carries across its slices. Guarded by the kernel's
// mutex, except req and emit, which are fixed at submission.
type llmState struct {
	req  *llm.Request
	emit func(llm.Delta)

	core       *coreEntry
	stopRun    context.CancelCauseFunc // ends the current slice
	snapshot   strings.Builder         // assistant text produced so far, across slices
	produced   int                     // text deltas streamed so far: about one token each
	sliceStart int                     // produced when the current slice began
	preempted  int
	sawToolArg bool
	retry      retryState // retry.go
}
