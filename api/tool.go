package api

import "encoding/json"

// ToolQuery is query_data of a tool query: every call is run.
type ToolQuery struct {
	QueryClass string            `json:"query_class,omitempty"`
	ToolCalls  []ToolCallRequest `json:"tool_calls"`
	// Session is the program the calls belong to (an extension; default the agent), so
	// the scheduler knows which program waits on them.
	Session string `json:"session,omitempty"`
}

// ToolCallRequest is one call of a tool query. name may be AIOS's "author/tool" or the
// registry's "author__tool". parameters is the arguments object (a JSON string holding
// one is accepted too, as models emit them).
type ToolCallRequest struct {
	Name       string          `json:"name"`
	Parameters json.RawMessage `json:"parameters,omitempty"`
	ID         string          `json:"id,omitempty"`
}

// ToolResponse is AIOS's ToolResponse, plus each call's own outcome in ToolResults (an
// extension AIOS clients ignore). response_message is the one call's result text, or,
// for several calls, each result under a "[name]" line, in the calls' order.
type ToolResponse struct {
	ModuleResponse
	ToolResults []ToolResult `json:"tool_results"`
}

// ToolResult is one tool call's outcome. A call that ran has Content (IsError when the
// tool itself reported a failure); one the kernel could not run has Error, Kind and
// its HTTP-style StatusCode.
type ToolResult struct {
	Name       string          `json:"name"`
	ID         string          `json:"id,omitempty"`
	Content    *string         `json:"content"`
	IsError    bool            `json:"is_error,omitempty"`
	Truncated  bool            `json:"truncated,omitempty"`
	Structured json.RawMessage `json:"structured,omitempty"`
	Error      *string         `json:"error,omitempty"`
	Kind       Kind            `json:"kind,omitempty"`
	StatusCode int             `json:"status_code"`
	DurationMS float64         `json:"duration_ms"`
}

// ToolInfo describes a tool of the kernel's registry (GET /v1/tools).
type ToolInfo struct {
	Name        string          `json:"name"`
	Description string          `json:"description,omitempty"`
	InputSchema json.RawMessage `json:"input_schema"`
	Annotations json.RawMessage `json:"annotations,omitempty"`
	Source      string          `json:"source"`
}
