package server

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aios-go/aios/internal/access"
)

// The approvals panel's stream and routes, signed in with the session cookie: a
// delete that asks shows as pending at once, with who asks, what, where and why; the
// admin denies it with a reason through the dashboard, the delete fails with
// policy_denied, and the next "approvals" event lists it among the recent decisions
// and no longer as pending. An approval goes through the same way.
func TestUIApprovals(t *testing.T) {
	h, _, admin := startAuthed(t)
	alice, _ := h.addAgent(admin, "alice")
	_, cookie, _ := h.signIn(admin, uiHeader, "1")

	req, _ := http.NewRequestWithContext(t.Context(), "GET", h.url+"/ui/api/events?interval_ms=60000", nil)
	req.Header.Set("Cookie", uiCookieName+"="+cookie.Value)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("GET /ui/api/events with the session cookie: %d", resp.StatusCode)
	}
	events := uiEvents(resp.Body)
	next := func() uiApprovals {
		t.Helper()
		var ap uiApprovals
		if err := json.Unmarshal([]byte(nextEvent(t, events, "approvals").data), &ap); err != nil {
			t.Fatal(err)
		}
		return ap
	}
	if first := next(); !first.Enabled || first.Message != "" || len(first.Pending) != 0 || len(first.Recent) != 0 {
		t.Fatalf("the first approvals event: %+v", first)
	}

	for _, approve := range []bool{false, true} {
		name := "keep.txt"
		if approve {
			name = "drop.txt"
		}
		if code, _, v := h.call("PUT", "/v1/storage/files/"+name, alice, "hello"); code/100 != 2 {
			t.Fatalf("PUT %s: %d %v", name, code, v)
		}
		type reply struct {
			code int
			v    map[string]any
		}
		done := make(chan reply, 1)
		go func() {
			code, _, v := h.call("DELETE", "/v1/storage/files/"+name, alice, "")
			done <- reply{code, v}
		}()
		// The request comes as an event of its own, well before the stream's interval.
		var pending access.Approval
		for ap := next(); ; ap = next() {
			if len(ap.Pending) == 1 {
				pending = ap.Pending[0]
				break
			}
		}
		if pending.Principal != "agent:alice" || pending.Action != access.StorageDelete || pending.Resource != "Namespace:alice" ||
			!strings.HasSuffix(pending.Path, name) || pending.Reason == "" || time.Until(pending.Deadline) <= 0 {
			t.Fatalf("pending: %+v", pending)
		}
		code, _, v := h.call("GET", "/ui/api/approvals", "", "", withCookie(cookie)...)
		if code != 200 || !strings.Contains(mustJSON(t, v), pending.ID) {
			t.Fatalf("GET /ui/api/approvals: %d %v", code, v)
		}

		body := `{"approve":false,"reason":"keep it"}`
		if approve {
			body = `{"approve":true}`
		}
		code, _, v = h.call("POST", "/ui/api/approvals/"+pending.ID, "", body, withCookie(cookie, uiHeader, "1")...)
		if code != 200 || v["decided_by"] != "admin:ops" {
			t.Fatalf("decide through the dashboard: %d %v", code, v)
		}
		r := <-done
		if approve && r.code != 204 {
			t.Fatalf("approved delete: %d %v", r.code, r.v)
		}
		if !approve && (r.code != 403 || kindOfBody(r.v) != "policy_denied" || !strings.Contains(mustJSON(t, r.v), "keep it")) {
			t.Fatalf("denied delete: %d %v", r.code, r.v)
		}
		// Within a second the stream has it decided.
		for ap := next(); ; ap = next() {
			if len(ap.Pending) == 0 && len(ap.Recent) > 0 && ap.Recent[0].ID == pending.ID {
				want := access.Denied
				if approve {
					want = access.Approved
				}
				if ap.Recent[0].Status != want || ap.Recent[0].DecidedBy != "admin:ops" {
					t.Fatalf("recent decision: %+v", ap.Recent[0])
				}
				break
			}
		}
		// Deciding again is refused: it is no longer pending.
		if code, _, v := h.call("POST", "/ui/api/approvals/"+pending.ID, "", body, withCookie(cookie, uiHeader, "1")...); code != 400 {
			t.Fatalf("deciding twice: %d %v", code, v)
		}
	}

	// GET /v1/approvals?status=all lists decided ones too.
	code, _, v := h.call("GET", "/v1/approvals?status=all", admin, "")
	if data, _ := v["data"].([]any); code != 200 || len(data) != 2 {
		t.Fatalf("GET /v1/approvals?status=all: %d %v", code, v)
	}
}
