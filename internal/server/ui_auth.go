package server

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"io/fs"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/aios-go/aios/api"
	"github.com/aios-go/aios/internal/access"
)

// Signing in to the dashboard from a browser. With access.auth on, /ui's API needs an
// admin key, but a page load and an EventSource cannot send an Authorization header.
// So the page asks for the key once and posts it to POST /ui/login (as a Bearer header,
// which the server authenticates like any other request); the answer sets a cookie
// that the server accepts in place of the key, and only on /ui paths.
//
// The cookie carries a session id, not the key. The key would then sit in the
// browser's cookie store (on disk, in profile backups and synced profiles) and travel
// with every request for as long as it is valid, which for an admin key is until
// someone revokes it; a session id is worth nothing outside this kernel, ends when
// its holder signs out (on the server, not only in that browser) and expires on its
// own. Sessions live in memory: a restart signs every browser out, and one kernel's
// session is unknown to another sharing the database, which is the safe way round.
const (
	// uiCookieName is the session cookie's name.
	uiCookieName = "aios_ui_session"
	// uiHeader must be sent, as "1", with every state-changing /ui request. A plain
	// HTML form posted from another site cannot set a header, and a script on another
	// site can only through CORS, whose preflight this server never grants; so a
	// request that carries it was made by a page of this origin, not by a cross-site
	// form riding on the cookie. SameSite=Strict already keeps the cookie off
	// cross-site requests; the header does not depend on the browser honouring it.
	uiHeader = "X-AIOS-UI"
	// uiSessionTTL is how long a sign-in lasts, however active the page is: an
	// unattended browser does not hold the kernel's admin rights for days.
	uiSessionTTL = 12 * time.Hour
	// uiMaxSessions bounds the sessions kept; signing in past it ends the one that
	// would expire first.
	uiMaxSessions = 1024
)

// uiSessions are the browsers signed in to the dashboard, by the SHA-256 of their
// session id: the map holds no usable id, and a lookup by hash compares no secret byte
// by byte.
type uiSessions struct {
	m   *access.Manager
	now func() time.Time

	mu       sync.Mutex
	sessions map[[sha256.Size]byte]uiSession
}

type uiSession struct {
	// key is the admin key that signed in. Every request re-authenticates it, so a key
	// revoked, or rotated past its grace, ends its sessions at once.
	key     string
	expires time.Time
}

func newUISessions(m *access.Manager) *uiSessions {
	return &uiSessions{m: m, now: time.Now, sessions: map[[sha256.Size]byte]uiSession{}}
}

// start opens a session for key, which the caller has authenticated as an admin's,
// and returns its id and when it ends.
func (u *uiSessions) start(key string) (string, time.Time, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", time.Time{}, api.Wrap(api.KernelInternal, err, "draw a dashboard session id")
	}
	token := base64.RawURLEncoding.EncodeToString(b)
	now := u.now()
	expires := now.Add(uiSessionTTL)
	u.mu.Lock()
	defer u.mu.Unlock()
	if len(u.sessions) >= uiMaxSessions {
		var first [sha256.Size]byte
		var firstAt time.Time
		for h, s := range u.sessions {
			if !s.expires.After(now) {
				delete(u.sessions, h)
				continue
			}
			if firstAt.IsZero() || s.expires.Before(firstAt) {
				first, firstAt = h, s.expires
			}
		}
		if len(u.sessions) >= uiMaxSessions {
			delete(u.sessions, first)
		}
	}
	u.sessions[sha256.Sum256([]byte(token))] = uiSession{key: key, expires: expires}
	return token, expires, nil
}

// end closes the session token names, if any.
func (u *uiSessions) end(token string) {
	u.mu.Lock()
	delete(u.sessions, sha256.Sum256([]byte(token)))
	u.mu.Unlock()
}

// uiSessionKey marks a request's context as authenticated by a dashboard session; its
// value is when the session ends.
type uiSessionKey struct{}

// authenticate returns ctx carrying the principal of session token, or
// caller_unauthorized when the session does not exist, has expired, or its key no
// longer authenticates (revoked, its owner removed).
func (u *uiSessions) authenticate(ctx context.Context, token string) (context.Context, error) {
	h := sha256.Sum256([]byte(token))
	u.mu.Lock()
	s, ok := u.sessions[h]
	if ok && !s.expires.After(u.now()) {
		delete(u.sessions, h)
		ok = false
	}
	u.mu.Unlock()
	if !ok {
		return ctx, api.Errorf(api.CallerUnauthorized, "the dashboard session has ended (signed out, expired, or the kernel restarted): sign in again with an admin key")
	}
	p, err := u.m.Authenticate(ctx, http.Header{"Authorization": {"Bearer " + s.key}})
	if err == nil && p.Kind != access.KindAdmin {
		err = api.Errorf(api.PolicyDenied, "the dashboard session's key is not an admin key")
	}
	if err != nil {
		u.end(token)
		return ctx, err
	}
	return context.WithValue(access.WithPrincipal(ctx, p), uiSessionKey{}, s.expires), nil
}

// uiPath says whether path is the dashboard's: the only paths where its session cookie
// stands for a key.
func uiPath(path string) bool { return path == "/ui" || strings.HasPrefix(path, "/ui/") }

// uiSignInPath says whether path signs in or out: those need admin.read, not
// admin.write, though they are posts, so any admin who may look at the dashboard may
// sign in to it.
func uiSignInPath(path string) bool { return path == "/ui/login" || path == "/ui/logout" }

// uiPublicFiles are the paths of the page, its script and its style. They are served
// without a key, as the page must load to ask for one; they are the same files for
// everyone, built into the binary, and carry no data of the kernel's.
var uiPublicFiles = func() map[string]bool {
	out := map[string]bool{"/ui": true, "/ui/": true}
	err := fs.WalkDir(uiFiles, "ui", func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			out["/"+p] = true
		}
		return err
	})
	if err != nil {
		panic(err) // the folder is embedded at build time
	}
	return out
}()

// uiPublic says whether r fetches one of the dashboard's own files.
func uiPublic(r *http.Request) bool {
	return (r.Method == http.MethodGet || r.Method == http.MethodHead) && uiPublicFiles[r.URL.Path]
}

// carriesKey says whether the request sends an API key header; a key beats the cookie.
func carriesKey(h http.Header) bool {
	return len(h.Values("Authorization")) > 0 || len(h.Values(access.HeaderAPIKey)) > 0
}

// uiCookie is the session cookie: HttpOnly (no script of the page, or injected into
// it, can read it), SameSite=Strict (never sent with a request another site starts),
// Path=/ui (the browser sends it nowhere else; the server honours it nowhere else
// either), and Secure when the browser reached the kernel over TLS, directly or
// through a proxy that says so. Trusting X-Forwarded-Proto here is safe: a forged one
// can only make the cookie stricter. maxAge < 0 deletes it.
func uiCookie(r *http.Request, value string, maxAge int) *http.Cookie {
	return &http.Cookie{
		Name: uiCookieName, Value: value, Path: "/ui", MaxAge: maxAge,
		HttpOnly: true, SameSite: http.SameSiteStrictMode,
		Secure: r.TLS != nil || strings.EqualFold(r.Header.Get("X-Forwarded-Proto"), "https"),
	}
}

// uiSessionInfo is GET /ui/api/session's answer: whether the kernel asks for keys, who
// the page acts as, and, when a session cookie signed it in, until when.
type uiSessionInfo struct {
	Auth      bool      `json:"auth"`
	Principal string    `json:"principal,omitempty"`
	Session   bool      `json:"session"`
	Expires   time.Time `json:"expires,omitzero"`
}

// routesUIAuth serves the sign-in: POST /ui/login, POST /ui/logout and GET
// /ui/api/session. By the time a handler runs, withAccess has authenticated the
// request (by key, or by session cookie) and checked the custom header on posts.
func (s *Server) routesUIAuth() {
	m := s.opts.Access
	if m != nil {
		s.ui = newUISessions(m)
	}
	s.mux.HandleFunc("GET /ui/api/session", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		info := uiSessionInfo{Auth: m != nil}
		if p, ok := access.PrincipalFrom(r.Context()); ok && m != nil {
			info.Principal = p.String()
		}
		if exp, ok := r.Context().Value(uiSessionKey{}).(time.Time); ok {
			info.Session, info.Expires = true, exp
		}
		writeJSON(w, http.StatusOK, info)
	})
	s.mux.HandleFunc("POST /ui/login", func(w http.ResponseWriter, r *http.Request) {
		if m == nil {
			writeError(w, api.Errorf(api.PolicyNotEnabled, "the access manager is off (access.auth: false): the dashboard needs no sign-in"))
			return
		}
		// The key comes as a header, so the request was authenticated as every other
		// is; a request that came in on a session cookie has no key to start another.
		key, err := access.KeyFromHeaders(r.Header)
		if err != nil {
			writeError(w, err)
			return
		}
		p, _ := access.PrincipalFrom(r.Context())
		if p.Kind != access.KindAdmin {
			writeError(w, api.Errorf(api.PolicyDenied, "%s cannot sign in to the dashboard: it takes an admin key (aios_admin_…)", p))
			return
		}
		token, expires, err := s.ui.start(key)
		if err != nil {
			writeError(w, err)
			return
		}
		http.SetCookie(w, uiCookie(r, token, int(uiSessionTTL/time.Second)))
		w.Header().Set("Cache-Control", "no-store")
		writeJSON(w, http.StatusOK, uiSessionInfo{Auth: true, Principal: p.String(), Session: true, Expires: expires})
	})
	s.mux.HandleFunc("POST /ui/logout", func(w http.ResponseWriter, r *http.Request) {
		if m == nil {
			writeError(w, api.Errorf(api.PolicyNotEnabled, "the access manager is off (access.auth: false): the dashboard needs no sign-in"))
			return
		}
		if c, err := r.Cookie(uiCookieName); err == nil {
			s.ui.end(c.Value)
		}
		http.SetCookie(w, uiCookie(r, "", -1))
		w.WriteHeader(http.StatusNoContent)
	})
}

// withUISession sends a /ui request that carries the session cookie and no key to
// inner, authenticated as the session's admin, and every other request to next (which
// authenticates by key). A cookie whose session has ended is cleared in the browser
// along with the 401.
func (s *Server) withUISession(inner, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.ui == nil || !uiPath(r.URL.Path) || carriesKey(r.Header) {
			next.ServeHTTP(w, r)
			return
		}
		c, err := r.Cookie(uiCookieName)
		if err != nil {
			next.ServeHTTP(w, r)
			return
		}
		ctx, err := s.ui.authenticate(r.Context(), c.Value)
		if err != nil {
			http.SetCookie(w, uiCookie(r, "", -1))
			accessError(w, r, err)
			return
		}
		inner.ServeHTTP(w, r.WithContext(ctx))
	})
}

// uiCrossSite refuses a state-changing /ui request without the dashboard's header
// (uiHeader): see there for why.
func uiCrossSite(r *http.Request) error {
	if !uiPath(r.URL.Path) || r.Method == http.MethodGet || r.Method == http.MethodHead || r.Header.Get(uiHeader) == "1" {
		return nil
	}
	return api.Errorf(api.PolicyDenied, "a dashboard request that changes something must carry the header %s: 1 (the dashboard's page sends it; a form posted from another site cannot)", uiHeader)
}
