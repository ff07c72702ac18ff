package anthropic

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/aios-go/aios/api"
	"github.com/aios-go/aios/internal/llm/upstream"
	"github.com/anthropics/anthropic-sdk-go/v2"
)

// classify turns any failure of an upstream call into an *api.Error. ctx is the
// caller's context, rctx the request's (which also ends on the idle watchdog and Close).
// f, when not nil, holds the error response captured before the SDK parsed it: a proxy
// in front of Anthropic may answer in HTML, which the SDK cannot read, and the status
// and Retry-After must survive that.
func (c *Core) classify(ctx, rctx context.Context, f *upstream.Failure, err error) *api.Error {
	if e := upstream.ContextError(ctx, rctx, c.target()); e != nil {
		return e
	}
	if status, h, body := f.Response(); status != 0 {
		typ, msg := bodyError(body)
		return c.statusError(status, typ, msg, h)
	}
	var ae *anthropic.Error
	if errors.As(err, &ae) {
		var h http.Header
		if ae.Response != nil {
			h = ae.Response.Header
		}
		typ, msg := string(ae.Type()), ae.Message
		if typ == "" {
			typ, msg = bodyError([]byte(ae.RawJSON()))
		}
		if ae.StatusCode >= 400 {
			return c.statusError(ae.StatusCode, typ, msg, h)
		}
		// An error event inside a 200 stream: the type says what went wrong.
		return c.streamError(typ, msg)
	}
	if s, ok := strings.CutPrefix(err.Error(), "received error while streaming: "); ok {
		typ, msg := bodyError([]byte(s))
		return c.streamError(typ, msg)
	}
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	if errors.As(err, &syn) || errors.As(err, &typ) {
		return api.Wrap(api.BackendBadResponse, err, "upstream %s sent malformed JSON", c.base)
	}
	return upstream.TransportError(err, c.base, "")
}

// statusError maps an HTTP error to a kind. Anthropic answers 529 when its capacity is
// short (overloaded_error) and 429 when the key's own limit is hit: the first calls for
// another core, the second for waiting Retry-After.
func (c *Core) statusError(status int, typ, msg string, h http.Header) *api.Error {
	detail := fmt.Sprintf("upstream %s answered HTTP %d", c.base, status)
	if typ != "" {
		detail += " " + typ
	}
	if msg != "" {
		detail += ": " + msg
	}
	var e *api.Error
	switch {
	case status == http.StatusTooManyRequests:
		e = api.Errorf(api.BackendRateLimited, "%s", detail)
	case status == 529 || status == http.StatusServiceUnavailable:
		e = api.Errorf(api.BackendOverloaded, "%s", detail)
	case status == http.StatusGatewayTimeout:
		e = api.Errorf(api.BackendTimeout, "%s", detail)
	case status >= 500:
		e = api.Errorf(api.BackendUnavailable, "%s", detail)
	case status == http.StatusUnauthorized || status == http.StatusForbidden:
		e = api.Errorf(api.BackendRejected, "%s (check api_key for anthropic backend %q)", detail, c.cfg.Name)
	case status == http.StatusBadRequest && strings.Contains(msg, "prefill"):
		e = api.Errorf(api.BackendRejected, "%s (this model cannot continue a partial answer: set resume: false for backend %q)", detail, c.cfg.Name)
	case status >= 400:
		e = api.Errorf(api.BackendRejected, "%s", detail)
	default:
		e = api.Errorf(api.BackendBadResponse, "%s", detail)
	}
	e.RetryAfter = upstream.RetryAfter(h, time.Now())
	return e
}

// streamError maps an error event sent after the stream began.
func (c *Core) streamError(typ, msg string) *api.Error {
	status := map[string]int{
		"overloaded_error": 529, "rate_limit_error": 429, "api_error": 500, "timeout_error": 504,
		"invalid_request_error": 400, "authentication_error": 401, "permission_error": 403,
		"not_found_error": 404, "request_too_large": 413, "billing_error": 402,
	}[typ]
	if status == 0 {
		return api.Errorf(api.BackendUnavailable, "upstream %s failed mid-stream: %s %s", c.base, typ, msg)
	}
	return c.statusError(status, typ, "error in stream: "+msg, nil)
}

// bodyError reads Anthropic's {"type":"error","error":{"type","message"}}, or returns
// the start of whatever else came (a proxy's page).
func bodyError(b []byte) (typ, msg string) {
	var body struct {
		Error struct {
			Type    string `json:"type"`
			Message string `json:"message"`
		} `json:"error"`
	}
	if json.Unmarshal(b, &body) == nil && (body.Error.Type != "" || body.Error.Message != "") {
		return body.Error.Type, body.Error.Message
	}
	s := strings.TrimSpace(string(b))
	if len(s) > 300 {
		s = s[:300] + "..."
	}
	return "", s
}

// target names this core's upstream for upstream.ContextError.
func (c *Core) target() upstream.Target {
	return upstream.Target{Provider: "anthropic", Name: c.cfg.Name, Base: c.base, Idle: c.cfg.IdleTimeout}
}
