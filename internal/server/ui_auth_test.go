package server

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aios-go/aios/internal/access"
)

// signIn posts key to POST /ui/login with the dashboard's header and returns the
// answer's status, its session cookie (nil when none was set) and body.
func (h *harness) signIn(key string, headers ...string) (int, *http.Cookie, map[string]any) {
	h.t.Helper()
	code, hdr, v := h.call("POST", "/ui/login", key, "", headers...)
	for _, c := range (&http.Response{Header: hdr}).Cookies() {
		if c.Name == uiCookieName {
			return code, c, v
		}
	}
	return code, nil, v
}

// withCookie sends c as the request's only credential.
func withCookie(c *http.Cookie, headers ...string) []string {
	return append([]string{"Cookie", c.Name + "=" + c.Value}, headers...)
}

// Signing in: only a valid admin key, sent with the dashboard's header, gets a session
// cookie, and the cookie is HttpOnly, SameSite=Strict, for /ui only, Secure when the
// browser came over TLS.
func TestUILogin(t *testing.T) {
	h, _, admin := startAuthed(t)
	alice, _ := h.addAgent(admin, "alice")

	for _, c := range []struct {
		name, key string
		headers   []string
		code      int
		kind      string
	}{
		{"no key", "", []string{uiHeader, "1"}, 401, "caller_unauthorized"},
		{"a wrong key", "aios_admin_0000000000000000_" + strings.Repeat("x", 43), []string{uiHeader, "1"}, 401, "caller_unauthorized"},
		{"not a key", "hunter2", []string{uiHeader, "1"}, 401, "caller_unauthorized"},
		{"an agent's key", alice, []string{uiHeader, "1"}, 403, "policy_denied"},
		{"no dashboard header", admin, nil, 403, "policy_denied"},
		{"a wrong dashboard header", admin, []string{uiHeader, "yes"}, 403, "policy_denied"},
	} {
		code, cookie, v := h.signIn(c.key, c.headers...)
		if code != c.code || kindOfBody(v) != c.kind || cookie != nil {
			t.Errorf("sign in with %s: %d %v, cookie %v", c.name, code, v, cookie)
		}
	}

	code, cookie, v := h.signIn(admin, uiHeader, "1")
	if code != 200 || cookie == nil || v["principal"] != "admin:ops" || v["session"] != true {
		t.Fatalf("sign in with the admin key: %d %v %v", code, cookie, v)
	}
	if !cookie.HttpOnly || cookie.SameSite != http.SameSiteStrictMode || cookie.Path != "/ui" || cookie.Secure ||
		cookie.MaxAge != int(uiSessionTTL/time.Second) || len(cookie.Value) < 40 || strings.Contains(cookie.Value, admin[12:]) {
		t.Fatalf("session cookie: %+v", cookie)
	}
	// Behind a TLS proxy the cookie is Secure.
	if _, c, _ := h.signIn(admin, uiHeader, "1", "X-Forwarded-Proto", "https"); c == nil || !c.Secure {
		t.Fatalf("session cookie over TLS: %+v", c)
	}
}

// The session cookie stands for the admin key on /ui and nowhere else; a post needs the
// dashboard's header; signing out, or revoking the key, ends the session.
func TestUISessionCookie(t *testing.T) {
	h, m, admin := startAuthed(t)
	_, cookie, _ := h.signIn(admin, uiHeader, "1")
	if cookie == nil {
		t.Fatal("no session cookie")
	}

	// The page's files need no key: it must load to ask for one. Its API does.
	for _, p := range []string{"/ui/", "/ui/app.js", "/ui/style.css"} {
		if code, _, _ := h.call("GET", p, "", ""); code != 200 {
			t.Errorf("GET %s without a key: %d", p, code)
		}
	}
	for _, p := range []string{"/ui/api/state", "/ui/api/session", "/ui/api/approvals"} {
		if code, _, v := h.call("GET", p, "", ""); code != 401 {
			t.Errorf("GET %s without a key: %d %v", p, code, v)
		}
		if code, _, v := h.call("GET", p, "", "", withCookie(cookie)...); code != 200 {
			t.Errorf("GET %s with the session cookie: %d %v", p, code, v)
		}
	}
	code, _, v := h.call("GET", "/ui/api/session", "", "", withCookie(cookie)...)
	if code != 200 || v["auth"] != true || v["principal"] != "admin:ops" || v["session"] != true || v["expires"] == nil {
		t.Fatalf("GET /ui/api/session: %d %v", code, v)
	}
	code, _, v = h.call("GET", "/ui/api/session", admin, "")
	if code != 200 || v["principal"] != "admin:ops" || v["session"] != false {
		t.Fatalf("GET /ui/api/session with the key: %d %v", code, v)
	}

	// Outside /ui the cookie is no credential, even on admin routes that take the key.
	for _, p := range []string{"/admin/usage", "/v1/approvals", "/metrics", "/admin/audit", "/v1/models"} {
		if code, _, v := h.call("GET", p, "", "", withCookie(cookie)...); code != 401 {
			t.Errorf("GET %s with the session cookie: %d %v", p, code, v)
		}
	}
	if code, _, v := h.call("POST", "/v1/approvals/apr_0", "", `{"approve":true}`, withCookie(cookie)...); code != 401 {
		t.Errorf("POST /v1/approvals with the session cookie: %d %v", code, v)
	}

	// A post under /ui needs the dashboard's header, which a cross-site form cannot send.
	code, _, v = h.call("POST", "/ui/api/approvals/apr_0", "", `{"approve":true}`, withCookie(cookie)...)
	if code != 403 || kindOfBody(v) != "policy_denied" || !strings.Contains(v["detail"].(string), uiHeader) {
		t.Fatalf("POST without %s: %d %v", uiHeader, code, v)
	}
	code, _, v = h.call("POST", "/ui/api/approvals/apr_0", "", `{"approve":true}`, withCookie(cookie, uiHeader, "1")...)
	if code != 404 || kindOfBody(v) != "caller_not_found" {
		t.Fatalf("POST with %s, for an approval that does not exist: %d %v", uiHeader, code, v)
	}
	if code, _, v := h.call("POST", "/ui/logout", "", "", withCookie(cookie)...); code != 403 {
		t.Fatalf("sign out without %s: %d %v", uiHeader, code, v)
	}

	// Signing out ends the session on the server: the same cookie no longer works.
	req, _ := http.NewRequest("POST", h.url+"/ui/logout", nil)
	req.Header.Set("Cookie", uiCookieName+"="+cookie.Value)
	req.Header.Set(uiHeader, "1")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	cleared := resp.Cookies()
	if resp.StatusCode != 204 || len(cleared) != 1 || cleared[0].Name != uiCookieName || cleared[0].MaxAge >= 0 {
		t.Fatalf("sign out: %d %+v", resp.StatusCode, cleared)
	}
	if code, hdr, v := h.call("GET", "/ui/api/state", "", "", withCookie(cookie)...); code != 401 || !strings.Contains(hdr.Get("Set-Cookie"), "Max-Age=0") {
		t.Fatalf("GET /ui/api/state after signing out: %d %v %v", code, hdr, v)
	}

	// A revoked key ends the sessions it opened at once.
	key2, info, err := m.Keys.Issue(context.Background(), access.KindAdmin, "ops2")
	if err != nil {
		t.Fatal(err)
	}
	_, cookie2, _ := h.signIn(key2, uiHeader, "1")
	if code, _, v := h.call("GET", "/ui/api/state", "", "", withCookie(cookie2)...); code != 200 {
		t.Fatalf("the second admin's session: %d %v", code, v)
	}
	if code, _, v := h.call("DELETE", "/admin/keys/"+info.ID, admin, ""); code != 204 {
		t.Fatalf("revoke: %d %v", code, v)
	}
	if code, _, v := h.call("GET", "/ui/api/state", "", "", withCookie(cookie2)...); code != 401 {
		t.Fatalf("a session of a revoked key: %d %v", code, v)
	}
	// A made-up session id is refused like a wrong key.
	fake := &http.Cookie{Name: uiCookieName, Value: strings.Repeat("A", 43)}
	if code, _, v := h.call("GET", "/ui/api/state", "", "", withCookie(fake)...); code != 401 || kindOfBody(v) != "caller_unauthorized" {
		t.Fatalf("a made-up session: %d %v", code, v)
	}
}

// Sessions past their lifetime are refused; past the cap, signing in ends the session
// that would expire first.
func TestUISessionsExpireAndAreBounded(t *testing.T) {
	_, m, admin := startAuthed(t)
	now := time.Now()
	u := newUISessions(m)
	u.now = func() time.Time { return now }
	first, _, err := u.start(admin)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := u.authenticate(ctx, first); err != nil {
		t.Fatal(err)
	}
	for range uiMaxSessions {
		now = now.Add(time.Millisecond)
		if _, _, err := u.start(admin); err != nil {
			t.Fatal(err)
		}
	}
	if len(u.sessions) != uiMaxSessions {
		t.Fatalf("%d sessions kept", len(u.sessions))
	}
	if _, err := u.authenticate(ctx, first); err == nil {
		t.Fatal("the oldest session outlived the cap")
	}
	last, _, _ := u.start(admin)
	now = now.Add(uiSessionTTL)
	if _, err := u.authenticate(ctx, last); err == nil {
		t.Fatal("a session outlived its lifetime")
	}
}

// With the access manager off there is nothing to sign in to; the page learns that from
// GET /ui/api/session, and the approvals panel says what turns approvals on.
func TestUIAccessOff(t *testing.T) {
	h := start(t, Options{})
	code, _, v := h.call("GET", "/ui/api/session", "", "")
	if code != 200 || v["auth"] != false {
		t.Fatalf("GET /ui/api/session: %d %v", code, v)
	}
	if code, _, v := h.call("POST", "/ui/login", "", "", uiHeader, "1"); code != 501 || kindOfBody(v) != "policy_not_enabled" {
		t.Fatalf("POST /ui/login: %d %v", code, v)
	}
	code, _, v = h.call("GET", "/ui/api/approvals", "", "")
	if code != 200 || v["enabled"] != false || !strings.Contains(v["message"].(string), "access.auth: true") {
		t.Fatalf("GET /ui/api/approvals: %d %v", code, v)
	}
	if code, _, v := h.call("POST", "/ui/api/approvals/apr_0", "", `{"approve":true}`); code != 501 {
		t.Fatalf("POST /ui/api/approvals/apr_0: %d %v", code, v)
	}
	resp, events := openEvents(t, t.Context(), h.url+"/ui/api/events")
	defer resp.Body.Close()
	var ap uiApprovals
	if err := json.Unmarshal([]byte(nextEvent(t, events, "approvals").data), &ap); err != nil {
		t.Fatal(err)
	}
	if ap.Enabled || !strings.Contains(ap.Message, "access.auth: true") {
		t.Fatalf("approvals event with access off: %+v", ap)
	}
}
