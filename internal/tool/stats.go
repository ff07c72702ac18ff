package tool

import "time"

// Stats is one tool's counters since it was first registered; a tool replaced by
// SetSource under the same name keeps them.
type Stats struct {
	Name     string `json:"name"`
	Source   string `json:"source"`
	Inflight int    `json:"inflight"` // slots taken (TryAcquire without Release yet)
	// PeakInflight is the most slots ever taken at once: the limit, held, shows here.
	PeakInflight int `json:"peak_inflight"`
	// Calls counts every Run of the tool, refused ones included.
	Calls int64 `json:"calls"`
	// Errors counts Runs that returned an error other than a refusal of the arguments:
	// the tool's failures, timeouts, and fast failures of a down source or open breaker.
	// A Result with IsError is an answer, not an error.
	Errors int64 `json:"errors"`
	// Rejected counts arguments refused by validation, by Validate or by Run.
	Rejected int64 `json:"rejected"`
	Timeouts int64 `json:"timeouts"`
	// BreakerState is closed, open or half_open. An open breaker whose cooldown has
	// passed still reads open until the next call probes it.
	BreakerState string `json:"breaker_state"`
	// MeanDuration is the mean time of the calls that reached the tool.
	MeanDuration time.Duration `json:"mean_duration_ns"`
	Limits       Limits        `json:"limits"`
}

// counters are a tool's running totals, kept under the manager's mutex: a handful of
// additions per call, never held while a tool runs.
type counters struct {
	calls, errors, rejected, timeouts int64
	ran                               int64 // calls that reached the tool
	peak                              int   // most slots taken at once
	busy                              time.Duration
}

func (c *counters) mean() time.Duration {
	if c.ran == 0 {
		return 0
	}
	return c.busy / time.Duration(c.ran)
}
