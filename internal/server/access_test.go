package server

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aios-go/aios/internal/access"
	"github.com/aios-go/aios/internal/config"
)

// startAuthed runs a kernel with access.auth on and returns it with an admin key.
func startAuthed(t testing.TB, mods ...func(*config.Config)) (*harness, *access.Manager, string) {
	t.Helper()
	h := startSystem(t, func(c *config.Config) {
		c.Access.Auth = true
		c.Access.ApprovalTimeout = time.Minute
		for _, mod := range mods {
			mod(c)
		}
	})
	m := h.srv.opts.Access
	if m == nil {
		t.Fatal("access.auth is on, but the server has no access manager")
	}
	admin, _, err := m.Keys.Issue(context.Background(), access.KindAdmin, "ops")
	if err != nil {
		t.Fatal(err)
	}
	return h, m, admin
}

// call sends a request with key as its bearer (none when empty) and decodes the reply.
func (h *harness) call(method, path, key, body string, headers ...string) (int, http.Header, map[string]any) {
	h.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, _ := http.NewRequest(method, h.url+path, rd)
	req.Header.Set("Content-Type", "application/json")
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var v map[string]any
	_ = json.Unmarshal(b, &v)
	return resp.StatusCode, resp.Header, v
}

// addAgent registers an agent through the admin API and returns its key and key id.
func (h *harness) addAgent(admin, name string) (string, string) {
	h.t.Helper()
	code, _, v := h.call("POST", "/admin/agents", admin, `{"name":"`+name+`"}`)
	if code != http.StatusCreated {
		h.t.Fatalf("POST /admin/agents: %d %v", code, v)
	}
	key, _ := v["key"].(string)
	info, _ := v["info"].(map[string]any)
	id, _ := info["id"].(string)
	if !strings.HasPrefix(key, "aios_agent_") || id == "" {
		h.t.Fatalf("POST /admin/agents answered %v", v)
	}
	return key, id
}

func kindOfBody(v map[string]any) string {
	if k, ok := v["kind"].(string); ok {
		return k
	}
	if e, ok := v["error"].(map[string]any); ok {
		k, _ := e["code"].(string)
		return k
	}
	return ""
}

const chatBody = `{"model":"sim-test","messages":[{"role":"user","content":"hi"}],"max_tokens":4}`
const llmQuery = `{"agent_name":"%s","query_type":"llm","query_data":{"messages":[{"role":"user","content":"hi"}],"max_tokens":4}}`

func TestAccessAuthentication(t *testing.T) {
	h, _, admin := startAuthed(t)
	alice, aliceKeyID := h.addAgent(admin, "alice")

	// Without a key: 401, in each surface's shape; /status stays open.
	code, _, v := h.call("POST", "/query", "", strings.Replace(llmQuery, "%s", "alice", 1))
	if code != 401 || v["detail"] == nil || v["kind"] != "caller_unauthorized" {
		t.Fatalf("/query without a key: %d %v", code, v)
	}
	code, _, v = h.call("POST", "/v1/chat/completions", "", chatBody)
	if e, _ := v["error"].(map[string]any); code != 401 || e == nil || e["code"] != "caller_unauthorized" {
		t.Fatalf("/v1 without a key: %d %v", code, v)
	}
	code, _, v = h.call("POST", "/v1/messages", "", `{"model":"sim-test","max_tokens":4,"messages":[{"role":"user","content":"hi"}]}`)
	if code != 401 || v["type"] != "error" {
		t.Fatalf("/v1/messages without a key: %d %v", code, v)
	}
	if code, _, _ := h.call("GET", "/status", "", ""); code != 200 {
		t.Fatalf("GET /status without a key: %d", code)
	}

	// A valid agent key works, and names the agent.
	code, _, v = h.call("POST", "/query", alice, strings.Replace(llmQuery, "%s", "alice", 1))
	if code != 200 {
		t.Fatalf("/query with alice's key: %d %v", code, v)
	}
	code, _, v = h.call("POST", "/query", alice, strings.Replace(llmQuery, "%s", "", 1))
	if code != 200 {
		t.Fatalf("/query with alice's key and no agent_name: %d %v", code, v)
	}
	code, _, v = h.call("POST", "/v1/chat/completions", alice, chatBody)
	if code != 200 {
		t.Fatalf("/v1 with alice's key: %d %v", code, v)
	}
	// Naming another agent is refused.
	code, _, v = h.call("POST", "/query", alice, strings.Replace(llmQuery, "%s", "bob", 1))
	if code != 403 || kindOfBody(v) != "policy_denied" {
		t.Fatalf("/query naming bob with alice's key: %d %v", code, v)
	}
	code, _, v = h.call("POST", "/v1/chat/completions", alice, chatBody, "X-AIOS-Agent", "bob")
	if code != 403 || kindOfBody(v) != "policy_denied" {
		t.Fatalf("/v1 naming bob with alice's key: %d %v", code, v)
	}
	code, _, v = h.call("POST", "/v1/chat/completions", alice, strings.Replace(chatBody, `"max_tokens"`, `"user":"bob","max_tokens"`, 1))
	if code != 403 || kindOfBody(v) != "policy_denied" {
		t.Fatalf("/v1 with user bob and alice's key: %d %v", code, v)
	}
	// What alice's key did is hers: the usage is counted under alice.
	code, _, v = h.call("GET", "/admin/usage", admin, "")
	if code != 200 || !strings.Contains(mustJSON(t, v), `"alice"`) {
		t.Fatalf("GET /admin/usage: %d %v", code, v)
	}

	// Admin routes need an admin key.
	for _, p := range []string{"/admin/usage", "/admin/audit", "/admin/audit/verify", "/v1/approvals"} {
		if code, _, v := h.call("GET", p, "", ""); code != 401 {
			t.Errorf("GET %s without a key: %d %v", p, code, v)
		}
		if code, _, v := h.call("GET", p, alice, ""); code != 403 {
			t.Errorf("GET %s with an agent key: %d %v", p, code, v)
		}
		if code, _, v := h.call("GET", p, admin, ""); code != 200 {
			t.Errorf("GET %s with the admin key: %d %v", p, code, v)
		}
	}
	code, _, v = h.call("GET", "/admin/audit/verify", admin, "")
	if v["ok"] != true {
		t.Fatalf("audit verify: %d %v", code, v)
	}
	code, _, v = h.call("GET", "/admin/audit?who=agent:alice&action=llm.generate", admin, "")
	if es, _ := v["entries"].([]any); code != 200 || len(es) == 0 {
		t.Fatalf("audit query: %d %v", code, v)
	}

	// A rotated key gives a new one that works; a revoked key is refused.
	code, _, v = h.call("POST", "/admin/keys/"+aliceKeyID+"/rotate", admin, "")
	newKey, _ := v["key"].(string)
	if code != 201 || newKey == "" {
		t.Fatalf("rotate: %d %v", code, v)
	}
	if code, _, v := h.call("POST", "/v1/chat/completions", newKey, chatBody); code != 200 {
		t.Fatalf("/v1 with the rotated key: %d %v", code, v)
	}
	info, _ := v["info"].(map[string]any)
	newID, _ := info["id"].(string)
	if code, _, v := h.call("DELETE", "/admin/keys/"+newID, admin, ""); code != 204 {
		t.Fatalf("revoke: %d %v", code, v)
	}
	code, _, v = h.call("POST", "/v1/chat/completions", newKey, chatBody)
	if code != 401 || kindOfBody(v) != "caller_unauthorized" {
		t.Fatalf("/v1 with a revoked key: %d %v", code, v)
	}
}

func mustJSON(t *testing.T, v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestAccessApprovals(t *testing.T) {
	h, m, admin := startAuthed(t)
	alice, _ := h.addAgent(admin, "alice")
	put := func(name string) {
		t.Helper()
		req, _ := http.NewRequest("PUT", h.url+"/v1/storage/files/"+name, strings.NewReader("hello"))
		req.Header.Set("Authorization", "Bearer "+alice)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode/100 != 2 {
			t.Fatalf("PUT %s: %d", name, resp.StatusCode)
		}
	}
	for _, approve := range []bool{true, false} {
		name := "a.txt"
		if !approve {
			name = "b.txt"
		}
		put(name)
		asks, stop := m.Approvals.Subscribe()
		type reply struct {
			code int
			v    map[string]any
		}
		done := make(chan reply, 1)
		go func() {
			code, _, v := h.call("DELETE", "/v1/storage/files/"+name, alice, "")
			done <- reply{code, v}
		}()
		var ap access.Approval
		select {
		case ap = <-asks:
		case r := <-done:
			t.Fatalf("the delete ended without asking: %d %v", r.code, r.v)
		case <-time.After(10 * time.Second):
			t.Fatal("no approval was asked for")
		}
		stop()
		if ap.Action != access.StorageDelete || ap.Principal != "agent:alice" {
			t.Fatalf("approval: %+v", ap)
		}
		code, _, v := h.call("GET", "/v1/approvals", admin, "")
		if code != 200 || !strings.Contains(mustJSON(t, v), ap.ID) {
			t.Fatalf("GET /v1/approvals: %d %v", code, v)
		}
		if code, _, v := h.call("POST", "/v1/approvals/"+ap.ID, alice, `{"approve":true}`); code != 403 {
			t.Fatalf("an agent decided an approval: %d %v", code, v)
		}
		body := `{"approve":false,"reason":"keep it"}`
		if approve {
			body = `{"approve":true}`
		}
		if code, _, v := h.call("POST", "/v1/approvals/"+ap.ID, admin, body); code != 200 {
			t.Fatalf("POST /v1/approvals/%s: %d %v", ap.ID, code, v)
		}
		r := <-done
		if approve && r.code != 204 {
			t.Fatalf("approved delete: %d %v", r.code, r.v)
		}
		if !approve && (r.code != 403 || kindOfBody(r.v) != "policy_denied") {
			t.Fatalf("denied delete: %d %v", r.code, r.v)
		}
	}
}

func TestAccessApprovalTimeout(t *testing.T) {
	const timeout = 300 * time.Millisecond
	h, m, admin := startAuthed(t, func(c *config.Config) { c.Access.ApprovalTimeout = timeout })
	alice, _ := h.addAgent(admin, "alice")
	req, _ := http.NewRequest("PUT", h.url+"/v1/storage/files/keep.txt", strings.NewReader("hello"))
	req.Header.Set("Authorization", "Bearer "+alice)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		t.Fatalf("PUT: %d", resp.StatusCode)
	}

	// Nobody decides: the delete waits for the deadline, then fails with policy_timeout.
	asks, stop := m.Approvals.Subscribe()
	defer stop()
	start := time.Now()
	code, _, v := h.call("DELETE", "/v1/storage/files/keep.txt", alice, "")
	if code != http.StatusGatewayTimeout || kindOfBody(v) != "policy_timeout" {
		t.Fatalf("an undecided delete: %d %v", code, v)
	}
	if d := time.Since(start); d < timeout {
		t.Fatalf("the delete failed after %v, before the approval's deadline of %v", d, timeout)
	}
	var ap access.Approval
	select {
	case ap = <-asks:
	default:
		t.Fatal("the delete failed without asking for approval")
	}
	if ap.Action != access.StorageDelete || ap.Principal != "agent:alice" {
		t.Fatalf("approval: %+v", ap)
	}

	// The approval is expired, no longer pending, and can no longer be approved.
	code, _, v = h.call("GET", "/v1/approvals/"+ap.ID, admin, "")
	if code != 200 || v["status"] != string(access.Expired) {
		t.Fatalf("GET /v1/approvals/%s: %d %v", ap.ID, code, v)
	}
	code, _, v = h.call("GET", "/v1/approvals", admin, "")
	if code != 200 || strings.Contains(mustJSON(t, v), ap.ID) {
		t.Fatalf("the expired approval is still listed as pending: %d %v", code, v)
	}
	if code, _, v := h.call("POST", "/v1/approvals/"+ap.ID, admin, `{"approve":true}`); code/100 == 2 {
		t.Fatalf("an expired approval was approved: %d %v", code, v)
	}
	// The file is still there.
	req, _ = http.NewRequest("GET", h.url+"/v1/storage/files/keep.txt", nil)
	req.Header.Set("Authorization", "Bearer "+alice)
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != "hello" {
		t.Fatalf("GET after the timed-out delete: %d %q", resp.StatusCode, body)
	}
}

func TestAccessQuota(t *testing.T) {
	h, _, admin := startAuthed(t)
	carol, _ := h.addAgent(admin, "carol")
	code, _, v := h.call("PUT", "/admin/quotas/agent/carol", carol, `{"rpm":1}`)
	if code != 403 {
		t.Fatalf("an agent set its own quota: %d %v", code, v)
	}
	for _, bad := range []struct{ path, body string }{
		{"/admin/quotas/agent/nobody", `{"rpm":1}`},
		{"/admin/quotas/tenant/nowhere", `{"rpm":1}`},
		{"/admin/quotas/group/research", `{"rpm":1}`},
	} {
		if code, _, v := h.call("PUT", bad.path, admin, bad.body); code != 404 {
			t.Errorf("PUT %s: %d %v", bad.path, code, v)
		}
	}
	if code, _, v := h.call("PUT", "/admin/quotas/agent/carol", admin, `{"rpm":-1}`); code != 400 {
		t.Fatalf("a negative quota: %d %v", code, v)
	}
	code, _, v = h.call("PUT", "/admin/quotas/agent/carol", admin, `{"rpm":1,"tokens_per_day":100000}`)
	if lim, _ := v["limits"].(map[string]any); code != 200 || lim["rpm"] != float64(1) || lim["tokens_per_day"] != float64(100000) {
		t.Fatalf("PUT /admin/quotas/agent/carol: %d %v", code, v)
	}
	if code, _, v := h.call("PUT", "/admin/quotas/tenant/default", admin, `{"max_concurrent":50}`); code != 200 {
		t.Fatalf("PUT /admin/quotas/tenant/default: %d %v", code, v)
	}

	if code, _, v := h.call("POST", "/v1/chat/completions", carol, chatBody); code != 200 {
		t.Fatalf("first call: %d %v", code, v)
	}
	code, hdr, v := h.call("POST", "/v1/chat/completions", carol, chatBody)
	if code != 429 || kindOfBody(v) != "policy_quota_exceeded" || hdr.Get("Retry-After") == "" {
		t.Fatalf("over quota: %d %v %v", code, hdr, v)
	}
	code, hdr, v = h.call("POST", "/query", carol, strings.Replace(llmQuery, "%s", "carol", 1))
	if code != 429 || kindOfBody(v) != "policy_quota_exceeded" || hdr.Get("Retry-After") == "" {
		t.Fatalf("/query over quota: %d %v %v", code, hdr, v)
	}

	// Every scope with limits is listed, with what it used.
	code, _, v = h.call("GET", "/admin/quotas", admin, "")
	qs, _ := v["quotas"].([]any)
	if code != 200 || len(qs) != 2 {
		t.Fatalf("GET /admin/quotas: %d %v", code, v)
	}
	var carolUsage map[string]any
	for _, q := range qs {
		u, _ := q.(map[string]any)
		if sc, _ := u["scope"].(map[string]any); sc["kind"] == "agent" && sc["name"] == "carol" {
			carolUsage = u
		}
	}
	if carolUsage == nil || carolUsage["day_used"].(float64) <= 0 || carolUsage["rpm_left"].(float64) >= 1 {
		t.Fatalf("carol's usage: %v", qs)
	}
	if code, _, v := h.call("GET", "/admin/quotas", carol, ""); code != 403 {
		t.Fatalf("an agent listed quotas: %d %v", code, v)
	}

	// Reset: the budget and the bucket start over, and the call goes through.
	if code, _, v := h.call("POST", "/admin/quotas/agent/carol/reset", carol, ""); code != 403 {
		t.Fatalf("an agent reset its quota: %d %v", code, v)
	}
	code, _, v = h.call("POST", "/admin/quotas/agent/carol/reset", admin, "")
	if code != 200 || v["day_used"] != float64(0) || v["rpm_left"] != float64(1) {
		t.Fatalf("reset: %d %v", code, v)
	}
	if code, _, v := h.call("POST", "/v1/chat/completions", carol, chatBody); code != 200 {
		t.Fatalf("after the reset: %d %v", code, v)
	}
	code, _, v = h.call("GET", "/admin/audit?action=quota.reset", admin, "")
	if es, _ := v["entries"].([]any); code != 200 || len(es) != 1 {
		t.Fatalf("audit of the reset: %d %v", code, v)
	}
}

func TestAccessAgentPatch(t *testing.T) {
	h, _, admin := startAuthed(t)
	dave, _ := h.addAgent(admin, "dave")
	if code, _, v := h.call("PATCH", "/admin/agents/dave", dave, `{"groups":["ops"]}`); code != 403 {
		t.Fatalf("an agent changed its groups: %d %v", code, v)
	}
	if code, _, v := h.call("PATCH", "/admin/agents/nobody", admin, `{"groups":["ops"]}`); code != 404 {
		t.Fatalf("PATCH an unknown agent: %d %v", code, v)
	}
	if code, _, v := h.call("PATCH", "/admin/agents/dave", admin, `{}`); code != 400 {
		t.Fatalf("PATCH with nothing: %d %v", code, v)
	}
	code, _, v := h.call("PATCH", "/admin/agents/dave", admin, `{"groups":["research","ops"]}`)
	if gs, _ := v["groups"].([]any); code != 200 || len(gs) != 2 {
		t.Fatalf("PATCH groups: %d %v", code, v)
	}
	code, _, v = h.call("GET", "/admin/agents", admin, "")
	if code != 200 || !strings.Contains(mustJSON(t, v), `"research"`) {
		t.Fatalf("GET /admin/agents after the change: %d %v", code, v)
	}

	// Disabled, its key stops at once; enabled, it works again.
	code, _, v = h.call("PATCH", "/admin/agents/dave", admin, `{"disabled":true}`)
	if code != 200 || v["disabled"] != true {
		t.Fatalf("PATCH disabled: %d %v", code, v)
	}
	if code, _, v := h.call("POST", "/v1/chat/completions", dave, chatBody); code != 401 {
		t.Fatalf("a disabled agent's key: %d %v", code, v)
	}
	if code, _, v := h.call("PATCH", "/admin/agents/dave", admin, `{"disabled":false,"groups":[]}`); code != 200 || v["disabled"] == true {
		t.Fatalf("PATCH enable: %d %v", code, v)
	}
	if code, _, v := h.call("POST", "/v1/chat/completions", dave, chatBody); code != 200 {
		t.Fatalf("an enabled agent's key: %d %v", code, v)
	}
}
