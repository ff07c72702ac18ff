package access

import (
	"net/http"

	"github.com/aios-go/aios/api"
)

// HeaderAgent is the header that names the calling agent (api.HeaderAgent).
const HeaderAgent = api.HeaderAgent

// ErrorWriter writes err, an *api.Error, in the shape the route's clients read
// (OpenAI's, Anthropic's or AIOS's): the server owns the shapes.
type ErrorWriter func(w http.ResponseWriter, r *http.Request, err error)

// Authenticator returns middleware that puts the caller's Principal in the request's
// context (WithPrincipal). With authentication on, every request must carry a valid
// key, and an agent's key must match X-AIOS-Agent when that is sent too. With it off,
// the principal is the X-AIOS-Agent agent on its word (Local); a request without the
// header gets no principal, and the handler names the agent as it does today.
func (m *Manager) Authenticator(enabled bool, fail ErrorWriter) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			ctx := r.Context()
			if enabled {
				p, err := m.Authenticate(ctx, r.Header)
				if err != nil {
					fail(w, r, err)
					return
				}
				if name := r.Header.Get(HeaderAgent); p.IsAgent() && name != "" && name != p.Name {
					fail(w, r, api.Errorf(api.PolicyDenied, "this key belongs to agent %s, but %s names %s; an agent acts only as itself", p.Name, HeaderAgent, name))
					return
				}
				next.ServeHTTP(w, r.WithContext(WithPrincipal(ctx, p)))
				return
			}
			if name := r.Header.Get(HeaderAgent); name != "" {
				p, err := m.Local(ctx, name)
				if err != nil {
					fail(w, r, err)
					return
				}
				r = r.WithContext(WithPrincipal(ctx, p))
			}
			next.ServeHTTP(w, r)
		})
	}
}

// Guard returns middleware that passes a route only when the principal in the request's
// context may perform act on it (Route(r.URL.Path)): for the admin API, act is
// AdminRead for GET and AdminWrite otherwise, and ApprovalDecide for deciding
// approvals. Without a principal the request is unauthorized.
func (m *Manager) Guard(act Action, fail ErrorWriter) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			p, ok := PrincipalFrom(r.Context())
			if !ok {
				fail(w, r, unauthorized("this route needs an admin key: send \"Authorization: Bearer aios_admin_…\""))
				return
			}
			d, err := m.Check(r.Context(), p, act, Route(r.URL.Path), Context{})
			if err != nil {
				fail(w, r, err)
				return
			}
			defer d.Release(0)
			next.ServeHTTP(w, r)
		})
	}
}
