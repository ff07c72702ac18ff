package kernel

import "time"

// TraceInfo is what a tracer reads of an ended syscall besides its exported fields,
// State, Result and Timings.
type TraceInfo struct {
	// Resource is what the call ran on besides a module slot: an LLM call's model (the
	// default model when the call named none), a tool call's tool; "" for others.
	Resource string
	// Slices is how many times the call was given a core or slot; Preempted how many
	// times an LLM call was context-switched out.
	Slices, Preempted int
	// Service is the time it spent running, summed over its slices.
	Service time.Duration

	// LLM calls only.
	LLM bool
	// Backend and Core are those of the core that ran the call last ("" when none did):
	// the backend as configured (sim, openai, vllm, anthropic, gemini, ...), the core as
	// /core/status names it.
	Backend, Core string
	// MaxTokens is the output budget the call asked for (the kernel's default when it
	// asked for none); Temperature is nil when it set none.
	MaxTokens   int
	Temperature *float64
	// Streamed is how many text deltas the call streamed, about one token each: what
	// a call that failed midway is charged.
	Streamed int
}

// TraceInfo reports what the kernel knows of sc beyond its exported fields. Call it from
// an end hook (Options.OnEnd, ObserveEnds): the kernel changes nothing of a syscall once
// it has ended, and the hook runs after the kernel's last change, on the same goroutine.
func (s *Syscall) TraceInfo() TraceInfo {
	var ti TraceInfo
	if c := s.call; c != nil {
		ti.Resource, ti.Slices, ti.Service = c.Model, c.Slices, c.Service
	}
	if s.llmState != nil {
		ti.LLM = true
		ti.Preempted, ti.Streamed = s.preempted, s.produced
		if s.req != nil {
			ti.MaxTokens, ti.Temperature = s.req.MaxTokens, s.req.Temperature
		}
		if s.core != nil {
			ti.Backend, ti.Core = s.core.cfg.Backend, coreName(s.core)
		}
	}
	return ti
}

// ModelBackend is the backend serving model (that of its first core), or "" when no
// core serves it: the provider of an LLM call that ended before any core ran it.
func (k *Kernel) ModelBackend(model string) string {
	// byModel is filled in New and only read after.
	if cores := k.byModel[model]; len(cores) > 0 {
		return cores[0].cfg.Backend
	}
	return ""
}
