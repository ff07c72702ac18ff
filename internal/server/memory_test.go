package server

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/aios-go/aios/api"
)

// memoryReply is a /query reply with the MemoryResponse inside, decoded loosely so the
// test sees the JSON as AIOS's SDK does.
type memoryReply struct {
	Response struct {
		ResponseClass string           `json:"response_class"`
		MemoryID      *string          `json:"memory_id"`
		Content       *string          `json:"content"`
		Metadata      map[string]any   `json:"metadata"`
		SearchResults []map[string]any `json:"search_results"`
		Success       bool             `json:"success"`
		Error         *string          `json:"error"`
		StatusCode    int              `json:"status_code"`
	} `json:"response"`
	WaitingTimes []float64 `json:"waiting_times"`
}

func (h *harness) memoryQuery(op, params string) memoryReply {
	h.t.Helper()
	return h.memoryQueryAs("demo_agent", op, params)
}

func (h *harness) memoryQueryAs(agent, op, params string) memoryReply {
	h.t.Helper()
	body := `{"agent_name": "` + agent + `", "query_type": "memory", "query_data": {"query_class": "memory", "operation_type": "` +
		op + `", "params": ` + params + `}}`
	code, b, _ := h.post("/query", body)
	if code != http.StatusOK {
		h.t.Fatalf("%s: HTTP %d %s", body, code, b)
	}
	var r memoryReply
	if err := json.Unmarshal(b, &r); err != nil {
		h.t.Fatalf("%s: %v", b, err)
	}
	if r.Response.ResponseClass != "memory" || len(r.WaitingTimes) != 1 {
		h.t.Fatalf("%s: %s", body, b)
	}
	return r
}

// The exact JSON AIOS's Python SDK sends for each memory call, and what it reads back.
func TestCerebrumMemoryCalls(t *testing.T) {
	h := startSystem(t, nil)
	add := h.memoryQuery("add_memory", `{"content": "The user's daughter Mia plays the cello on Tuesdays", "metadata": {"tags": ["family", "music"], "keywords": ["Mia", "cello"], "category": "personal", "source": "chat"}}`)
	if !add.Response.Success || add.Response.StatusCode != 200 || add.Response.MemoryID == nil || *add.Response.MemoryID == "" {
		t.Fatalf("add: %+v", add.Response)
	}
	id := *add.Response.MemoryID
	h.memoryQuery("add_memory", `{"content": "The quarterly tax report is due on the 15th", "metadata": {"tags": "work, deadlines"}}`)
	h.memoryQuery("add_memory", `{"content": "Lunch was a tomato soup", "metadata": {}}`)

	get := h.memoryQuery("get_memory", `{"memory_id": "`+id+`"}`)
	md := get.Response.Metadata
	if !get.Response.Success || *get.Response.Content != "The user's daughter Mia plays the cello on Tuesdays" ||
		md["category"] != "personal" || md["source"] != "chat" || fmt.Sprint(md["tags"]) != "[family music]" {
		t.Fatalf("get: %+v", get.Response)
	}

	// update_memory with content null keeps the content and changes the metadata given.
	upd := h.memoryQuery("update_memory", `{"memory_id": "`+id+`", "content": null, "metadata": {"tags": ["family", "music", "schedule"]}}`)
	if !upd.Response.Success || *upd.Response.Content != "The user's daughter Mia plays the cello on Tuesdays" ||
		fmt.Sprint(upd.Response.Metadata["tags"]) != "[family music schedule]" {
		t.Fatalf("update: %+v", upd.Response)
	}

	ret := h.memoryQuery("retrieve_memory", `{"content": "when does Mia have cello practice?", "k": 2}`)
	if !ret.Response.Success || len(ret.Response.SearchResults) == 0 {
		t.Fatalf("retrieve: %+v", ret.Response)
	}
	top := ret.Response.SearchResults[0]
	if top["memory_id"] != id || top["score"] == nil || !strings.Contains(fmt.Sprint(top["content"]), "cello") {
		t.Fatalf("retrieve top: %+v", top)
	}
	raw := h.memoryQuery("retrieve_memory_raw", `{"content": "tax deadline", "k": 1, "tags": ["work"]}`)
	if len(raw.Response.SearchResults) != 1 || !strings.Contains(fmt.Sprint(raw.Response.SearchResults[0]["content"]), "tax") {
		t.Fatalf("retrieve raw: %+v", raw.Response)
	}

	// add_agentic_memory: the LLM steps run as LLM syscalls on the simulated core.
	ag := h.memoryQuery("add_agentic_memory", `{"content": "Mia's cello teacher moved the lesson to Wednesday", "metadata": {"tags": ["music"]}}`)
	if !ag.Response.Success || ag.Response.MemoryID == nil {
		t.Fatalf("agentic: %+v", ag.Response)
	}
	kw, _ := ag.Response.Metadata["keywords"].([]any)
	if len(kw) == 0 || ag.Response.Metadata["context"] == "" {
		t.Fatalf("agentic note has no extracted attributes: %+v", ag.Response.Metadata)
	}
	var st2 api.MemoryStats
	h.get("/admin/memory", &st2)
	if st2.Notes < 4 || st2.HotNotes == 0 || st2.BudgetBytes <= 0 || st2.HotBytes > st2.BudgetBytes {
		t.Fatalf("admin memory stats %+v", st2)
	}
	rm := h.memoryQuery("remove_memory", `{"memory_id": "`+id+`"}`)
	if !rm.Response.Success {
		t.Fatalf("remove: %+v", rm.Response)
	}
	gone := h.memoryQuery("get_memory", `{"memory_id": "`+id+`"}`)
	if gone.Response.Success || gone.Response.StatusCode != 404 || gone.Response.Error == nil {
		t.Fatalf("get after remove: %+v", gone.Response)
	}
	bad := h.memoryQuery("add_memory", `{"content": "", "metadata": {}}`)
	if bad.Response.Success || bad.Response.StatusCode != 400 {
		t.Fatalf("empty add: %+v", bad.Response)
	}
	if code, b, _ := h.post("/query", `{"agent_name": "a", "query_type": "memory", "query_data": {"operation_type": "get_memory", "params": {"memory_id": 7}}}`); code != 400 {
		t.Fatalf("memory_id as a number: %d %s", code, b)
	}
}

// Another agent sees none of these notes; the REST surface serves the same syscalls.
func TestMemoryRESTAndIsolation(t *testing.T) {
	h := startSystem(t, nil)
	do := h.rest
	code, b := do("POST", "/v1/memory/notes", `{"content": "alice keeps the spare key under the blue pot", "metadata": {"tags": ["home"]}}`, "alice")
	var note api.MemoryResponse
	if err := json.Unmarshal(b, &note); err != nil || code != 201 || note.MemoryID == nil {
		t.Fatalf("add: %d %s", code, b)
	}
	id := *note.MemoryID
	if code, _ := do("GET", "/v1/memory/notes/"+id, "", "bob"); code != 404 {
		t.Fatalf("bob reads alice's note: %d", code)
	}
	code, b = do("POST", "/v1/memory/search", `{"content": "spare key", "k": 3}`, "bob")
	if code != 200 || strings.Contains(string(b), "blue pot") {
		t.Fatalf("bob's search: %d %s", code, b)
	}
	code, b = do("POST", "/v1/memory/search", `{"content": "spare key", "k": 3}`, "alice")
	if code != 200 || !strings.Contains(string(b), id) {
		t.Fatalf("alice's search: %d %s", code, b)
	}
	if code, b := do("PATCH", "/v1/memory/notes/"+id, `{"content": "the spare key is now with the neighbour"}`, "alice"); code != 200 || !strings.Contains(string(b), "neighbour") {
		t.Fatalf("patch: %d %s", code, b)
	}
	if code, _ := do("DELETE", "/v1/memory/notes/"+id, "", "bob"); code != 404 {
		t.Fatalf("bob deletes alice's note: %d", code)
	}
	if code, _ := do("DELETE", "/v1/memory/notes/"+id, "", "alice"); code != 204 {
		t.Fatalf("delete: %d", code)
	}
	if code, _ := do("POST", "/v1/memory/notes", `{"content": "x"}`, ""); code != 400 {
		t.Fatalf("no agent: %d", code)
	}

	// A shared block: alice creates it, bob attaches, both read its notes; carol cannot.
	if code, b := do("POST", "/v1/memory/blocks/team", "", "alice"); code != 201 {
		t.Fatalf("create block: %d %s", code, b)
	}
	code, b = do("POST", "/v1/memory/notes", `{"content": "the team standup moved to 10am", "block": "team"}`, "alice")
	if err := json.Unmarshal(b, &note); err != nil || code != 201 {
		t.Fatalf("add to block: %d %s", code, b)
	}
	shared := *note.MemoryID
	if code, _ := do("GET", "/v1/memory/notes/"+shared, "", "bob"); code == 200 {
		t.Fatal("bob reads the block before attaching")
	}
	if code, b := do("POST", "/v1/memory/blocks/team/attach", "", "bob"); code != 204 {
		t.Fatalf("attach: %d %s", code, b)
	}
	if code, b := do("GET", "/v1/memory/notes/"+shared, "", "bob"); code != 200 || !strings.Contains(string(b), "standup") {
		t.Fatalf("bob reads the block: %d %s", code, b)
	}
	if code, b := do("POST", "/v1/memory/search", `{"content": "standup time"}`, "bob"); code != 200 || !strings.Contains(string(b), shared) {
		t.Fatalf("bob searches the block: %d %s", code, b)
	}
	if code, _ := do("GET", "/v1/memory/notes/"+shared, "", "carol"); code == 200 {
		t.Fatal("carol reads a block she is not attached to")
	}
	if code, _ := do("POST", "/v1/memory/blocks/team/detach", "", "bob"); code != 204 {
		t.Fatalf("detach: %d", code)
	}
	if code, _ := do("GET", "/v1/memory/notes/"+shared, "", "bob"); code == 200 {
		t.Fatal("bob reads the block after detaching")
	}
}

// Memory injection: the agent's relevant notes go into the prompt as a system message,
// the exchange is stored as a note, and the response says which were used.
func TestMemoryInjectedIntoLLMCalls(t *testing.T) {
	h := startSystem(t, nil)
	add := h.memoryQuery("add_memory", `{"content": "The user's favourite colour is teal", "metadata": {}}`)
	id := *add.Response.MemoryID
	code, b, _ := h.post("/query", `{"agent_name": "demo_agent", "query_type": "llm", "query_data": {"messages": [{"role": "user", "content": "what is my favourite colour?"}], "max_new_tokens": 8, "memory": true}}`)
	var r struct {
		Response api.LLMResponse `json:"response"`
	}
	if err := json.Unmarshal(b, &r); err != nil || code != 200 || r.Response.StatusCode != 200 || r.Response.Memory == nil {
		t.Fatalf("%d %s", code, b)
	}
	m := r.Response.Memory
	if len(m.Injected) != 1 || m.Injected[0] != id || m.Stored == "" {
		t.Fatalf("memory use %+v", m)
	}
	// The stored exchange is a note of its own, found by the question it answered.
	got := h.memoryQuery("get_memory", `{"memory_id": "`+m.Stored+`"}`)
	if !strings.HasPrefix(*got.Response.Content, "User: what is my favourite colour?\nAssistant: ") {
		t.Fatalf("stored exchange %q", *got.Response.Content)
	}
	// Without the flag nothing is injected or stored.
	_, b, _ = h.post("/query", `{"agent_name": "demo_agent", "query_type": "llm", "query_data": {"messages": [{"role": "user", "content": "what is my favourite colour?"}], "max_new_tokens": 8}}`)
	if strings.Contains(string(b), `"memory"`) {
		t.Fatalf("memory used without asking: %s", b)
	}
	// On /v1 the header asks for it, and headers say what was used.
	req, _ := http.NewRequest("POST", h.url+"/v1/chat/completions", strings.NewReader(`{"model": "sim-test", "max_tokens": 4, "messages": [{"role": "user", "content": "favourite colour teal?"}]}`))
	req.Header.Set(api.HeaderAgent, "demo_agent")
	req.Header.Set(api.HeaderMemory, "on")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(resp.Header.Get("X-AIOS-Memory-Injected"), id) || resp.Header.Get("X-AIOS-Memory-Stored") == "" {
		t.Fatalf("/v1: %d %v", resp.StatusCode, resp.Header)
	}
}

// Managed context: the kernel keeps the session's conversation, so the agent sends only
// its new turn; past the budget's warning mark older turns are summarised by an LLM call.
func TestManagedContext(t *testing.T) {
	h := startSystem(t, nil, MemoryOptions{ContextTokens: 400, ContextWarning: 0.5, ContextHard: 0.9})
	turn := func(text string) api.LLMResponse {
		t.Helper()
		code, b, _ := h.post("/query", `{"agent_name": "ctx_agent", "query_type": "llm", "query_data": {"session": "s1", "managed_context": true, "max_new_tokens": 40, "messages": [{"role": "user", "content": "`+text+`"}]}}`)
		var r struct {
			Response api.LLMResponse `json:"response"`
		}
		if err := json.Unmarshal(b, &r); err != nil || code != 200 || r.Response.StatusCode != 200 || r.Response.Memory == nil {
			t.Fatalf("%d %s", code, b)
		}
		return r.Response
	}
	first := turn("my name is Ada and I like chess")
	second := turn("what do I like?")
	if second.Usage.PromptTokens <= first.Usage.PromptTokens {
		t.Fatalf("the second turn's prompt (%d tokens) does not hold the first (%d)", second.Usage.PromptTokens, first.Usage.PromptTokens)
	}
	var summarized bool
	for i := range 12 {
		r := turn(fmt.Sprintf("turn %d: tell me more about the history of the game", i))
		if r.Memory.ContextTokens > 360 {
			t.Fatalf("context grew past the hard mark: %+v", r.Memory)
		}
		summarized = summarized || r.Memory.Summarized > 0
	}
	if !summarized {
		t.Fatal("no turn was ever summarised")
	}
	// The kept conversation is readable as a memory syscall, by its agent alone.
	conv := h.memoryQueryAs("ctx_agent", "get_conversation", `{"session": "s1"}`)
	if n := len(conv.Response.SearchResults); n < 2 || conv.Response.SearchResults[n-1]["role"] != "assistant" {
		t.Fatalf("conversation %+v", conv.Response.SearchResults)
	}
	if other := h.memoryQuery("get_conversation", `{"session": "s1"}`); len(other.Response.SearchResults) != 0 {
		t.Fatalf("another session's conversation: %+v", other.Response)
	}
}
