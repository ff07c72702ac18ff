package sdk

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/aios-go/aios/api"
)

// fakeKernel is an httptest server that answers as the kernel (and AIOS's Python kernel
// before it) does on the wire: the bodies below are written out byte for byte rather
// than produced by encoding api's types, so a mismatch between those types and the real
// shapes shows up as a failing test instead of cancelling out.
type fakeKernel struct {
	srv *httptest.Server

	mu      sync.Mutex
	queries []recordedQuery
	chats   []recordedChat

	// release, when set, is what slow handlers wait on besides the request's context.
	release chan struct{}
	// cancelled receives once for each slow handler that saw its client go away.
	cancelled chan struct{}
}

type recordedQuery struct {
	header http.Header
	req    api.QueryRequest
	data   api.LLMQuery
	raw    map[string]any // query_data as generic JSON, to check what was left out
}

type recordedChat struct {
	header http.Header
	req    api.ChatCompletionRequest
	raw    map[string]any
}

func newFakeKernel(t *testing.T) *fakeKernel {
	k := &fakeKernel{release: make(chan struct{}), cancelled: make(chan struct{}, 16)}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /status", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 200, `{"status": "ok", "version": "0.1.0-test"}`)
	})
	mux.HandleFunc("GET /slow", k.slow)
	mux.HandleFunc("GET /core/status", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 200, `{"status":"ok","scheduler":"fifo","modules":{"llm":"enabled","memory":"disabled"},`+
			`"llm_cores":[{"id":"sim-0","name":"sim-llama3-8b","backend":"sim","healthy":true,"inflight":1,`+
			`"tokens_inflight":120,"max_inflight":64,"max_tokens_inflight":65536,"completed":10,"failed":0}],`+
			`"queued":{"llm":2},"running":{"llm":1}}`)
	})
	mux.HandleFunc("GET /core/llms/list", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 200, `{"llms": [{"name": "sim-llama3-8b", "backend": "sim", "cores": 2}]}`)
	})
	mux.HandleFunc("POST /query", k.query)
	mux.HandleFunc("GET /v1/models", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 200, `{"object":"list","data":[{"id":"sim-llama3-8b","object":"model","created":1731489000,"owned_by":"aios"}]}`)
	})
	mux.HandleFunc("POST /v1/chat/completions", k.chat)
	mux.HandleFunc("GET /proxy-error", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(http.StatusBadGateway)
		io.WriteString(w, "<html><body>502 Bad Gateway</body></html>\n")
	})
	k.srv = httptest.NewServer(mux)
	t.Cleanup(func() {
		// Unblock any slow handler first: Close waits for handlers to return.
		select {
		case <-k.release:
		default:
			close(k.release)
		}
		k.srv.Close()
	})
	return k
}

func writeJSON(w http.ResponseWriter, status int, body string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	io.WriteString(w, body)
}

// slow answers nothing until released or until the client gives up.
func (k *fakeKernel) slow(w http.ResponseWriter, r *http.Request) {
	select {
	case <-r.Context().Done():
		k.cancelled <- struct{}{}
	case <-k.release:
		writeJSON(w, 200, `{"status": "ok"}`)
	}
}

func (k *fakeKernel) lastQuery(t *testing.T) recordedQuery {
	t.Helper()
	k.mu.Lock()
	defer k.mu.Unlock()
	if len(k.queries) == 0 {
		t.Fatal("the kernel received no /query")
	}
	return k.queries[len(k.queries)-1]
}

func (k *fakeKernel) lastChat(t *testing.T) recordedChat {
	t.Helper()
	k.mu.Lock()
	defer k.mu.Unlock()
	if len(k.chats) == 0 {
		t.Fatal("the kernel received no chat completion")
	}
	return k.chats[len(k.chats)-1]
}

// query answers /query. The last user message selects the behaviour, so one server can
// play every scenario.
func (k *fakeKernel) query(w http.ResponseWriter, r *http.Request) {
	var q api.QueryRequest
	if err := json.NewDecoder(r.Body).Decode(&q); err != nil {
		writeJSON(w, 400, fmt.Sprintf(`{"detail": %q, "kind": "caller_bad_request"}`, "invalid JSON body: "+err.Error()))
		return
	}
	rec := recordedQuery{header: r.Header.Clone(), req: q}
	if q.QueryType == api.QueryLLM {
		if err := json.Unmarshal(q.QueryData, &rec.data); err != nil {
			writeJSON(w, 400, fmt.Sprintf(`{"detail": %q, "kind": "caller_bad_request"}`, "query_data: "+err.Error()))
			return
		}
	}
	_ = json.Unmarshal(q.QueryData, &rec.raw)
	k.mu.Lock()
	k.queries = append(k.queries, rec)
	k.mu.Unlock()

	const timings = `"start_times": [1731489000.5], "end_times": [1731489001.25], "waiting_times": [0.125], "turnaround_times": [0.875]`
	switch q.QueryType {
	case api.QueryMemory:
		writeJSON(w, 200, `{"response": {"response_class": "memory", "memory_id": "m-1", "content": null, `+
			`"metadata": null, "search_results": null, "success": true, "error": null}, `+timings+`}`)
		return
	case api.QueryLLM:
	default:
		writeJSON(w, 400, `{"detail": "unknown query_type \"`+q.QueryType+`\": use llm, tool, storage or memory", "kind": "caller_bad_request"}`)
		return
	}
	last := ""
	if n := len(rec.data.Messages); n > 0 {
		last = string(rec.data.Messages[n-1].Content)
	}
	switch last {
	case "rate-limited":
		// AIOS's convention: backend failures travel inside an HTTP 200.
		writeJSON(w, 200, `{"response": {"response_class": "llm", "response_message": null, "tool_calls": null, `+
			`"finished": false, "error": "upstream sim-llama3-8b: 429 Too Many Requests", "status_code": 429}, `+timings+`}`)
		return
	case "quota":
		w.Header().Set("Retry-After", "3")
		writeJSON(w, 429, `{"detail": "agent a1 is over its token quota for this minute", "kind": "policy_quota_exceeded"}`)
		return
	case "null-response":
		writeJSON(w, 200, `{"response": null, `+timings+`}`)
		return
	}
	switch rec.data.ActionType {
	case api.ActionChat:
		writeJSON(w, 200, fmt.Sprintf(`{"response": {"response_class": "llm", "response_message": %q, "tool_calls": null, `+
			`"finished": true, "error": null, "status_code": 200, "usage": {"prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8}}, `+timings+`}`, "echo: "+last))
	case api.ActionChatJSON:
		writeJSON(w, 200, `{"response": {"response_class": "llm", "response_message": "{\"answer\": 42}", "tool_calls": null, `+
			`"finished": true, "error": null, "status_code": 200}, `+timings+`}`)
	case api.ActionChatToolCall:
		writeJSON(w, 200, `{"response": {"response_class": "llm", "response_message": null, "tool_calls": `+
			`[{"name": "demo_author/arxiv", "parameters": {"query": "LLM OS"}, "id": "call_1"}], `+
			`"finished": true, "error": null, "status_code": 200}, `+timings+`}`)
	case api.ActionCallTool:
		writeJSON(w, 200, `{"response": {"response_class": "llm", "response_message": "[{\"name\": \"demo_author/arxiv\", \"result\": \"3 papers\"}]", `+
			`"tool_calls": [{"name": "demo_author/arxiv", "parameters": {"query": "LLM OS"}}], `+
			`"finished": true, "error": null, "status_code": 200}, `+timings+`}`)
	default:
		writeJSON(w, 200, `{"response": {"response_class": "llm", "response_message": null, "tool_calls": null, `+
			`"finished": false, "error": "operate_file needs the storage module, which is not enabled", "status_code": 501}, `+timings+`}`)
	}
}

// sseChunks are the events of a genuine OpenAI stream for "Hello, world": a role chunk,
// content deltas, a finish chunk, the usage chunk of stream_options.include_usage, and
// [DONE]. Written as wire bytes, with the corners real servers produce: a keep-alive
// comment, CRLF endings, and a JSON object split over two data lines.
var sseChunks = []string{
	`data: {"id":"chatcmpl-1","object":"chat.completion.chunk","created":1731489000,"model":"sim-llama3-8b","choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]}` + "\n\n",
	": keep-alive\n\n",
	`data: {"id":"chatcmpl-1","object":"chat.completion.chunk","created":1731489000,"model":"sim-llama3-8b","choices":[{"index":0,"delta":{"content":"Hello"},"finish_reason":null}]}` + "\r\n\r\n",
	"data: {\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":1731489000,\n" +
		`data: "model":"sim-llama3-8b","choices":[{"index":0,"delta":{"content":", world"},"finish_reason":null}]}` + "\n\n",
	`data: {"id":"chatcmpl-1","object":"chat.completion.chunk","created":1731489000,"model":"sim-llama3-8b","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}` + "\n\n",
	`data: {"id":"chatcmpl-1","object":"chat.completion.chunk","created":1731489000,"model":"sim-llama3-8b","choices":[],"usage":{"prompt_tokens":9,"completion_tokens":3,"total_tokens":12}}` + "\n\n",
	"data: [DONE]\n\n",
}

// chat answers /v1/chat/completions. The model name selects the scenario.
func (k *fakeKernel) chat(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	var req api.ChatCompletionRequest
	if err := json.Unmarshal(body, &req); err != nil {
		writeJSON(w, 400, fmt.Sprintf(`{"error": {"message": %q, "type": "invalid_request_error", "code": "caller_bad_request"}, "detail": %[1]q}`, "invalid request body: "+err.Error()))
		return
	}
	rec := recordedChat{header: r.Header.Clone(), req: req}
	_ = json.Unmarshal(body, &rec.raw)
	k.mu.Lock()
	k.chats = append(k.chats, rec)
	k.mu.Unlock()

	switch req.Model {
	case "busy":
		w.Header().Set("Retry-After", "2")
		writeJSON(w, 429, `{"error": {"message": "agent a1 is over its quota", "type": "rate_limit_error", "code": "policy_quota_exceeded"}, "detail": "agent a1 is over its quota"}`)
		return
	case "stall":
		// Accepted but never answered, not even with headers.
		<-r.Context().Done()
		k.cancelled <- struct{}{}
		return
	case "openai-only-error":
		// An upstream that knows nothing of kinds: the SDK must still infer one.
		writeJSON(w, 503, `{"error": {"message": "The server is overloaded", "type": "server_error"}}`)
		return
	}
	if !req.Stream {
		writeJSON(w, 200, `{"id":"chatcmpl-2","object":"chat.completion","created":1731489000,"model":"sim-llama3-8b",`+
			`"choices":[{"index":0,"message":{"role":"assistant","content":"Hello, world"},"finish_reason":"stop"}],`+
			`"usage":{"prompt_tokens":9,"completion_tokens":3,"total_tokens":12}}`)
		return
	}
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(200)
	f := w.(http.Flusher)
	send := func(s string) {
		io.WriteString(w, s)
		f.Flush()
	}
	rest := sseChunks
	switch req.Model {
	case "truncated":
		// The connection drops part-way: no finish chunk, no [DONE].
		send(sseChunks[0])
		send(sseChunks[2])
		return
	case "mid-error":
		send(sseChunks[0])
		send(`data: {"error": {"message": "backend sim-0 went away mid-generation", "type": "server_error", "code": "backend_unavailable"}}` + "\n\n")
		send("data: [DONE]\n\n")
		return
	case "endless":
		// Streams until the client hangs up, as a long generation would; the handler
		// reports that it saw the disconnect.
		send(sseChunks[0])
		for {
			select {
			case <-r.Context().Done():
				k.cancelled <- struct{}{}
				return
			case <-k.release:
				return
			default:
			}
			send(sseChunks[2])
		}
	case "pause":
		// Headers and a first chunk now, the rest once the test releases it: longer
		// than the client's timeout, which must not cut a stream already under way.
		send(sseChunks[0])
		select {
		case <-r.Context().Done():
			return
		case <-k.release:
		}
		rest = sseChunks[1:]
	}
	for _, c := range rest {
		send(c)
	}
}

func ptr[T any](v T) *T { return &v }

func userMsg(s string) []api.Message {
	return []api.Message{{Role: "system", Content: "You are terse."}, {Role: "user", Content: api.Content(s)}}
}
