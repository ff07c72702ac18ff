package api

// ExecutionGraphs is GET /admin/graphs: what the kernel has learned about each kind of
// program (its class: the system prompt's hash, else the agent) from the programs it
// ran, as an Agent Execution Graph of LLM calls, tools and ends.
type ExecutionGraphs struct {
	Classes []GraphClass `json:"classes"`
	// PredictionMAEMs is the mean absolute error, in milliseconds, of the graphs'
	// predictions of when a program between steps would make its next LLM call, over
	// Predictions.
	PredictionMAEMs float64 `json:"prediction_mae_ms"`
	Predictions     int     `json:"predictions"`
}

// GraphClass is one class's graph.
type GraphClass struct {
	Class    string       `json:"class"`
	Programs int          `json:"programs"` // seen to end
	States   []GraphState `json:"states"`
}

// GraphState is one step of a class: "llm#<depth>@<tool it follows>" (start: the
// first) or "tool:<name>".
type GraphState struct {
	State string `json:"state"`
	// Next is the probability of each state that followed it; "end": the program ended.
	Next map[string]float64 `json:"next"`
	Seen int                `json:"seen"` // times it was followed
	// DurationMs is the smoothed run time of the tool or of the LLM call.
	DurationMs float64 `json:"duration_ms"`
	// ContextGrowth is the smoothed number of prompt tokens an LLM call in this state
	// adds to its program's previous call.
	ContextGrowth float64 `json:"context_growth_tokens"`
}
