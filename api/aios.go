package api

import "encoding/json"

// Query types and classes of AIOS's POST /query.
const (
	QueryLLM     = "llm"
	QueryTool    = "tool"
	QueryStorage = "storage"
	QueryMemory  = "memory"
)

// LLM action types of AIOS.
const (
	ActionChat         = "chat"
	ActionChatJSON     = "chat_with_json_output"
	ActionChatToolCall = "chat_with_tool_call_output"
	ActionCallTool     = "call_tool"
	ActionOperateFile  = "operate_file"
)

// QueryRequest is the body of POST /query.
type QueryRequest struct {
	AgentName string          `json:"agent_name"`
	QueryType string          `json:"query_type"`
	QueryData json.RawMessage `json:"query_data"`
}

// LLMRef names a model and, optionally, the backend that should serve it.
type LLMRef struct {
	Name    string `json:"name"`
	Backend string `json:"backend,omitempty"`
}

// LLMQuery is query_data of an llm query.
type LLMQuery struct {
	QueryClass        string          `json:"query_class,omitempty"`
	LLMs              []LLMRef        `json:"llms,omitempty"`
	Messages          []Message       `json:"messages"`
	Tools             []Tool          `json:"tools,omitempty"`
	ActionType        string          `json:"action_type,omitempty"`
	Temperature       *float64        `json:"temperature,omitempty"`
	MaxNewTokens      *int            `json:"max_new_tokens,omitempty"`
	MessageReturnType string          `json:"message_return_type,omitempty"`
	ResponseFormat    *ResponseFormat `json:"response_format,omitempty"`
	// Extensions of this kernel; AIOS's SDK never sends them.
	Priority *int   `json:"priority,omitempty"`
	Session  string `json:"session,omitempty"`
	// Memory asks for memory injection; ManagedContext has the kernel keep the session's
	// conversation (the agent sends only its new turn).
	Memory         bool `json:"memory,omitempty"`
	ManagedContext bool `json:"managed_context,omitempty"`
}

// QueryResponse is the body AIOS's /query returns. Response holds one of LLMResponse,
// MemoryResponse or ModuleResponse.
type QueryResponse struct {
	Response        any       `json:"response"`
	StartTimes      []float64 `json:"start_times"`
	EndTimes        []float64 `json:"end_times"`
	WaitingTimes    []float64 `json:"waiting_times"`
	TurnaroundTimes []float64 `json:"turnaround_times"`
}

// AIOSToolCall is a tool call in AIOS's response shape.
type AIOSToolCall struct {
	Name       string         `json:"name"`
	Parameters map[string]any `json:"parameters"`
	ID         string         `json:"id,omitempty"`
}

// LLMResponse is the response of an llm query. Backend failures travel here with
// status_code set and finished false, inside an HTTP 200, as AIOS does.
type LLMResponse struct {
	ResponseClass   string         `json:"response_class"`
	ResponseMessage *string        `json:"response_message"`
	ToolCalls       []AIOSToolCall `json:"tool_calls"`
	Finished        bool           `json:"finished"`
	Error           *string        `json:"error"`
	StatusCode      int            `json:"status_code"`
	// Kind and Usage are extensions AIOS clients ignore: Kind tells errors that share a
	// status code apart (a backend's 429 from a quota's).
	Kind  Kind   `json:"kind,omitempty"`
	Usage *Usage `json:"usage,omitempty"`
	// Memory says what the memory module did around the call, when it was asked to.
	Memory *MemoryUse `json:"memory,omitempty"`
	// ToolResults are the outcomes of the tool calls the kernel ran (action_type
	// call_tool), in the order of ToolCalls.
	ToolResults []ToolResult `json:"tool_results,omitempty"`
}

// ModuleResponse is the response of storage and tool queries.
type ModuleResponse struct {
	ResponseClass   string  `json:"response_class"`
	ResponseMessage *string `json:"response_message"`
	Finished        bool    `json:"finished"`
	Error           *string `json:"error"`
	StatusCode      int     `json:"status_code"`
	// Kind is an extension AIOS clients ignore, as in LLMResponse.
	Kind Kind `json:"kind,omitempty"`
}

// MemoryResponse is the response of memory queries.
type MemoryResponse struct {
	ResponseClass string           `json:"response_class"`
	MemoryID      *string          `json:"memory_id"`
	Content       *string          `json:"content"`
	Metadata      map[string]any   `json:"metadata"`
	SearchResults []map[string]any `json:"search_results"`
	Success       bool             `json:"success"`
	Error         *string          `json:"error"`
	StatusCode    int              `json:"status_code"`
}

// StatusResponse is GET /status.
type StatusResponse struct {
	Status  string `json:"status"`
	Version string `json:"version,omitempty"`
}

// CoreStatus is GET /core/status: the kernel's modules and LLM cores.
type CoreStatus struct {
	Status    string            `json:"status"`
	Scheduler string            `json:"scheduler"`
	Modules   map[string]string `json:"modules"`
	LLMCores  []LLMCoreStatus   `json:"llm_cores"`
	Queued    map[string]int    `json:"queued"`
	Running   map[string]int    `json:"running"`
}

// LLMCoreStatus describes one LLM core.
type LLMCoreStatus struct {
	ID                string `json:"id"`
	Name              string `json:"name"`
	Backend           string `json:"backend"`
	Healthy           bool   `json:"healthy"`
	Inflight          int    `json:"inflight"`
	TokensInflight    int    `json:"tokens_inflight"`
	MaxInflight       int    `json:"max_inflight"`
	MaxTokensInflight int    `json:"max_tokens_inflight"`
	Completed         uint64 `json:"completed"`
	Failed            uint64 `json:"failed"`
	// Retried counts failed attempts on this core that were tried again.
	Retried uint64 `json:"retried"`
	// State is "ok", "open" (taken out by the circuit breaker until a health probe
	// passes) or "cooling" (held out for the Retry-After its provider sent).
	State string `json:"state,omitempty"`
	// Held says new calls are held back in the kernel because the core's engine reports
	// it saturated (metrics admission).
	Held bool `json:"held,omitempty"`
}

// LLMListEntry is one element of GET /core/llms/list.
type LLMListEntry struct {
	Name     string `json:"name"`
	Backend  string `json:"backend"`
	Hostname string `json:"hostname,omitempty"`
	Cores    int    `json:"cores"`
}

// LLMList is GET /core/llms/list.
type LLMList struct {
	LLMs []LLMListEntry `json:"llms"`
}

// Empty fills the timing arrays of a response that ran no syscall, so they are [] on the
// wire rather than null, as AIOS clients index them.
func (r QueryResponse) Empty() QueryResponse {
	for _, p := range []*[]float64{&r.StartTimes, &r.EndTimes, &r.WaitingTimes, &r.TurnaroundTimes} {
		if *p == nil {
			*p = []float64{}
		}
	}
	return r
}
