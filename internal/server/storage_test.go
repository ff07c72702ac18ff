package server

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/aios-go/aios/api"
	"github.com/aios-go/aios/internal/boot"
	"github.com/aios-go/aios/internal/config"
)

// startSystem runs the kernel as `aios serve` builds it (boot.Build) on a fast simulated
// core, with its data in a temporary folder.
func startSystem(t testing.TB, edit func(*config.Config), mem ...MemoryOptions) *harness {
	t.Helper()
	cfg := config.Defaults()
	cfg.DataDir = t.TempDir()
	cfg.LLMs.Models = []config.Model{{Name: "sim-test", Backend: "sim", Cores: 1, Speed: 200}}
	if edit != nil {
		edit(&cfg)
	}
	sys, err := boot.Build(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	opts := Options{}
	if len(mem) > 0 {
		opts.Memory = mem[0]
	}
	if sys.Storage != nil {
		opts.Shared, opts.Responses = sys.Storage, sys.Responses
	}
	if sys.Memory != nil {
		opts.MemoryStats = sys.Memory
	}
	if sys.Tools != nil {
		opts.Tools, opts.ToolTurns, opts.ToolStatus = sys.Tools, cfg.Tools.MaxTurns, sys.ToolStatus
	}
	opts.Embeddings = sys.Embeddings
	opts.Access = sys.Access
	s := New(sys.Kernel, opts)
	ts := httptest.NewServer(s.Handler())
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = sys.Kernel.Shutdown(ctx)
		ts.Close()
		_ = sys.CloseAccess()
	})
	return &harness{t: t, url: ts.URL, srv: s}
}

// storageReply is a /query reply with the StorageResponse inside.
type storageReply struct {
	Response struct {
		ResponseClass   string  `json:"response_class"`
		ResponseMessage *string `json:"response_message"`
		Finished        bool    `json:"finished"`
		Error           *string `json:"error"`
		StatusCode      int     `json:"status_code"`
	} `json:"response"`
	StartTimes      []float64 `json:"start_times"`
	EndTimes        []float64 `json:"end_times"`
	WaitingTimes    []float64 `json:"waiting_times"`
	TurnaroundTimes []float64 `json:"turnaround_times"`
}

// storageQuery posts body as it is and decodes the reply; the HTTP status must be 200.
func (h *harness) storageQuery(body string) storageReply {
	h.t.Helper()
	code, b, _ := h.post("/query", body)
	if code != http.StatusOK {
		h.t.Fatalf("POST /query %s: HTTP %d %s", body, code, b)
	}
	var r storageReply
	if err := json.Unmarshal(b, &r); err != nil {
		h.t.Fatalf("%s: %v", b, err)
	}
	return r
}

// ok asserts a storage reply succeeded and returns its message.
func (h *harness) ok(body string) string {
	h.t.Helper()
	r := h.storageQuery(body)
	if r.Response.StatusCode != 200 || !r.Response.Finished || r.Response.Error != nil || r.Response.ResponseMessage == nil ||
		r.Response.ResponseClass != "storage" {
		h.t.Fatalf("%s:\n%+v", body, r.Response)
	}
	if len(r.StartTimes) != 1 || len(r.EndTimes) != 1 || len(r.WaitingTimes) != 1 || len(r.TurnaroundTimes) != 1 {
		h.t.Fatalf("timings %+v", r)
	}
	return *r.Response.ResponseMessage
}

// failed asserts a storage reply failed with status code and returns its error.
func (h *harness) failed(body string, code int) string {
	h.t.Helper()
	r := h.storageQuery(body)
	if r.Response.StatusCode != code || r.Response.Finished || r.Response.Error == nil {
		h.t.Fatalf("%s: want status_code %d, got %+v", body, code, r.Response)
	}
	return *r.Response.Error
}

// The exact JSON AIOS's Python SDK (Cerebrum) sends for each storage call, in the order
// an agent makes them, and what the SDK reads back: response.response_message.
func TestCerebrumStorageCalls(t *testing.T) {
	h := startSystem(t, nil)
	q := func(op, params string) string {
		return `{"agent_name": "demo_agent", "query_type": "storage", "query_data": {"query_class": "storage", "params": ` +
			params + `, "operation_type": "` + op + `"}}`
	}
	h.ok(q("mount", `{"root_dir": "workspace"}`))
	h.ok(q("create_dir", `{"dir_path": "notes"}`))
	h.ok(q("create_file", `{"file_path": "notes/plan.md"}`))
	h.ok(q("write", `{"file_path": "notes/plan.md", "content": "first draft: buy apples and pears"}`))
	h.ok(q("write", `{"file_path": "notes/plan.md", "content": "second draft: sell the orchard"}`))
	if got := h.ok(q("read", `{"file_path": "notes/plan.md"}`)); got != "second draft: sell the orchard" {
		t.Fatalf("read %q", got)
	}
	h.ok(q("rollback", `{"file_path": "notes/plan.md", "n": 1}`))
	if got := h.ok(q("read", `{"file_path": "notes/plan.md"}`)); got != "first draft: buy apples and pears" {
		t.Fatalf("after rollback %q", got)
	}
	link := h.ok(q("share", `{"file_path": "notes/plan.md"}`))
	if !strings.HasPrefix(link, h.url+"/shared/") {
		t.Fatalf("share link %q", link)
	}
	resp, err := http.Get(link)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != "first draft: buy apples and pears" {
		t.Fatalf("shared link: %d %q", resp.StatusCode, body)
	}
	h.ok(q("write", `{"file_path": "notes/recipes.txt", "content": "a tart of apples with cinnamon"}`))
	h.ok(q("write", `{"file_path": "notes/tax.txt", "content": "quarterly tax report for the accountant"}`))
	got := h.ok(q("retrieve", `{"query_text": "apple tart", "n": 2, "keywords": null}`))
	if !strings.HasPrefix(got, "1. /notes/recipes.txt") || strings.Contains(got, "tax.txt") {
		t.Fatalf("retrieve:\n%s", got)
	}
	// The spellings of AIOS's own kernel: root and k.
	h.ok(q("mount", `{"root": ""}`))
	got = h.ok(q("retrieve", `{"query_text": "accountant report", "k": 1}`))
	if !strings.HasPrefix(got, "1. /workspace/notes/tax.txt") || strings.Count(got, "score") != 1 {
		t.Fatalf("retrieve with k:\n%s", got)
	}
	// rollback by an ISO time: to the version current then.
	at := time.Now().UTC().Format(time.RFC3339Nano)
	time.Sleep(20 * time.Millisecond)
	h.ok(q("write", `{"file_path": "workspace/notes/tax.txt", "content": "amended"}`))
	h.ok(q("rollback", `{"file_path": "workspace/notes/tax.txt", "time": "`+at+`"}`))
	if got := h.ok(q("read", `{"file_path": "workspace/notes/tax.txt"}`)); got != "quarterly tax report for the accountant" {
		t.Fatalf("after rollback by time: %q", got)
	}
	h.failed(q("rollback", `{"file_path": "workspace/notes/tax.txt", "time": "2000-01-01T00:00:00Z"}`), 404)
	h.failed(q("rollback", `{"file_path": "workspace/notes/tax.txt", "n": 0}`), 400)
	h.ok(q("delete", `{"file_path": "workspace/notes"}`))
	h.failed(q("read", `{"file_path": "workspace/notes/plan.md"}`), 404)
}

// One agent sees nothing of another's files, and no path leaves the agent's namespace.
func TestStorageIsolationAndHostilePaths(t *testing.T) {
	h := startSystem(t, nil)
	q := func(agent, op, params string) string {
		return fmt.Sprintf(`{"agent_name": %q, "query_type": "storage", "query_data": {"query_class": "storage", "operation_type": %q, "params": %s}}`, agent, op, params)
	}
	h.ok(q("alice", "write", `{"file_path": "secret.txt", "content": "alice's launch codes"}`))
	h.failed(q("bob", "read", `{"file_path": "secret.txt"}`), 404)
	h.failed(q("bob", "read", `{"file_path": "../alice/secret.txt"}`), 400)
	if got := h.ok(q("bob", "retrieve", `{"query_text": "launch codes"}`)); strings.Contains(got, "secret") {
		t.Fatalf("bob retrieved alice's file: %s", got)
	}
	if got := h.ok(q("bob", "list", `{}`)); got != "" {
		t.Fatalf("bob lists %q", got)
	}
	for _, p := range []string{`"../../etc/passwd"`, `"a/../../b"`, `"a\u0000b"`, `"/.."`, `"a/\u0007b"`} {
		h.failed(q("bob", "write", `{"file_path": `+p+`, "content": "x"}`), 400)
	}
	h.failed(q("bob", "mount", `{"root_dir": "/etc"}`), 403)
	h.failed(q("bob", "write", `{"file_path": "x.txt"}`), 400)
	h.failed(q("bob", "frobnicate", `{}`), 400)
	// Malformed query_data is the caller's fault before any syscall: HTTP 400.
	if code, b, _ := h.post("/query", `{"agent_name": "bob", "query_type": "storage", "query_data": {"operation_type": "rollback", "params": {"file_path": "x", "n": "two"}}}`); code != 400 || !strings.Contains(string(b), "detail") {
		t.Fatalf("bad n: %d %s", code, b)
	}
}

// The REST surface under /v1/storage: every route is one storage syscall.
func TestStorageREST(t *testing.T) {
	h := startSystem(t, nil)
	do := h.rest
	if code, b := do("PUT", "/v1/storage/files/docs/a.txt", "one", ""); code != 400 || !strings.Contains(string(b), "X-AIOS-Agent") {
		t.Fatalf("no agent: %d %s", code, b)
	}
	for _, c := range []string{"one", "two", "three"} {
		if code, b := do("PUT", "/v1/storage/files/docs/a.txt", c, "carol"); code != 200 {
			t.Fatalf("put: %d %s", code, b)
		}
	}
	if code, b := do("GET", "/v1/storage/files/docs/a.txt", "", "carol"); code != 200 || string(b) != "three" {
		t.Fatalf("get: %d %q", code, b)
	}
	var hist api.StorageHistory
	code, b := do("GET", "/v1/storage/versions/docs/a.txt", "", "carol")
	if err := json.Unmarshal(b, &hist); err != nil || code != 200 || len(hist.Versions) != 3 || hist.Versions[0].N != 3 {
		t.Fatalf("versions: %d %s", code, b)
	}
	var v api.StorageVersion
	code, b = do("POST", "/v1/storage/rollback/docs/a.txt", `{"n": 2}`, "carol")
	if err := json.Unmarshal(b, &v); err != nil || code != 200 || v.N != 4 || v.Change != "rollback" {
		t.Fatalf("rollback: %d %s", code, b)
	}
	if _, b := do("GET", "/v1/storage/files/docs/a.txt", "", "carol"); string(b) != "one" {
		t.Fatalf("after rollback %q", b)
	}
	var list api.StorageListing
	code, b = do("GET", "/v1/storage/list/docs", "", "carol")
	if err := json.Unmarshal(b, &list); err != nil || code != 200 || len(list.Files) != 1 || list.Files[0].Path != "/docs/a.txt" {
		t.Fatalf("list: %d %s", code, b)
	}
	var link api.StorageLink
	code, b = do("POST", "/v1/storage/shares/docs/a.txt", `{"expires_in": 60}`, "carol")
	if err := json.Unmarshal(b, &link); err != nil || code != 201 || !strings.HasPrefix(link.URL, h.url) {
		t.Fatalf("share: %d %s", code, b)
	}
	if code, b := do("GET", strings.TrimPrefix(link.URL, h.url), "", ""); code != 200 || string(b) != "one" {
		t.Fatalf("shared: %d %q", code, b)
	}
	if code, _ := do("DELETE", "/v1/storage/shares/"+link.Token, "", "dave"); code == 204 {
		t.Fatal("another agent revoked carol's link")
	}
	if code, b := do("DELETE", "/v1/storage/shares/"+link.Token, "", "carol"); code != 204 {
		t.Fatalf("unshare: %d %s", code, b)
	}
	if code, _ := do("GET", "/shared/"+link.Token, "", ""); code != 404 {
		t.Fatalf("revoked link answers %d", code)
	}
	var hits api.StorageResults
	code, b = do("POST", "/v1/storage/retrieve", `{"query_text": "one", "k": 3}`, "carol")
	if err := json.Unmarshal(b, &hits); err != nil || code != 200 || len(hits.Hits) != 1 {
		t.Fatalf("retrieve: %d %s", code, b)
	}
	if code, _ := do("GET", "/v1/storage/files/docs/a.txt", "", "dave"); code != 404 {
		t.Fatalf("dave reads carol's file: %d", code)
	}
	if code, _ := do("DELETE", "/v1/storage/files/docs", "", "carol"); code != 204 {
		t.Fatalf("delete: %d", code)
	}
	if code, _ := do("GET", "/v1/storage/files/docs/a.txt", "", "carol"); code != 404 {
		t.Fatalf("deleted file answers %d", code)
	}
}

// A disabled module answers in its AIOS shape with status_code 501, memory included.
func TestDisabledModulesAnswer501(t *testing.T) {
	h := startSystem(t, func(c *config.Config) { c.Storage.Disabled, c.Memory.Disabled, c.Tools.Disabled = true, true, true })
	r := h.storageQuery(`{"agent_name": "a", "query_type": "storage", "query_data": {"operation_type": "read", "params": {"file_path": "x"}}}`)
	if r.Response.StatusCode != 501 || r.Response.Error == nil || !strings.Contains(*r.Response.Error, "storage module is not enabled") ||
		r.StartTimes == nil {
		t.Fatalf("%+v", r)
	}
	code, b, _ := h.post("/query", `{"agent_name": "a", "query_type": "memory", "query_data": {"operation_type": "add_memory", "params": {"content": "x"}}}`)
	var m struct {
		Response map[string]any `json:"response"`
	}
	if err := json.Unmarshal(b, &m); err != nil || code != 200 || m.Response["status_code"] != float64(501) || m.Response["success"] != false ||
		m.Response["response_class"] != "memory" {
		t.Fatalf("memory: %d %s", code, b)
	}
	if code, b, _ := h.post("/query", `{"agent_name": "a", "query_type": "tool", "query_data": {"tool_calls": [{"name": "calculator"}]}}`); code != 200 || !strings.Contains(string(b), `"status_code":501`) {
		t.Fatalf("tool: %d %s", code, b)
	}
	resp, err := http.Get(h.url + "/shared/abc")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 501 {
		t.Fatalf("/shared with storage off: %d", resp.StatusCode)
	}
}

// rest sends one request as agent (none when empty) and returns the status and body.
func (h *harness) rest(method, path, body, agent string) (int, []byte) {
	h.t.Helper()
	req, _ := http.NewRequest(method, h.url+path, strings.NewReader(body))
	if agent != "" {
		req.Header.Set(api.HeaderAgent, agent)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}
