package server

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/aios-go/aios/internal/config"
)

var fuzzMethods = []string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}

// FuzzAuthMiddleware sends arbitrary Authorization, x-api-key and X-AIOS-Agent values
// and paths through the whole handler with auth on. Nothing may panic or answer 5xx,
// and a request without a valid key never gets past authentication: every route but
// the open ones (GET /status, GET /shared/…, the dashboard's page and its files)
// answers 401.
func FuzzAuthMiddleware(f *testing.F) {
	h, m, admin := startAuthed(f, func(c *config.Config) { c.Access.ApprovalTimeout = time.Millisecond })
	alice, _ := h.addAgent(admin, "alice")
	revoked, revokedID := h.addAgent(admin, "bob")
	if err := m.Keys.Revoke(context.Background(), revokedID); err != nil {
		f.Fatal(err)
	}
	valid := []string{admin, alice}
	handler := h.srv.Handler()

	for _, s := range []struct {
		method              byte
		path, auth, xkey, a string
	}{
		{0, "/v1/models", "", "", ""},
		{2, "/query", "Bearer " + revoked, "", ""},
		{0, "/admin/audit", "Bearer " + alice[:len(alice)-1] + "x", "", ""},
		{2, "/v1/chat/completions", "Bearer " + alice, alice + "x", ""},
		{2, "/v1/messages", "", revoked, "alice"},
		{0, "/status", "Bearer", "", ""},
		{0, "/shared/abc", "bearer  " + admin, "", ""},
		{3, "/admin/quotas/agent/alice", "Basic " + admin, "", ""},
		{5, "/v1/storage/files/a.txt", "Bearer aios_agent_0000000000000000_" + strings.Repeat("A", 43), "", ""},
		{1, "/metrics", "Bearer aios_admin_", "aios_admin_" + strings.Repeat("z", 100), ""},
		{0, "/ui", strings.Repeat("Bearer ", 50), "\x00\xff", "../alice"},
		{2, "/ui/login", "Bearer " + alice, "", ""},
		{2, "/ui/api/approvals/apr_0", "", "", ""},
		{0, "/ui/api/events", "Bearer " + revoked, "", ""},
		{2, "//admin/../admin/agents", "Bearer " + admin + " " + admin, "", ""},
		{0, "/v1/models", "Bearer " + alice, "", "bob"},
		{4, "/admin/agents/alice", "Bearer " + admin, "", ""},
	} {
		f.Add(s.method, s.path, s.auth, s.xkey, s.a)
	}

	f.Fuzz(func(t *testing.T, mi byte, path, auth, xkey, agent string) {
		method := fuzzMethods[int(mi)%len(fuzzMethods)]
		if !strings.HasPrefix(path, "/") {
			path = "/" + path
		}
		req, err := http.NewRequest(method, "http://aios.test"+path, http.NoBody) // a server always sets a body
		if err != nil {
			return // not a request a client could send
		}
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		if xkey != "" {
			req.Header.Set("x-api-key", xkey)
		}
		if agent != "" {
			req.Header.Set("X-AIOS-Agent", agent)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		rec := httptest.NewRecorder()
		handler.ServeHTTP(rec, req.WithContext(ctx))

		code := rec.Code
		hasKey := false
		for _, k := range valid {
			hasKey = hasKey || strings.Contains(auth, k) || strings.Contains(xkey, k)
		}
		if !hasKey && code >= 500 {
			t.Fatalf("%s %q (Authorization %q, x-api-key %q): %d %s", method, path, auth, xkey, code, rec.Body)
		}
		open := (method == "GET" || method == "HEAD") &&
			(req.URL.Path == "/status" || strings.HasPrefix(req.URL.Path, "/shared/")) || uiPublic(req)
		if !hasKey && !open && code != http.StatusUnauthorized {
			t.Fatalf("%s %q without a valid key (Authorization %q, x-api-key %q) got past authentication: %d %s",
				method, path, auth, xkey, code, rec.Body)
		}
		if auth == "Bearer "+alice && xkey == "" && (agent == "" || agent == "alice") && code == http.StatusUnauthorized {
			t.Fatalf("alice's valid key was refused on %s %q: %s", method, path, rec.Body)
		}
	})
}
