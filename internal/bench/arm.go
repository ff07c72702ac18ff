// Package bench measures agents with and without the kernel on the same simulated
// engines: workloads of agent programs (package workload), arms that run them (direct
// to the engines, or through the kernel under a policy), in virtual time (this
// package's discrete-event driver) or over real HTTP, and the statistics of package
// metrics.
package bench

import (
	"fmt"
	"strings"
	"time"

	"github.com/aios-go/aios/internal/llm/sim"
	"github.com/aios-go/aios/internal/sched"
)

// Arm is one way of running the agents.
type Arm struct {
	Name   string // as written: direct, direct+affinity, kernel:fifo, kernel:plas+ws
	Kernel bool   // through the kernel (else agents call engines themselves)
	// Affinity: direct agents send every call of a session to one engine, chosen by a
	// hash of the session (what production routers in front of vLLM do, and SAGA's
	// baseline), instead of spreading calls round robin.
	Affinity bool
	Policy   string // kernel's scheduling policy
	WS       bool   // working-set admission
	AFS      bool   // fair-share admission by agent in the working set (+ws+afs)
	TTL      bool   // tool-aware KV retention
	// AEG passes the kernel's Agent Execution Graphs down to the engine as eviction
	// hints: each call's blocks carry the predicted time to its program's next call,
	// and an ended program's context is evicted first.
	AEG bool
	// AEGSuspend (+aeg-suspend, implies AEG) also has the working set (+ws) suspend the
	// program the graph expects back furthest ahead (sched.WorkingSet.Graph).
	AEGSuspend bool
	// Swap: working-set admission swaps contexts through the engines' CPU KV tier
	// (sched.WorkingSet.Swap); needs +ws and --kv-offload-gib.
	Swap bool
}

// ParseArm reads "direct", "direct+affinity" or
// "kernel:<policy>[+ws[+afs][+swap]][+ttl][+aeg|+aeg-suspend]".
func ParseArm(s string) (Arm, error) {
	s = strings.TrimSpace(s)
	switch s {
	case "direct":
		return Arm{Name: s}, nil
	case "direct+affinity":
		return Arm{Name: s, Affinity: true}, nil
	}
	rest, ok := strings.CutPrefix(s, "kernel:")
	if !ok || rest == "" {
		return Arm{}, fmt.Errorf("arm %q: want direct, direct+affinity or kernel:<policy>[+ws[+afs][+swap]][+ttl][+aeg|+aeg-suspend] (policies: %v)", s, sched.PolicyNames())
	}
	a := Arm{Name: s, Kernel: true}
	rest, a.AEGSuspend = strings.CutSuffix(rest, "+aeg-suspend")
	rest, a.AEG = strings.CutSuffix(rest, "+aeg")
	a.AEG = a.AEG || a.AEGSuspend
	rest, a.TTL = strings.CutSuffix(rest, "+ttl")
	rest, a.Swap = strings.CutSuffix(rest, "+swap")
	rest, a.AFS = strings.CutSuffix(rest, "+afs")
	a.Policy, a.WS = strings.CutSuffix(rest, "+ws")
	if a.AEGSuspend && !a.WS {
		return Arm{}, fmt.Errorf("arm %q: +aeg-suspend chooses whom the working set suspends, so it needs +ws", s)
	}
	if a.Swap && !a.WS {
		return Arm{}, fmt.Errorf("arm %q: +swap is a mode of working-set admission; write kernel:%s+ws+swap", s, a.Policy)
	}
	if a.AFS && !a.WS {
		return Arm{}, fmt.Errorf("arm %q: +afs shares the working set between agents; write kernel:%s+ws+afs", s, a.Policy)
	}
	if _, err := sched.NewPolicy(sched.Config{Name: a.Policy, Slice: time.Second}); err != nil {
		return Arm{}, fmt.Errorf("arm %q: %w", s, err)
	}
	return a, nil
}

// ParseArms reads a comma-separated list of arms.
func ParseArms(s string) ([]Arm, error) {
	var out []Arm
	for _, part := range strings.Split(s, ",") {
		if strings.TrimSpace(part) == "" {
			continue
		}
		a, err := ParseArm(part)
		if err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no arms given")
	}
	return out, nil
}

// Setup is what every arm of a run shares: the engines and how agents behave.
type Setup struct {
	Profile string
	Cores   int
	Mode    sim.Mode
	// KVOffloadGiB gives each engine a CPU KV offload tier of this much host memory
	// (--kv-offload-gib); 0 means none.
	KVOffloadGiB float64
	TimeSlice    time.Duration // kernel:rr and preempting policies
	MaxBypass    int           // kernel: calls that may pass one waiting for room
	// MaxInflight caps the calls the kernel runs at once on each engine (the kernel's
	// llms.models[].max_inflight; 0: the engine's max_num_seqs). Direct agents are not
	// held to it.
	MaxInflight int
	WS          sched.WorkingSet // +ws arms: admission marks (zero: the defaults)
	// Policy holds the policies' parameters (PLAS's queues and β, fair's weights, …) for
	// kernel arms in both modes; its Name and Slice come from the arm and TimeSlice.
	Policy  sched.Config
	Routing sched.Routing // kernel arms with several cores
	// Retry is how direct agents retry refused calls (--retries). Agents calling the
	// kernel always use DefaultRetry, so the flag changes the baseline alone.
	Retry Retry
	// Belady records each engine's prefix-cache reference string and compares the
	// arm's misses with Bélády's MIN on it (Result.Belady). Virtual mode only: a live
	// engine's cache is behind HTTP.
	Belady bool
	// SLO sets deadlines on kernel calls and reports each arm's attainment (slo.go).
	SLO SLOSpec
}

// Retry is how an agent calling an engine directly retries a failed call, as agent
// frameworks do: exponential backoff from Base, capped at Max, Attempts tries in all.
type Retry struct {
	Base     time.Duration
	Max      time.Duration
	Attempts int
}

// DefaultRetry mirrors common client defaults (the OpenAI SDKs back off from 0.5 s to 8 s).
var DefaultRetry = Retry{Base: 500 * time.Millisecond, Max: 8 * time.Second, Attempts: 8}

// Baseline is the direct arm loads and capacities are measured against: agents calling
// the engines themselves, with session affinity when there are several engines, since
// spreading one session's calls over engines that each cache its prefix is a baseline
// no one runs in production.
func Baseline(cores int) Arm {
	if cores > 1 {
		return Arm{Name: "direct+affinity", Affinity: true}
	}
	return Arm{Name: "direct"}
}

// engineFor is the engine of n a direct agent sends a call of session to: by a hash of
// the session with affinity, else the next one round robin (rr counts the calls so far).
func engineFor(arm Arm, session string, rr, n int) int {
	if arm.Affinity {
		return int(hashKey("session", session) % uint64(n))
	}
	return rr % n
}

// policyConfig is the configuration of arm's policy.
func policyConfig(s Setup, arm Arm) sched.Config {
	pc := s.Policy
	pc.Name, pc.Slice = arm.Policy, s.TimeSlice
	return pc
}

// wsConfig is the working-set admission of a +ws arm.
func wsConfig(s Setup, arm Arm) sched.WorkingSet {
	ws := s.WS
	ws.FairShare = ws.FairShare || arm.AFS
	ws.Graph = ws.Graph || arm.AEGSuspend
	return ws
}

// maxInflight is the calls the kernel keeps running at once on an engine of p.
func (s Setup) maxInflight(p sim.Profile) int {
	if s.MaxInflight > 0 {
		return min(s.MaxInflight, p.MaxNumSeqs)
	}
	return p.MaxNumSeqs
}

// agentRetry is how agents of arm retry a refused call.
func agentRetry(s Setup, arm Arm) Retry {
	if arm.Kernel {
		return DefaultRetry
	}
	return s.Retry
}

func (r Retry) delay(attempt int) time.Duration {
	d := r.Base << min(attempt, 20)
	return min(d, r.Max)
}

func (s *Setup) defaults() {
	if s.Profile == "" {
		s.Profile = "llama3-8b-h100"
	}
	if s.Cores <= 0 {
		s.Cores = 1
	}
	if s.Mode == "" {
		s.Mode = sim.ModeVLLM
	}
	if s.TimeSlice <= 0 {
		s.TimeSlice = 500 * time.Millisecond
	}
	if s.Retry.Base <= 0 {
		s.Retry.Base, s.Retry.Max = DefaultRetry.Base, DefaultRetry.Max
	}
	if s.Retry.Attempts <= 0 {
		s.Retry.Attempts = DefaultRetry.Attempts
	}
	// The working set's default marks are higher where engines have a CPU tier, as in
	// the kernel (sched.WorkingSet.Tier).
	s.WS.Tier = s.KVOffloadGiB > 0
}
