package access

import (
	"context"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"

	"github.com/aios-go/aios/api"
)

func TestAuthenticatorAndGuard(t *testing.T) {
	ctx := context.Background()
	m, _ := sqliteManager(t)
	must[Agent](t)(m.Directory.AddAgent(ctx, Agent{Name: "alice", Groups: []string{"g"}}))
	agentKey, _, _ := m.Keys.Issue(ctx, KindAgent, "alice")
	adminKey, _, _ := m.Keys.Issue(ctx, KindAdmin, "ops")

	fail := func(w http.ResponseWriter, r *http.Request, err error) {
		k := api.KindOf(err)
		w.Header().Set("X-Kind", string(k))
		w.WriteHeader(k.HTTPStatus())
	}
	who := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, ok := PrincipalFrom(r.Context())
		if !ok {
			w.Write([]byte("none"))
			return
		}
		w.Write([]byte(p.String()))
	})
	mux := http.NewServeMux()
	mux.Handle("/v1/", who)
	mux.Handle("GET /admin/", m.Guard(AdminRead, fail)(who))

	do := func(h http.Handler, path string, hdr http.Header) (int, string) {
		r := httptest.NewRequest("GET", path, nil)
		r.Header = hdr
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w.Code, w.Body.String()
	}
	on := m.Authenticator(true, fail)(mux)
	for _, tc := range []struct {
		path   string
		hdr    http.Header
		status int
		body   string
	}{
		{"/v1/x", bearer(agentKey), 200, "agent:alice"},
		{"/v1/x", http.Header{"X-Api-Key": {agentKey}}, 200, "agent:alice"},
		{"/v1/x", http.Header{"X-Api-Key": {agentKey}, "X-Aios-Agent": {"alice"}}, 200, "agent:alice"},
		{"/v1/x", http.Header{"Authorization": {"Bearer " + agentKey}, "X-Aios-Agent": {"bob"}}, 403, ""},
		{"/v1/x", http.Header{"X-Aios-Agent": {"alice"}}, 401, ""},
		{"/v1/x", bearer("aios_agent_0123456789abcdef_" + agentKey[len(agentKey)-43:]), 401, ""},
		{"/admin/usage", bearer(adminKey), 200, "admin:ops"},
		{"/admin/usage", bearer(agentKey), 403, ""},
		{"/admin/usage", http.Header{}, 401, ""},
	} {
		if code, body := do(on, tc.path, tc.hdr); code != tc.status || (tc.body != "" && body != tc.body) {
			t.Errorf("auth on, %s %v: %d %q, want %d %q", tc.path, tc.hdr, code, body, tc.status, tc.body)
		}
	}
	off := m.Authenticator(false, fail)(mux)
	for _, tc := range []struct {
		path   string
		hdr    http.Header
		status int
		body   string
	}{
		{"/v1/x", http.Header{"X-Aios-Agent": {"alice"}}, 200, "agent:alice"},
		{"/v1/x", http.Header{"X-Aios-Agent": {"stranger"}}, 200, "agent:stranger"},
		{"/v1/x", http.Header{}, 200, "none"},
		{"/admin/usage", http.Header{}, 401, ""},
		{"/admin/usage", http.Header{"X-Aios-Agent": {"alice"}}, 403, ""},
	} {
		if code, body := do(off, tc.path, tc.hdr); code != tc.status || (tc.body != "" && body != tc.body) {
			t.Errorf("auth off, %s %v: %d %q, want %d %q", tc.path, tc.hdr, code, body, tc.status, tc.body)
		}
	}
	// Local principals carry their registered groups.
	if p := must[Principal](t)(m.Local(ctx, "alice")); len(p.Groups) != 1 || p.Tenant != DefaultTenant {
		t.Fatalf("local %+v", p)
	}
}

// No permit, the built-in ones or an operator's, opens another tenant's namespaces.
func TestTenantWall(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "open.cedar"), `permit (principal, action, resource);`)
	m := open(t, StoreConfig{Path: filepath.Join(t.TempDir(), "a.db")}, newFakeClock(), dir)
	registerCast(t, m)
	alice := must[Principal](t)(m.Local(ctx, "alice"))
	for _, op := range nsOps {
		if r := must[Result](t)(m.Evaluate(ctx, alice, op.act, Namespace("erin"), op.c)); r.Effect != Deny {
			t.Errorf("%s on another tenant's namespace: %+v", op.name, r)
		}
		if r := must[Result](t)(m.Evaluate(ctx, alice, op.act, Namespace("carol"), op.c)); r.Effect == Deny {
			t.Errorf("%s in the tenant, opened by the operator: %+v", op.name, r)
		}
	}
}
