package anthropic

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/aios-go/aios/api"
	"github.com/anthropics/anthropic-sdk-go/v2"
)

// httpFailure is an error response as it came off the wire, captured before the SDK
// parses it: a proxy in front of Anthropic may answer in HTML, which the SDK cannot
// read, and the status and Retry-After must survive that.
type httpFailure struct {
	status int
	header http.Header
	body   []byte
}

func capture(f *httpFailure) func(*http.Request, func(*http.Request) (*http.Response, error)) (*http.Response, error) {
	return func(req *http.Request, next func(*http.Request) (*http.Response, error)) (*http.Response, error) {
		res, err := next(req)
		if err != nil || res.StatusCode < 400 {
			return res, err
		}
		b, _ := io.ReadAll(io.LimitReader(res.Body, 64<<10))
		_ = res.Body.Close()
		res.Body = io.NopCloser(bytes.NewReader(b))
		*f = httpFailure{status: res.StatusCode, header: res.Header.Clone(), body: b}
		return res, nil
	}
}

// classify turns any failure of an upstream call into an *api.Error. ctx is the
// caller's context, rctx the request's (which also ends on the idle watchdog and Close).
func (c *Core) classify(ctx, rctx context.Context, f *httpFailure, err error) *api.Error {
	if ctx.Err() != nil {
		cause := context.Cause(ctx)
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return api.Wrap(api.PolicyTimeout, cause, "the call's deadline passed while %s was answering", c.base)
		}
		// Wrapping the cause keeps errors.Is(err, cause) true for the kernel, which
		// cancels with a cause to preempt.
		return api.Wrap(api.CallerCancelled, cause, "call to %s cancelled", c.base)
	}
	switch context.Cause(rctx) {
	case errIdle:
		return api.Wrap(api.BackendTimeout, errIdle, "upstream %s sent nothing for %v", c.base, c.cfg.IdleTimeout)
	case errClosed:
		return api.Wrap(api.KernelShuttingDown, errClosed, "anthropic backend %q closed during the call", c.cfg.Name)
	}
	if f != nil && f.status != 0 {
		typ, msg := bodyError(f.body)
		return c.statusError(f.status, typ, msg, f.header)
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
	e.RetryAfter = retryAfter(h, time.Now())
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

// retryAfter reads Retry-After in seconds or as an HTTP date; zero when absent.
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
