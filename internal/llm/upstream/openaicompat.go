package upstream

import (
	"encoding/json"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

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

// OpenAIRetryAfter reads how long an OpenAI-compatible upstream asked us to wait:
// OpenAI's Retry-After-Ms first, then Retry-After in seconds or as an HTTP date. Zero
// when absent or unparsable.
func OpenAIRetryAfter(h http.Header, now time.Time) time.Duration {
	if v := h.Get("Retry-After-Ms"); v != "" {
		if ms, err := strconv.ParseFloat(v, 64); err == nil && ms > 0 && ms < math.MaxInt64/float64(time.Millisecond) {
			return time.Duration(ms * float64(time.Millisecond))
		}
	}
	return RetryAfter(h, now)
}

// ErrorMessage digs the human message out of an error body. OpenAI nests it under
// "error", Ollama makes "error" a string, older vLLM puts "message" at the top level,
// FastAPI validation errors use "detail", and proxies answer plain text or HTML, which is
// shown trimmed.
func ErrorMessage(b []byte) string {
	var body struct {
		Error   json.RawMessage `json:"error"`
		Message string          `json:"message"`
		Detail  json.RawMessage `json:"detail"`
	}
	if json.Unmarshal(b, &body) == nil {
		var s string
		var nested struct {
			Message string `json:"message"`
		}
		switch {
		case json.Unmarshal(body.Error, &nested) == nil && nested.Message != "":
			return nested.Message
		case json.Unmarshal(body.Error, &s) == nil && s != "":
			return s
		case body.Message != "":
			return body.Message
		case json.Unmarshal(body.Detail, &s) == nil && s != "":
			return s
		case len(body.Detail) > 0:
			return Truncate(string(body.Detail), 300)
		}
	}
	return Truncate(strings.TrimSpace(string(b)), 300)
}

// Truncate cuts s to n bytes, marking the cut.
func Truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
