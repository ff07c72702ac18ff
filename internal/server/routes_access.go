package server

import (
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/aios-go/aios/api"
	"github.com/aios-go/aios/internal/access"
)

// The access manager's side of the server (docs/security.md): authentication in front
// of every route, the admin key in front of the admin routes, and the routes that list
// and decide approvals, query and verify the audit log and manage agents and keys.

// accessError writes err in the shape the route's clients read: Anthropic's under
// /v1/messages, OpenAI's elsewhere under /v1, AIOS's {"detail"} otherwise.
func accessError(w http.ResponseWriter, r *http.Request, err error) {
	p := r.URL.Path
	switch {
	case p == "/v1/messages" || strings.HasPrefix(p, "/v1/messages/"):
		writeAnthropicError(w, err)
	case strings.HasPrefix(p, "/v1/"):
		writeOpenAIError(w, err)
	default:
		writeError(w, err)
	}
}

// exemptFromAuth are the routes served without a key: the liveness probe, and share
// links, whose unguessable token is the credential.
func exemptFromAuth(r *http.Request) bool {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return false
	}
	return r.URL.Path == "/status" || strings.HasPrefix(r.URL.Path, "/shared/")
}

// adminRoute says whether a path is the operator's: it needs an admin key.
func adminRoute(path string) bool {
	return strings.HasPrefix(path, "/admin/") || path == "/metrics" ||
		path == "/ui" || strings.HasPrefix(path, "/ui/") || strings.HasPrefix(path, "/agents/")
}

// withAccess puts authentication in front of h when the access manager is on. An
// agent's key names the caller: the X-AIOS-Agent header is set from it (the
// Authenticator refuses one naming another agent), so every route that reads the
// header acts for the key's agent.
func (s *Server) withAccess(h http.Handler) http.Handler {
	m := s.opts.Access
	if m == nil {
		return h
	}
	read := m.Guard(access.AdminRead, accessError)(h)
	write := m.Guard(access.AdminWrite, accessError)(h)
	inner := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, _ := access.PrincipalFrom(r.Context())
		if p.IsAgent() {
			r.Header.Set(api.HeaderAgent, p.Name)
		}
		if err := uiCrossSite(r); err != nil {
			accessError(w, r, err)
			return
		}
		switch {
		case !adminRoute(r.URL.Path):
			h.ServeHTTP(w, r)
		case r.Method == http.MethodGet || r.Method == http.MethodHead || uiSignInPath(r.URL.Path):
			read.ServeHTTP(w, r)
		default:
			write.ServeHTTP(w, r)
		}
	})
	authed := s.withUISession(inner, m.Authenticator(true, accessError)(inner))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if exemptFromAuth(r) || uiPublic(r) {
			h.ServeHTTP(w, r)
			return
		}
		authed.ServeHTTP(w, r)
	})
}

// callerConflict refuses a request whose body names an agent other than the one its
// key belongs to: an agent acts only as itself.
func callerConflict(r *http.Request, named string) error {
	p, ok := access.PrincipalFrom(r.Context())
	if !ok || !p.IsAgent() || named == "" || named == p.Name {
		return nil
	}
	return api.Errorf(api.PolicyDenied, "this key belongs to agent %s, but the request names agent %s; an agent acts only as itself", p.Name, named)
}

// routesAccess serves approvals, the audit log, and agents and keys.
func (s *Server) routesAccess() {
	m := s.opts.Access
	if m == nil {
		off := func(w http.ResponseWriter, r *http.Request) {
			accessError(w, r, api.Errorf(api.PolicyNotEnabled, "the access manager is off; set access.auth: true (docs/security.md)"))
		}
		for _, p := range []string{"/v1/approvals", "/v1/approvals/{id}", "/admin/audit", "/admin/audit/verify",
			"/admin/agents", "/admin/agents/{name}", "/admin/agents/{name}/keys", "/admin/keys/{id}/rotate", "/admin/keys/{id}",
			"/admin/quotas", "/admin/quotas/{kind}/{name}", "/admin/quotas/{kind}/{name}/reset"} {
			s.mux.HandleFunc(p, off)
		}
		return
	}
	decide := func(h http.HandlerFunc) http.Handler { return m.Guard(access.ApprovalDecide, accessError)(h) }
	s.mux.Handle("GET /v1/approvals", decide(func(w http.ResponseWriter, r *http.Request) {
		st := access.ApprovalStatus(r.URL.Query().Get("status"))
		if st == "" {
			st = access.Pending
		}
		limit, _ := strconv.Atoi(r.URL.Query().Get("limit"))
		aps, err := m.Approvals.List(r.Context(), st, limit)
		if err != nil {
			writeOpenAIError(w, err)
			return
		}
		if aps == nil {
			aps = []access.Approval{}
		}
		writeJSON(w, http.StatusOK, map[string]any{"object": "list", "data": aps})
	}))
	s.mux.Handle("GET /v1/approvals/{id}", decide(func(w http.ResponseWriter, r *http.Request) {
		ap, err := m.Approvals.Get(r.Context(), r.PathValue("id"))
		if err != nil {
			writeOpenAIError(w, err)
			return
		}
		writeJSON(w, http.StatusOK, ap)
	}))
	s.mux.Handle("POST /v1/approvals/{id}", decide(func(w http.ResponseWriter, r *http.Request) {
		var body struct {
			Approve *bool  `json:"approve"`
			Reason  string `json:"reason"`
		}
		if err := s.decodeBody(w, r, &body); err != nil {
			writeOpenAIError(w, err)
			return
		}
		if body.Approve == nil {
			writeOpenAIError(w, api.Errorf(api.CallerBadRequest, "approve is required: true or false"))
			return
		}
		p, _ := access.PrincipalFrom(r.Context())
		ap, err := m.Approvals.Decide(r.Context(), r.PathValue("id"), *body.Approve, p.String(), body.Reason)
		if err != nil {
			writeOpenAIError(w, err)
			return
		}
		writeJSON(w, http.StatusOK, ap)
	}))

	s.mux.HandleFunc("GET /admin/audit", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		f := access.AuditFilter{Who: q.Get("who"), Action: q.Get("action"), Resource: q.Get("resource"),
			Decision: q.Get("decision"), Newest: q.Get("newest") == "true"}
		f.AfterSeq, _ = strconv.ParseInt(q.Get("after"), 10, 64)
		f.Limit, _ = strconv.Atoi(q.Get("limit"))
		for _, t := range []struct {
			key string
			to  *time.Time
		}{{"since", &f.Since}, {"until", &f.Until}} {
			if v := q.Get(t.key); v != "" {
				ts, err := time.Parse(time.RFC3339, v)
				if err != nil {
					writeError(w, api.Errorf(api.CallerBadRequest, "%s %q: expected an RFC 3339 time", t.key, v))
					return
				}
				*t.to = ts
			}
		}
		es, err := m.Audit.Query(r.Context(), f)
		if err != nil {
			writeError(w, err)
			return
		}
		if es == nil {
			es = []access.Entry{}
		}
		writeJSON(w, http.StatusOK, map[string]any{"entries": es})
	})
	s.mux.HandleFunc("GET /admin/audit/verify", func(w http.ResponseWriter, r *http.Request) {
		n, err := m.Audit.Verify(r.Context())
		if err != nil {
			writeJSON(w, http.StatusConflict, map[string]any{"ok": false, "entries": n, "error": err.Error()})
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"ok": true, "entries": n})
	})

	// keyIssued is the answer that shows a key: the only time it is shown.
	type keyIssued struct {
		Key  string         `json:"key"`
		Info access.KeyInfo `json:"info"`
	}
	s.mux.HandleFunc("POST /admin/agents", func(w http.ResponseWriter, r *http.Request) {
		var body struct {
			Name   string   `json:"name"`
			Tenant string   `json:"tenant"`
			Groups []string `json:"groups"`
		}
		if err := s.decodeBody(w, r, &body); err != nil {
			writeError(w, err)
			return
		}
		if body.Tenant != "" && body.Tenant != access.DefaultTenant {
			if _, err := m.Directory.AddTenant(r.Context(), body.Tenant); err != nil && api.KindOf(err) != api.CallerBadRequest {
				writeError(w, err)
				return
			}
		}
		a, err := m.Directory.AddAgent(r.Context(), access.Agent{Name: body.Name, Tenant: body.Tenant, Groups: body.Groups})
		if err != nil {
			writeError(w, err)
			return
		}
		key, info, err := m.Keys.Issue(r.Context(), access.KindAgent, a.Name)
		if err != nil {
			writeError(w, err)
			return
		}
		writeJSON(w, http.StatusCreated, map[string]any{"agent": a, "key": key, "info": info})
	})
	s.mux.HandleFunc("GET /admin/agents", func(w http.ResponseWriter, r *http.Request) {
		as, err := m.Directory.Agents(r.Context(), r.URL.Query().Get("tenant"))
		if err != nil {
			writeError(w, err)
			return
		}
		if as == nil {
			as = []access.Agent{}
		}
		writeJSON(w, http.StatusOK, map[string]any{"agents": as})
	})
	s.mux.HandleFunc("PATCH /admin/agents/{name}", func(w http.ResponseWriter, r *http.Request) {
		var body struct {
			Groups   *[]string `json:"groups"`
			Disabled *bool     `json:"disabled"`
		}
		if err := s.decodeBody(w, r, &body); err != nil {
			writeError(w, err)
			return
		}
		if body.Groups == nil && body.Disabled == nil {
			writeError(w, api.Errorf(api.CallerBadRequest, "nothing to change: send groups, disabled or both"))
			return
		}
		name := r.PathValue("name")
		a, err := m.Directory.Agent(r.Context(), name)
		if err == nil && body.Groups != nil {
			a, err = m.Directory.SetGroups(r.Context(), name, *body.Groups)
		}
		if err == nil && body.Disabled != nil {
			a, err = m.Directory.SetDisabled(r.Context(), name, *body.Disabled)
		}
		if err != nil {
			writeError(w, err)
			return
		}
		writeJSON(w, http.StatusOK, a)
	})
	s.mux.HandleFunc("POST /admin/agents/{name}/keys", func(w http.ResponseWriter, r *http.Request) {
		key, info, err := m.Keys.Issue(r.Context(), access.KindAgent, r.PathValue("name"))
		if err != nil {
			writeError(w, err)
			return
		}
		writeJSON(w, http.StatusCreated, keyIssued{key, info})
	})
	s.mux.HandleFunc("GET /admin/agents/{name}/keys", func(w http.ResponseWriter, r *http.Request) {
		ks, err := m.Keys.List(r.Context(), access.KindAgent, r.PathValue("name"))
		if err != nil {
			writeError(w, err)
			return
		}
		if ks == nil {
			ks = []access.KeyInfo{}
		}
		writeJSON(w, http.StatusOK, map[string]any{"keys": ks})
	})
	s.mux.HandleFunc("POST /admin/keys/{id}/rotate", func(w http.ResponseWriter, r *http.Request) {
		var grace time.Duration
		if v := r.URL.Query().Get("grace"); v != "" {
			d, err := time.ParseDuration(v)
			if err != nil || d < 0 {
				writeError(w, api.Errorf(api.CallerBadRequest, "grace %q: expected a duration such as 10m", v))
				return
			}
			grace = d
		}
		key, info, err := m.Keys.Rotate(r.Context(), r.PathValue("id"), grace)
		if err != nil {
			writeError(w, err)
			return
		}
		writeJSON(w, http.StatusCreated, keyIssued{key, info})
	})
	s.mux.HandleFunc("DELETE /admin/keys/{id}", func(w http.ResponseWriter, r *http.Request) {
		if err := m.Keys.Revoke(r.Context(), r.PathValue("id")); err != nil {
			writeError(w, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})

	s.routesQuotas(m)
}

// routesQuotas serves the quotas: every scope's limits and usage, set one, reset one.
func (s *Server) routesQuotas(m *access.Manager) {
	s.mux.HandleFunc("GET /admin/quotas", func(w http.ResponseWriter, r *http.Request) {
		us := []access.Usage{}
		for _, sc := range m.Quotas.Scopes() {
			us = append(us, m.Quotas.UsageOf(sc))
		}
		writeJSON(w, http.StatusOK, map[string]any{"quotas": us})
	})
	// scope reads {kind}/{name} and checks that the agent or tenant is registered.
	scope := func(r *http.Request) (access.Scope, error) {
		sc := access.Scope{Kind: access.ScopeKind(r.PathValue("kind")), Name: r.PathValue("name")}
		switch sc.Kind {
		case access.ScopeAgent:
			if _, err := m.Directory.Agent(r.Context(), sc.Name); err != nil {
				return sc, err
			}
		case access.ScopeTenant:
			ts, err := m.Directory.Tenants(r.Context())
			if err != nil {
				return sc, err
			}
			if !slices.ContainsFunc(ts, func(t access.Tenant) bool { return t.Name == sc.Name }) {
				return sc, api.Errorf(api.CallerNotFound, "no tenant %s is registered", sc.Name)
			}
		default:
			return sc, api.Errorf(api.CallerNotFound, "a quota is for an agent or a tenant (/admin/quotas/agent/NAME, /admin/quotas/tenant/NAME), not %q", sc.Kind)
		}
		return sc, nil
	}
	s.mux.HandleFunc("GET /admin/quotas/{kind}/{name}", func(w http.ResponseWriter, r *http.Request) {
		sc, err := scope(r)
		if err != nil {
			writeError(w, err)
			return
		}
		writeJSON(w, http.StatusOK, m.Quotas.UsageOf(sc))
	})
	s.mux.HandleFunc("PUT /admin/quotas/{kind}/{name}", func(w http.ResponseWriter, r *http.Request) {
		sc, err := scope(r)
		if err != nil {
			writeError(w, err)
			return
		}
		var l access.Limits
		if err := s.decodeBody(w, r, &l); err != nil {
			writeError(w, err)
			return
		}
		if err := m.Quotas.Set(r.Context(), sc, l); err != nil {
			writeError(w, err)
			return
		}
		writeJSON(w, http.StatusOK, m.Quotas.UsageOf(sc))
	})
	s.mux.HandleFunc("POST /admin/quotas/{kind}/{name}/reset", func(w http.ResponseWriter, r *http.Request) {
		sc, err := scope(r)
		if err != nil {
			writeError(w, err)
			return
		}
		if err := m.Quotas.Reset(r.Context(), sc); err != nil {
			writeError(w, err)
			return
		}
		writeJSON(w, http.StatusOK, m.Quotas.UsageOf(sc))
	})
}
