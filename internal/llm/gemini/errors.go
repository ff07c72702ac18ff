package gemini

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/aios-go/aios/api"
	"google.golang.org/genai"
)

// httpFailure is the status and headers of an error response, recorded by the transport
// for the request that carries it in its context.
type httpFailure struct {
	mu     sync.Mutex
	status int
	header http.Header
}

type failureKey struct{}

type captureTransport struct{ inner http.RoundTripper }

func (t captureTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	res, err := t.inner.RoundTrip(req)
	if err == nil && res.StatusCode >= 400 {
		if f, ok := req.Context().Value(failureKey{}).(*httpFailure); ok {
			f.mu.Lock()
			f.status, f.header = res.StatusCode, res.Header.Clone()
			f.mu.Unlock()
		}
	}
	return res, err
}

// classify turns any failure of an upstream call into an *api.Error. ctx is the
// caller's context, rctx the request's (which also ends on the idle watchdog and Close).
func (c *Core) classify(ctx, rctx context.Context, f *httpFailure, err error) *api.Error {
	if ctx.Err() != nil {
		cause := context.Cause(ctx)
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return api.Wrap(api.PolicyTimeout, cause, "the call's deadline passed while %s was answering", c.base)
		}
		return api.Wrap(api.CallerCancelled, cause, "call to %s cancelled", c.base)
	}
	switch context.Cause(rctx) {
	case errIdle:
		return api.Wrap(api.BackendTimeout, errIdle, "upstream %s sent nothing for %v", c.base, c.cfg.IdleTimeout)
	case errClosed:
		return api.Wrap(api.KernelShuttingDown, errClosed, "gemini backend %q closed during the call", c.cfg.Name)
	}
	var header http.Header
	status := 0
	if f != nil {
		f.mu.Lock()
		status, header = f.status, f.header
		f.mu.Unlock()
	}
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
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return api.Wrap(api.BackendTimeout, err, "upstream %s timed out", c.base)
	}
	if errors.Is(err, syscall.ECONNREFUSED) {
		return api.Wrap(api.BackendUnavailable, err, "cannot connect to %s", c.base)
	}
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, io.EOF) {
		return api.Wrap(api.BackendUnavailable, err, "upstream %s: stream ended before the response was complete: connection dropped", c.base)
	}
	return api.Wrap(api.BackendUnavailable, err, "request to %s failed", c.base)
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
		e.RetryAfter = retryAfter(h, time.Now())
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

func retryAfter(h http.Header, now time.Time) time.Duration {
	if h == nil {
		return 0
	}
	v := strings.TrimSpace(h.Get("Retry-After"))
	if v == "" {
		return 0
	}
	if s, err := strconv.ParseFloat(v, 64); err == nil {
		return max(time.Duration(s*float64(time.Second)), 0)
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(t.Sub(now), 0)
	}
	return 0
}
