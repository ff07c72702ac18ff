package api

// DashboardState is GET /ui/api/state, and each "state" event of GET /ui/api/events:
// what the kernel is doing now, as the dashboard at /ui and `aios top` show it. Times
// are Unix milliseconds (fractional), the form a browser's clock reads; 0 means not yet.
type DashboardState struct {
	TimeMs    float64 `json:"time_ms"`
	StartedMs float64 `json:"started_ms"`
	Status    string  `json:"status"` // running, shutting_down
	Scheduler string  `json:"scheduler"`
	// Modules: each kernel module's queue and running calls, in the kernel's order.
	Modules []DashboardModule `json:"modules"`
	Cores   []LLMCoreStatus   `json:"cores"`
	// Agents: every agent the kernel has charged or that has calls in flight or among
	// the recent calls, by name.
	Agents []DashboardAgent `json:"agents"`
	// InFlight are the syscalls not yet ended, by ID.
	InFlight []DashboardSyscall `json:"inflight"`
	// Recent are the latest ended syscalls, oldest first (the kernel keeps 1024); sent
	// by GET /ui/api/state and the first event of a stream, whose later "end" events
	// carry each call as it ends.
	Recent []DashboardSyscall `json:"recent,omitempty"`
	// LastEnded is the sequence number of the latest ended syscall.
	LastEnded  uint64               `json:"last_ended"`
	Usage      UsageCounters        `json:"usage"`
	WorkingSet *DashboardWorkingSet `json:"working_set,omitempty"`
	// Tools is GET /admin/tools's answer; absent when the tool module is off.
	Tools any `json:"tools,omitempty"`
	// Memory is GET /admin/memory's answer, read at most every few seconds; absent when
	// the memory module is off.
	Memory *MemoryStats `json:"memory,omitempty"`
}

// DashboardModule is one kernel module's load.
type DashboardModule struct {
	Name    string `json:"name"`
	Enabled bool   `json:"enabled"`
	Queued  int    `json:"queued"`
	Running int    `json:"running"`
}

// DashboardAgent is one agent: its programs, calls in flight and tokens charged.
type DashboardAgent struct {
	Name     string             `json:"name"`
	Programs []DashboardProgram `json:"programs"`
	Queued   int                `json:"queued"`
	Running  int                `json:"running"`
	// LastActiveMs is when its latest call arrived or ended, among those the kernel
	// still remembers; 0 when none.
	LastActiveMs float64       `json:"last_active_ms"`
	Usage        UsageCounters `json:"usage"`
}

// DashboardProgram is one program (session) of an agent seen in flight or among the
// recent calls.
type DashboardProgram struct {
	Name         string  `json:"name"`
	Inflight     int     `json:"inflight"`
	LastActiveMs float64 `json:"last_active_ms"`
}

// DashboardSyscall is one syscall on the timeline: in flight (state queued or running)
// or ended (done, failed, cancelled, timed_out).
type DashboardSyscall struct {
	ID      uint64 `json:"id"`
	Seq     uint64 `json:"seq,omitempty"` // ended calls: their order of ending
	Agent   string `json:"agent"`
	Program string `json:"program"`
	Module  string `json:"module"` // llm, memory, storage, tool
	Op      string `json:"op"`
	// Resource is an LLM call's model or a tool call's tool.
	Resource string `json:"resource,omitempty"`
	Core     string `json:"core,omitempty"` // running LLM calls: the core
	State    string `json:"state"`
	Kind     Kind   `json:"kind,omitempty"`
	// ArrivalMs, StartMs (first given a core or slot) and EndMs; WaitedMs is the time
	// spent queued, summed over slices.
	ArrivalMs float64 `json:"arrival_ms"`
	StartMs   float64 `json:"start_ms"`
	EndMs     float64 `json:"end_ms"`
	WaitedMs  float64 `json:"waited_ms"`
	// Slices: times the call was given a core; Preempted: LLM context switches.
	Slices    int `json:"slices"`
	Preempted int `json:"preempted"`
	// Tokens: the KV an LLM call holds on its core.
	Tokens int `json:"tokens,omitempty"`
}

// DashboardWorkingSet is working-set admission's state, when it is on.
type DashboardWorkingSet struct {
	Active      int `json:"active"`
	Tokens      int `json:"tokens"`
	Admissions  int `json:"admissions"`
	Suspensions int `json:"suspensions"`
}
