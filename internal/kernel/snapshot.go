package kernel

import (
	"sort"
	"time"

	"github.com/aios-go/aios/api"
	"github.com/aios-go/aios/internal/sched"
)

// RecentSize is how many ended syscalls the kernel remembers for the dashboard's
// timeline: enough for a few minutes of a handful of agents, small enough (about 200 KB)
// to keep always on.
const RecentSize = 1024

// SyscallView is one syscall as the dashboard draws it: in flight (State "queued" or
// "running") or ended (its terminal state).
type SyscallView struct {
	ID      uint64
	Agent   string
	Program string
	Module  sched.Module
	Op      string
	// Priority is the caller's priority (larger runs first under the priority policy).
	Priority int
	// Resource is what the call runs on besides a module slot: an LLM call's model, a
	// tool call's tool.
	Resource string
	// Core is the LLM core running the call now; running LLM calls only.
	Core  string
	State string
	// Kind is an ended call's error kind; "" when it is done.
	Kind    api.Kind
	Arrival time.Time
	Start   time.Time // first given a core or a slot; zero when it never was
	End     time.Time // zero while in flight
	// Waited is the time spent queued so far, summed over slices (a preempted call
	// queues again).
	Waited time.Duration
	// Slices is how many times the call was given a core; Preempted how many times an
	// LLM call was context-switched out.
	Slices, Preempted int
	// Tokens is the KV an LLM call holds on its core (prompt and output budget).
	Tokens int
	// Seq numbers ended calls in the order they ended, from 1; 0 while in flight.
	Seq uint64
	// Stopping marks a running LLM call told to stop for a context switch whose slice
	// has not yet come back to the queue.
	Stopping bool
}

// Snapshot is what the kernel is doing at one moment.
type Snapshot struct {
	Time time.Time
	// InFlight are the syscalls not yet ended, by ID.
	InFlight []SyscallView
	// LastEnded is the Seq of the latest ended syscall: Ended(LastEnded) returns what
	// ends after this snapshot.
	LastEnded uint64
	// Queued and Running count each module's calls, and Cores are the LLM cores' loads
	// (in Status's order), at the same moment as InFlight, so a view drawn from both
	// adds up.
	Queued, Running [sched.NumModules]int
	Cores           []CoreLoad
}

// CoreLoad is what an LLM core runs at the moment of a Snapshot.
type CoreLoad struct {
	ID       string // as Status names it
	Inflight int
	Tokens   int // KV tokens its calls hold (prompt and output budget)
}

// Snapshot lists the syscalls in flight, taken under the kernel's lock so every call is
// seen in one consistent state.
func (k *Kernel) Snapshot() Snapshot {
	k.mu.Lock()
	defer k.mu.Unlock()
	now := time.Now()
	s := Snapshot{Time: now, InFlight: make([]SyscallView, 0, len(k.inflight)), LastEnded: k.recent.seq}
	for m := sched.Module(0); m < sched.NumModules; m++ {
		s.Queued[m] = k.sched.Queued(m)
	}
	for _, l := range k.sched.Loads() {
		s.Running[l.Spec.Module] += l.Inflight
		if l.Spec.Module == sched.LLM {
			s.Cores = append(s.Cores, CoreLoad{ID: coreName(k.cores[l.Spec.ID]), Inflight: l.Inflight, Tokens: l.Tokens})
		}
	}
	for _, sc := range k.inflight {
		v := k.viewLocked(sc)
		if c := sc.call; c.State == sched.Queued {
			v.State = "queued"
			// Time not spent running was spent queued: this counts the current wait too,
			// which the scheduler adds to Waited only when the call leaves the queue.
			v.Waited = max(now.Sub(sc.timings.Arrival)-c.Service, c.Waited)
		} else {
			v.State = "running"
			v.Stopping = c.State == sched.Preempting
			if sc.Module == sched.LLM && int(c.Core) < len(k.cores) {
				v.Core = coreName(k.cores[c.Core])
			}
		}
		s.InFlight = append(s.InFlight, v)
	}
	sort.Slice(s.InFlight, func(i, j int) bool { return s.InFlight[i].ID < s.InFlight[j].ID })
	return s
}

// Ended returns the ended syscalls whose Seq is after seq, oldest first; at most the
// last RecentSize, so a reader that fell further behind misses the oldest.
func (k *Kernel) Ended(after uint64) []SyscallView {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.recent.since(after)
}

// Stopped is closed once the kernel has shut down: every syscall ended and the
// dispatcher stopped. Readers that stream the kernel's state end there.
func (k *Kernel) Stopped() <-chan struct{} { return k.stopped }

// viewLocked fills what in-flight and ended views share. Called under k.mu.
func (k *Kernel) viewLocked(sc *Syscall) SyscallView {
	v := SyscallView{
		ID: sc.ID, Agent: sc.Agent, Program: sc.Program, Module: sc.Module, Op: sc.Op, Priority: sc.Priority,
		Arrival: sc.timings.Arrival, Start: sc.timings.Start,
	}
	if c := sc.call; c != nil {
		v.Resource, v.Waited, v.Slices = c.Model, c.Waited, c.Slices
		if sc.llmState != nil {
			v.Tokens = c.Tokens
		}
	}
	if sc.llmState != nil {
		v.Preempted = sc.preempted
	}
	return v
}

// recentRing keeps the last RecentSize ended syscalls. Guarded by the kernel's mutex.
type recentRing struct {
	buf []SyscallView
	seq uint64 // Seq of the latest entry
}

// recordEnd remembers sc, which has just reached its terminal state. Called under k.mu,
// from end, so the ring holds every syscall that ended, in order.
func (k *Kernel) recordEnd(sc *Syscall) {
	v := k.viewLocked(sc)
	v.State = string(sc.state)
	v.Kind = api.KindOf(sc.err)
	v.End = sc.timings.End
	v.Waited = sc.timings.Waiting
	if v.Start.IsZero() {
		// Ended in the queue: all of its life was waiting.
		v.Waited = sc.timings.Turnaround
	}
	k.recent.add(v)
}

func (r *recentRing) add(v SyscallView) {
	if r.buf == nil {
		r.buf = make([]SyscallView, RecentSize)
	}
	r.seq++
	v.Seq = r.seq
	r.buf[(r.seq-1)%RecentSize] = v
}

func (r *recentRing) since(after uint64) []SyscallView {
	first := after + 1
	if r.seq >= RecentSize && first <= r.seq-RecentSize {
		first = r.seq - RecentSize + 1
	}
	if first > r.seq {
		return nil
	}
	out := make([]SyscallView, 0, r.seq-first+1)
	for s := first; s <= r.seq; s++ {
		out = append(out, r.buf[(s-1)%RecentSize])
	}
	return out
}
