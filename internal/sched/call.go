package sched

import (
	"container/list"
	"time"
)

// Module is the kernel module a call is for; each module has its own queue.
type Module uint8

const (
	LLM Module = iota
	Memory
	Storage
	Tool
	NumModules
)

var moduleNames = [NumModules]string{"llm", "memory", "storage", "tool"}

func (m Module) String() string {
	if m < NumModules {
		return moduleNames[m]
	}
	return "unknown"
}

// ParseModule maps "llm", "memory", "storage" and "tool" to their Module.
func ParseModule(s string) (Module, bool) {
	for i, n := range moduleNames {
		if n == s {
			return Module(i), true
		}
	}
	return 0, false
}

// State is where a call is in its life.
type State uint8

const (
	Queued State = iota
	Running
	Preempting // told to stop; waiting for the owner to Requeue it
	Finished
)

// CoreID names a core (an LLM backend instance or a module worker pool).
type CoreID int

// Call is the scheduler's view of one system call.
type Call struct {
	ID       uint64
	Agent    string
	Program  string
	Module   Module
	Model    string // LLM calls: the model asked for; "" means any core of the module
	Priority int    // larger runs first under the priority policy
	Tokens   int    // KV tokens the call may hold at once (prompt + max output), for admission
	Arrival  time.Duration

	// What policies that learn may read: the prompt's size and a short text to compare
	// calls by (e.g. its last message), and, set by the owner before Complete, the
	// output it produced.
	InputTokens  int
	MaxOutput    int
	Text         string
	OutputTokens int
	// Class names what the call's program is like, for policies that predict a
	// program's size from those of its class (psjf): the kernel uses the program's
	// system prompt. Empty: the agent.
	Class string
	// Prefix is the prompt as chained hashes of its blocks (each names the whole prefix
	// up to it), for cache-aware routing; empty disables it for this call.
	Prefix []uint64

	// Deadline is when the call should have started producing (its TTFT objective) or
	// its program should be done (its TCT objective), whichever is first, on the
	// scheduler's clock; 0 means no objective (SLO.Deadline derives it). Only the slo
	// policy orders by it.
	Deadline time.Duration

	// NoPreempt marks a call that cannot be snapshotted now (it is emitting a tool call).
	NoPreempt bool

	// Maintained by the Scheduler; read-only for others.
	State      State
	Core       CoreID
	Started    time.Duration // start of the current slice
	FirstStart time.Duration
	HasStarted bool
	Waited     time.Duration // total time spent queued
	Service    time.Duration // total time spent running
	Slices     int           // times it was given a core

	enqueued time.Duration
	seq      uint64
	bypassed int           // later calls that passed it while it waited for room
	elem     *list.Element // fifo/rr position
	hidx     int           // priority heap position
}

// CoreSpec describes a core's identity and capacity.
type CoreSpec struct {
	ID          CoreID
	Module      Module
	Models      []string // models served; empty serves any
	MaxInflight int      // sequences at once; 0 means 1
	MaxTokens   int      // KV tokens at once; 0 means unlimited
}

func (c CoreSpec) serves(model string) bool {
	if len(c.Models) == 0 || model == "" {
		return true
	}
	for _, m := range c.Models {
		if m == model {
			return true
		}
	}
	return false
}

// Assignment is a dispatch decision: run Call on Core.
type Assignment struct {
	Call *Call
	Core CoreID
}
