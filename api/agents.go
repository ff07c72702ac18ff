package api

import (
	"encoding/json"
	"time"
)

// AgentSubmit is the body of POST /agents/submit, in AIOS's shape. AgentID names the
// agent: a folder under one of the kernel's agents dirs (relative, or absolute inside
// one), or the name in a package's config.json or aios-agent.json. AgentConfig carries
// the task and anything else the agent reads (passed to it whole as AIOS_CONFIG); the
// kernel also reads "timeout" (seconds), "limits" and "restart" from it, which may only
// tighten what the kernel's configuration allows.
type AgentSubmit struct {
	AgentID     string         `json:"agent_id"`
	AgentConfig map[string]any `json:"agent_config"`
}

// AgentSubmitResponse is AIOS's answer to a submission, plus the run's agent name and
// program (the session its syscalls are scheduled as).
type AgentSubmitResponse struct {
	Status      string `json:"status"` // "success"
	ExecutionID int64  `json:"execution_id"`
	Message     string `json:"message"`
	AgentID     string `json:"agent_id"`
	AgentName   string `json:"agent_name"`
	Program     string `json:"program"`
}

// AgentState is where an agent run is in its life.
type AgentState string

const (
	AgentQueued    AgentState = "queued"  // waiting for a slot, or for its restart backoff
	AgentRunning   AgentState = "running" // its process is alive
	AgentExited    AgentState = "exited"  // ended on its own with exit status 0
	AgentFailed    AgentState = "failed"  // non-zero exit, signal, limit, timeout or no start
	AgentCancelled AgentState = "cancelled"
)

// Terminal reports whether the run has ended for good.
func (s AgentState) Terminal() bool {
	return s == AgentExited || s == AgentFailed || s == AgentCancelled
}

// AIOSStatus is the state in AIOS's vocabulary, whose status route knows "running" and
// "completed" only; failed and cancelled runs keep their own names.
func (s AgentState) AIOSStatus() string {
	switch s {
	case AgentQueued, AgentRunning:
		return "running"
	case AgentExited:
		return "completed"
	}
	return string(s)
}

// AgentLimits bound an agent's process: address space (RLIMIT_AS), CPU time
// (RLIMIT_CPU) and open files (RLIMIT_NOFILE). 0 leaves a limit as inherited.
type AgentLimits struct {
	MemoryMB   int64 `json:"memory_mb,omitempty"`
	CPUSeconds int64 `json:"cpu_seconds,omitempty"`
	OpenFiles  int64 `json:"open_files,omitempty"`
}

// AgentRestart is a run's restart policy: "never", or "on-failure" with at most
// MaxRestarts restarts, the first after BackoffSeconds, doubling.
type AgentRestart struct {
	Policy         string  `json:"policy"`
	MaxRestarts    int     `json:"max_restarts,omitempty"`
	BackoffSeconds float64 `json:"backoff_seconds,omitempty"`
}

// AgentRun is the record of one agent run.
type AgentRun struct {
	ExecutionID int64  `json:"execution_id"`
	AgentID     string `json:"agent_id"`   // as submitted
	AgentName   string `json:"agent_name"` // the package's name: its agent_name on /query
	Kind        string `json:"kind"`       // "aios" (config.json) or "exec" (aios-agent.json)
	Dir         string `json:"dir"`
	Program     string `json:"program"`
	Task        string `json:"task"`
	// Config is the agent_config submitted.
	Config    map[string]any `json:"config,omitempty"`
	State     AgentState     `json:"state"`
	PID       int            `json:"pid,omitempty"`
	Submitted time.Time      `json:"submit_time"`
	Started   *time.Time     `json:"start_time,omitempty"`
	Ended     *time.Time     `json:"end_time,omitempty"`
	ExitCode  *int           `json:"exit_code,omitempty"`
	// Result is what the agent returned: the JSON of run()'s return value for AIOS
	// folders, the last result line an executable printed, or absent.
	Result   json.RawMessage `json:"result,omitempty"`
	Error    string          `json:"error,omitempty"`
	Restarts int             `json:"restarts"`
	Limits   AgentLimits     `json:"limits"`
	Restart  AgentRestart    `json:"restart"`
	// TimeoutSeconds bounds the whole run, restarts included; 0: none.
	TimeoutSeconds float64 `json:"timeout_seconds,omitempty"`
	// Requirements are the lines of an AIOS folder's meta_requirements.txt. The kernel
	// installs nothing: they are reported so an operator can.
	Requirements []string `json:"requirements,omitempty"`
}

// AgentStatus is GET /agents/{execution_id}/status and each entry of GET /agents/ps:
// AIOS's status ("running", "completed", "failed", "cancelled") and message beside the
// run's record, whose result is there once it has one.
type AgentStatus struct {
	Status  string `json:"status"`
	Message string `json:"message,omitempty"`
	AgentRun
}

// AgentList is GET /agents/ps.
type AgentList struct {
	Status    string        `json:"status"` // "success"
	Processes []AgentStatus `json:"processes"`
}

// AgentLogLine is one line an agent wrote.
type AgentLogLine struct {
	Time    time.Time `json:"time"`
	Stream  string    `json:"stream"` // stdout or stderr
	Text    string    `json:"text"`
	Attempt int       `json:"attempt"` // 0 for the first start, n for the n-th restart
}

// AgentLogs is GET /agents/{execution_id}/logs: the newest lines the kernel kept, oldest
// first. Dropped counts older lines that no longer fit.
type AgentLogs struct {
	ExecutionID int64          `json:"execution_id"`
	State       AgentState     `json:"state"`
	Lines       []AgentLogLine `json:"lines"`
	Dropped     int64          `json:"dropped"`
}
