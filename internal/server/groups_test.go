package server

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/aios-go/aios/internal/access"
)

// ownerQuery is an AIOS /query call in owner's namespace: params.owner, as an agent of
// AIOS's Python SDK adds it to the params it sends.
func ownerQuery(caller, module, op, owner, params string) string {
	params = strings.TrimSuffix(strings.TrimSpace(params), "}")
	if params != "{" {
		params += ", "
	}
	params += fmt.Sprintf(`"owner": %q}`, owner)
	return fmt.Sprintf(`{"agent_name": %q, "query_type": %q, "query_data": {"query_class": %q, "operation_type": %q, "params": %s}}`,
		caller, module, module, op, params)
}

// groupOp is one operation a caller tries in alice's namespace; body and path may name
// the caller with %[1]s.
type groupOp struct {
	name, method, path, body string
	// ok says whether a successful answer also did what was asked.
	ok func(code int, v map[string]any) bool
}

// queryOK is a /query answer whose syscall succeeded.
func queryOK(code int, v map[string]any) bool {
	r, _ := v["response"].(map[string]any)
	st, _ := r["status_code"].(float64)
	return code == http.StatusOK && st == 200 && r["error"] == nil
}

// AIOS's privilege groups end to end, through the HTTP surfaces agents use: with the
// access manager on, alice's storage, memory and tool log are open to alice and to bob,
// who shares her group, and to no one else (carol: same tenant, other group; erin:
// other tenant, a group of the same name). Every (caller, operation) pair is checked:
// zero unauthorized successes, zero wrongful denials. What the allowed calls did lands
// in alice's namespace, and what the refused ones tried leaves no trace.
func TestPrivilegeGroupsEndToEnd(t *testing.T) {
	h, m, admin := startAuthed(t)
	keys := map[string]string{}
	for _, a := range []struct{ name, tenant, group string }{
		{"alice", "acme", "research"}, {"bob", "acme", "research"}, {"carol", "acme", "ops"}, {"erin", "globex", "research"},
	} {
		code, _, v := h.call("POST", "/admin/agents", admin, fmt.Sprintf(`{"name":%q,"tenant":%q,"groups":[%q]}`, a.name, a.tenant, a.group))
		if code != http.StatusCreated {
			t.Fatalf("add %s: %d %v", a.name, code, v)
		}
		keys[a.name] = v["key"].(string)
	}
	// alice's own: a file, a note, a tool call.
	for _, q := range []string{
		`{"agent_name":"alice","query_type":"storage","query_data":{"query_class":"storage","operation_type":"write","params":{"file_path":"plan.txt","content":"the launch plan"}}}`,
		`{"agent_name":"alice","query_type":"memory","query_data":{"query_class":"memory","operation_type":"add_memory","params":{"content":"the cello lesson moved to Thursday"}}}`,
		`{"agent_name":"alice","query_type":"tool","query_data":{"tool_calls":[{"name":"calculator","parameters":{"expression":"6*7"}}]}}`,
	} {
		if code, _, v := h.call("POST", "/query", keys["alice"], q); code != 200 {
			t.Fatalf("alice's own %s: %d %v", q, code, v)
		}
	}

	ops := []groupOp{
		{"query storage read", "POST", "/query", ownerQuery("%[1]s", "storage", "read", "alice", `{"file_path": "plan.txt"}`),
			func(code int, v map[string]any) bool {
				r, _ := v["response"].(map[string]any)
				return queryOK(code, v) && r["response_message"] == "the launch plan"
			}},
		{"query storage write new file", "POST", "/query", ownerQuery("%[1]s", "storage", "write", "alice", `{"file_path": "from-%[1]s.txt", "content": "by %[1]s"}`), queryOK},
		{"query storage list", "POST", "/query", ownerQuery("%[1]s", "storage", "list", "alice", `{}`),
			func(code int, v map[string]any) bool {
				r, _ := v["response"].(map[string]any)
				msg, _ := r["response_message"].(string)
				return queryOK(code, v) && strings.Contains(msg, "plan.txt")
			}},
		{"query memory add", "POST", "/query", ownerQuery("%[1]s", "memory", "add_memory", "alice", `{"content": "a note by %[1]s"}`),
			func(code int, v map[string]any) bool {
				r, _ := v["response"].(map[string]any)
				return code == 200 && r["success"] == true
			}},
		{"query memory retrieve", "POST", "/query", ownerQuery("%[1]s", "memory", "retrieve_memory", "alice", `{"content": "when is the cello lesson?", "k": 3}`),
			func(code int, v map[string]any) bool {
				r, _ := v["response"].(map[string]any)
				b, _ := json.Marshal(r["search_results"])
				return code == 200 && r["success"] == true && strings.Contains(string(b), "cello lesson moved")
			}},
		{"REST storage read", "GET", "/v1/storage/files/plan.txt?owner=alice", "",
			func(code int, _ map[string]any) bool { return code == 200 }},
		{"REST storage write new file", "PUT", "/v1/storage/files/rest-%[1]s.txt?owner=alice", "by %[1]s",
			func(code int, _ map[string]any) bool { return code/100 == 2 }},
		{"REST memory search", "POST", "/v1/memory/search?owner=alice", `{"content": "cello lesson", "k": 3}`,
			func(code int, v map[string]any) bool {
				b, _ := json.Marshal(v)
				return code == 200 && strings.Contains(string(b), "cello lesson moved")
			}},
		{"REST tool log read", "GET", "/v1/tools/calls?owner=alice", "",
			func(code int, v map[string]any) bool {
				b, _ := json.Marshal(v["data"])
				return code == 200 && v["agent"] == "alice" && strings.Contains(string(b), `"tool":"calculator"`) && strings.Contains(string(b), "6*7")
			}},
	}
	allowed := map[string]bool{"alice": true, "bob": true, "carol": false, "erin": false}
	var unauthorized, wrongful, cells int
	for _, caller := range []string{"alice", "bob", "carol", "erin"} {
		for _, op := range ops {
			cells++
			name := func(s string) string {
				if strings.Contains(s, "%[1]s") {
					return fmt.Sprintf(s, caller)
				}
				return s
			}
			path, body := name(op.path), name(op.body)
			code, _, v := h.call(op.method, path, keys[caller], body)
			switch {
			case allowed[caller] && !op.ok(code, v):
				wrongful++
				t.Errorf("%s, %s in alice's namespace: wrongly refused or failed: %d %v", caller, op.name, code, v)
			case !allowed[caller] && (code != http.StatusForbidden || kindOfBody(v) != "policy_denied"):
				unauthorized++
				t.Errorf("%s, %s in alice's namespace: not refused with policy_denied: %d %v", caller, op.name, code, v)
			}
		}
	}
	t.Logf("%d (caller, operation) cells: %d unauthorized successes, %d wrongful denials", cells, unauthorized, wrongful)
	if cells != 4*len(ops) {
		t.Fatalf("%d cells checked", cells)
	}

	// What was allowed landed in alice's namespace; what was refused left nothing.
	code, _, v := h.call("POST", "/query", keys["alice"], `{"agent_name":"alice","query_type":"storage","query_data":{"query_class":"storage","operation_type":"list","params":{}}}`)
	r, _ := v["response"].(map[string]any)
	list, _ := r["response_message"].(string)
	if code != 200 {
		t.Fatalf("alice's list: %d %v", code, v)
	}
	for _, f := range []string{"from-alice.txt", "from-bob.txt", "rest-alice.txt", "rest-bob.txt"} {
		if !strings.Contains(list, f) {
			t.Errorf("alice's namespace lacks %s: %q", f, list)
		}
	}
	for _, f := range []string{"from-carol", "from-erin", "rest-carol", "rest-erin"} {
		if strings.Contains(list, f) {
			t.Errorf("a refused write left %s in alice's namespace: %q", f, list)
		}
	}
	// bob wrote into alice's namespace, not his own.
	if code, _, _ := h.call("GET", "/v1/storage/files/from-bob.txt", keys["bob"], ""); code != http.StatusNotFound {
		t.Errorf("bob's own namespace has from-bob.txt: %d", code)
	}
	code, _, v = h.call("POST", "/v1/memory/search", keys["alice"], `{"content": "a note by", "k": 10}`)
	b, _ := json.Marshal(v)
	if code != 200 || !strings.Contains(string(b), "a note by bob") || strings.Contains(string(b), "a note by carol") || strings.Contains(string(b), "a note by erin") {
		t.Errorf("alice's notes: %d %s", code, b)
	}

	// bob writing over alice's file asks a person, as it would ask alice: the gate
	// looks at the owner's versions. Denied, the file keeps alice's content.
	asks, stop := m.Approvals.Subscribe()
	done := make(chan int, 1)
	go func() {
		code, _, _ := h.call("PUT", "/v1/storage/files/plan.txt?owner=alice", keys["bob"], "bob's plan")
		done <- code
	}()
	select {
	case ap := <-asks:
		stop()
		if ap.Principal != "agent:bob" || ap.Resource != "Namespace:alice" || ap.Action != access.StorageWrite {
			t.Fatalf("approval: %+v", ap)
		}
		if _, err := m.Approvals.Decide(t.Context(), ap.ID, false, "admin:ops", "not yours"); err != nil {
			t.Fatal(err)
		}
	case code := <-done:
		stop()
		t.Fatalf("bob overwrote alice's file without asking: %d", code)
	}
	if code := <-done; code != http.StatusForbidden {
		t.Fatalf("the denied overwrite: %d", code)
	}
	if code, _, v := h.call("POST", "/query", keys["alice"], `{"agent_name":"alice","query_type":"storage","query_data":{"query_class":"storage","operation_type":"read","params":{"file_path":"plan.txt"}}}`); !strings.Contains(fmt.Sprint(v), "the launch plan") {
		t.Fatalf("alice's plan after the denied overwrite: %d %v", code, v)
	}

	// Operations on who the caller is, not on what a namespace holds, take no owner,
	// even within the group.
	for _, q := range []string{
		ownerQuery("bob", "storage", "mount", "alice", `{"root_dir": "/"}`),
		ownerQuery("bob", "memory", "create_block", "alice", `{"block": "shared"}`),
	} {
		if code, _, v := h.call("POST", "/query", keys["bob"], q); code != http.StatusForbidden || kindOfBody(v) != "policy_denied" {
			t.Errorf("%s: %d %v", q, code, v)
		}
	}

	// The audit log records the refusals with who asked and whose namespace it was.
	entries, err := m.Audit.Query(t.Context(), access.AuditFilter{Who: "agent:carol", Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	denied := 0
	for _, e := range entries {
		if e.Decision == "deny" && e.Resource == `Namespace:alice` {
			denied++
		}
	}
	if denied < len(ops) {
		t.Errorf("the audit log has %d of carol's refusals in alice's namespace, want %d: %+v", denied, len(ops), entries)
	}
}

// Without the access manager there are no groups: params.owner and ?owner= naming
// another agent are refused, naming the caller is the same as leaving it out.
func TestOwnerNeedsTheAccessManager(t *testing.T) {
	h := startSystem(t, nil)
	for _, q := range []string{
		ownerQuery("bob", "storage", "read", "alice", `{"file_path": "plan.txt"}`),
		ownerQuery("bob", "memory", "add_memory", "alice", `{"content": "x"}`),
	} {
		code, b, _ := h.post("/query", q)
		if code != http.StatusForbidden || !strings.Contains(string(b), "access.auth") {
			t.Errorf("%s: %d %s", q, code, b)
		}
	}
	for _, path := range []string{"/v1/storage/files/plan.txt?owner=alice", "/v1/tools/calls?owner=alice"} {
		code, _, v := h.call("GET", path, "", "", "X-AIOS-Agent", "bob")
		if code != http.StatusForbidden || kindOfBody(v) != "policy_denied" {
			t.Errorf("GET %s: %d %v", path, code, v)
		}
	}
	h.ok(ownerQuery("bob", "storage", "write", "bob", `{"file_path": "mine.txt", "content": "own"}`))
	if got := h.ok(`{"agent_name": "bob", "query_type": "storage", "query_data": {"query_class": "storage", "operation_type": "read", "params": {"file_path": "mine.txt"}}}`); got != "own" {
		t.Fatalf("bob's own file: %q", got)
	}
}
