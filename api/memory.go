package api

// Memory operation types of AIOS's memory syscalls.
const (
	MemoryAdd         = "add_memory"
	MemoryGet         = "get_memory"
	MemoryUpdate      = "update_memory"
	MemoryRemove      = "remove_memory"
	MemoryRetrieve    = "retrieve_memory"
	MemoryRetrieveRaw = "retrieve_memory_raw"
	MemoryAddAgentic  = "add_agentic_memory"
	// This kernel's conversation store, for managed context (params.session, .messages).
	MemoryGetConversation  = "get_conversation"
	MemorySaveConversation = "save_conversation"
	// Shared blocks (params.block): created by their owner, attached by other agents.
	MemoryCreateBlock = "create_block"
	MemoryAttachBlock = "attach_block"
	MemoryDetachBlock = "detach_block"
)

// MemoryQuery is query_data of a memory query.
type MemoryQuery struct {
	QueryClass    string       `json:"query_class,omitempty"`
	OperationType string       `json:"operation_type"`
	Params        MemoryParams `json:"params"`
}

// MemoryParams are a memory query's params as AIOS's SDK sends them, plus this kernel's
// filters. Metadata is AIOS's free-form dict: tags, keywords, category, context and links
// are read from it; other keys are kept with the note as they are.
type MemoryParams struct {
	MemoryID string         `json:"memory_id,omitempty"`
	Content  *string        `json:"content"` // update_memory may send null: content unchanged
	Metadata map[string]any `json:"metadata,omitempty"`
	K        *FlexInt       `json:"k,omitempty"`
	N        *FlexInt       `json:"n,omitempty"`
	// Extensions: filters of retrieve, the shared block a note goes in, and pinning.
	Tags     Strings `json:"tags,omitempty"`
	Category string  `json:"category,omitempty"`
	Since    string  `json:"since,omitempty"` // ISO 8601
	Until    string  `json:"until,omitempty"`
	MinScore float64 `json:"min_score,omitempty"`
	Block    string  `json:"block,omitempty"`
	// Conversations: a session's stored messages.
	Session  string    `json:"session,omitempty"`
	Messages []Message `json:"messages,omitempty"`
	// Owner is the agent whose memory the call acts in, when it is not the caller's own
	// (see StorageParams.Owner).
	Owner string `json:"owner,omitempty"`
}

// Limit is retrieve's result count: k, else n, else 0 (the module's default).
func (p MemoryParams) Limit() int {
	switch {
	case p.K != nil:
		return int(*p.K)
	case p.N != nil:
		return int(*p.N)
	}
	return 0
}

// MemoryNote is a note in /v1/memory replies and in search_results' metadata.
type MemoryNote struct {
	ID         string         `json:"memory_id"`
	Agent      string         `json:"agent"`
	Block      string         `json:"block,omitempty"`
	Content    string         `json:"content"`
	Keywords   []string       `json:"keywords"`
	Tags       []string       `json:"tags"`
	Category   string         `json:"category,omitempty"`
	Context    string         `json:"context,omitempty"`
	Links      []string       `json:"links"`
	Metadata   map[string]any `json:"metadata,omitempty"`
	Created    string         `json:"created"`
	Updated    string         `json:"updated"`
	Retrievals int            `json:"retrieval_count"`
	Pinned     bool           `json:"pinned,omitempty"`
	Score      float64        `json:"score,omitempty"`
}

// MemoryUse says what the memory module did around an LLM call: the notes injected
// into the prompt, the note the exchange was stored as, and the managed context's size.
type MemoryUse struct {
	Injected      []string `json:"injected,omitempty"`
	Stored        string   `json:"stored,omitempty"`
	ContextTokens int      `json:"context_tokens,omitempty"`
	Summarized    int      `json:"summarized,omitempty"` // turns folded into a summary
	Dropped       int      `json:"dropped,omitempty"`    // turns dropped
}

// MemoryStats is GET /admin/memory: the RAM manager's hot set against its budget, the
// notes it evicted and faulted back in, and the conversation trie's compression.
type MemoryStats struct {
	HotNotes         int     `json:"hot_notes"`
	HotBytes         int64   `json:"hot_bytes"`
	BudgetBytes      int64   `json:"budget_bytes"`
	Evictions        int64   `json:"evictions"`
	Faults           int64   `json:"faults"`
	Notes            int64   `json:"notes"`
	IndexBytes       int64   `json:"index_bytes"`
	TrieLogicalBytes int64   `json:"trie_logical_bytes"`
	TrieStoredBytes  int64   `json:"trie_stored_bytes"`
	CompressionRatio float64 `json:"compression_ratio"`
}
