package upstream

import (
	"net/http"
	"net/url"
	"strings"

	"github.com/aios-go/aios/api"
)

// NormalizeBaseURL turns the forms users write for an OpenAI-compatible server into the
// API root paths are appended to: "http://host:8000", "http://host:8000/",
// "http://host:8000/v1" and "http://host:8000/v1/" all become "http://host:8000/v1/". A
// URL that already carries a path (a proxy prefix, Gemini's /v1beta/openai) is kept as
// written, because guessing there breaks such servers; only a bare host gets /v1. A
// missing scheme means http. who names the caller in error messages ("openai backend").
func NormalizeBaseURL(raw, who string) (string, error) {
	s := strings.TrimSpace(raw)
	if s == "" {
		return "", api.Errorf(api.CallerBadRequest, "%s: base URL is empty; give the server's address, e.g. http://localhost:8000/v1", who)
	}
	if !strings.Contains(s, "://") {
		s = "http://" + s
	}
	u, err := url.Parse(s)
	if err != nil {
		return "", api.Wrap(api.CallerBadRequest, err, "%s: base URL %q is not a URL", who, raw)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return "", api.Errorf(api.CallerBadRequest, "%s: base URL %q must use http or https", who, raw)
	}
	if u.Host == "" {
		return "", api.Errorf(api.CallerBadRequest, "%s: base URL %q has no host", who, raw)
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return "", api.Errorf(api.CallerBadRequest, "%s: base URL %q must not have a query or fragment", who, raw)
	}
	p := strings.TrimRight(u.Path, "/")
	if p == "" {
		p = "/v1"
	}
	u.Path, u.RawPath = p+"/", ""
	return u.String(), nil
}

// StatusKind is what an HTTP error status of an OpenAI-compatible server means: rate
// limits and overload are worth retrying after Retry-After, other server errors call for
// another backend, and client errors will fail anywhere.
func StatusKind(status int) api.Kind {
	switch {
	case status == http.StatusTooManyRequests:
		return api.BackendRateLimited
	case status == http.StatusServiceUnavailable:
		return api.BackendOverloaded
	case status >= 500:
		return api.BackendUnavailable
	case status >= 400:
		return api.BackendRejected
	}
	return api.BackendBadResponse
}
