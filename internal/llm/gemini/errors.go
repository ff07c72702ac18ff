package gemini

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
	"google.golang.org/genai"
)

// classify turns any failure of an upstream call into an *api.Error. ctx is the
// caller's context, rctx the request's (which also ends on the idle watchdog and Close).
func (c *Core) classify(ctx, rctx context.Context, f *upstream.Failure, err error) *api.Error {
	if e := upstream.ContextError(ctx, rctx, c.target()); e != nil {
		return e
	}
	// f holds the status and headers of an error response, recorded by the transport
	// for the request that carries it in its context.
	status, header, _ := f.Response()
	var ae genai.APIError
	if errors.As(err, &ae) {
		code := ae.Code
		if code == 0 {
			code = status
		}
		return c.statusError(code, ae.Status, ae.Message, ae.Details, header)
	}
	if status != 0 {
		return c.statusError(status, "", err.Error(), nil, header)
	}
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	if errors.As(err, &syn) || errors.As(err, &typ) || strings.Contains(err.Error(), "invalid stream chunk") {
		return api.Wrap(api.BackendBadResponse, err, "upstream %s sent malformed JSON", c.base)
	}
	return upstream.TransportError(err, c.base, "")
}

// statusError maps a Gemini error to a kind. RESOURCE_EXHAUSTED is the key's quota, to
// wait out; UNAVAILABLE is Google's capacity ("the model is overloaded"), for another
// core; an invalid key comes back as 400 INVALID_ARGUMENT.
func (c *Core) statusError(code int, rpcStatus, msg string, details []map[string]any, h http.Header) *api.Error {
	detail := fmt.Sprintf("upstream %s answered HTTP %d", c.base, code)
	if rpcStatus != "" {
		detail += " " + rpcStatus
	}
	if msg = strings.TrimSpace(msg); msg != "" {
		if len(msg) > 300 {
			msg = msg[:300] + "..."
		}
		detail += ": " + msg
	}
	var e *api.Error
	switch {
	case code == http.StatusTooManyRequests:
		e = api.Errorf(api.BackendRateLimited, "%s", detail)
	case code == http.StatusServiceUnavailable:
		e = api.Errorf(api.BackendOverloaded, "%s", detail)
	case code == http.StatusGatewayTimeout:
		e = api.Errorf(api.BackendTimeout, "%s", detail)
	case code >= 500:
		e = api.Errorf(api.BackendUnavailable, "%s", detail)
	case code == http.StatusUnauthorized || code == http.StatusForbidden || reason(details) == "API_KEY_INVALID":
		e = api.Errorf(api.BackendRejected, "%s (check api_key for gemini backend %q)", detail, c.cfg.Name)
	case code >= 400:
		e = api.Errorf(api.BackendRejected, "%s", detail)
	default:
		e = api.Errorf(api.BackendBadResponse, "%s", detail)
	}
	e.RetryAfter = retryDelay(details)
	if e.RetryAfter == 0 {
		e.RetryAfter = upstream.RetryAfter(h, time.Now())
	}
	return e
}

// reason is the ErrorInfo reason among a google.rpc error's details.
func reason(details []map[string]any) string {
	for _, d := range details {
		if t, _ := d["@type"].(string); strings.HasSuffix(t, "google.rpc.ErrorInfo") {
			r, _ := d["reason"].(string)
			return r
		}
	}
	return ""
}

// retryDelay reads google.rpc.RetryInfo, where Gemini says how long to wait out a quota
// ("retryDelay": "37s").
func retryDelay(details []map[string]any) time.Duration {
	for _, d := range details {
		if t, _ := d["@type"].(string); !strings.HasSuffix(t, "google.rpc.RetryInfo") {
			continue
		}
		s, _ := d["retryDelay"].(string)
		if v, err := time.ParseDuration(s); err == nil && v > 0 {
			return v
		}
	}
	return 0
}

// target names this core's upstream for upstream.ContextError.
func (c *Core) target() upstream.Target {
	return upstream.Target{Provider: "gemini", Name: c.cfg.Name, Base: c.base, Idle: c.cfg.IdleTimeout}
}
