package openai

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
	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/packages/ssestream"
)

// httpFailure is an error response as it came off the wire. The SDK parses error bodies
// only in OpenAI's shape and returns a bare decoding error for others (Ollama's
// {"error":"..."}, a proxy's HTML), losing the status; capturing it first keeps every
// upstream classifiable.
type httpFailure struct {
	status int
	header http.Header
	body   []byte
}

// capture returns a middleware that records an error response into f.
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
// caller's context and rctx the request's (which also ends on the idle watchdog and on
// Close); the order of checks decides whose fault an ended context is.
func (c *Core) classify(ctx, rctx context.Context, f *httpFailure, err error) *api.Error {
	if ctx.Err() != nil {
		cause := context.Cause(ctx)
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return api.Wrap(api.PolicyTimeout, cause, "the call's deadline passed while %s was answering", c.base)
		}
		// The kernel cancels with a cause to preempt a call; wrapping it keeps
		// errors.Is(err, cause) true for the scheduler.
		return api.Wrap(api.CallerCancelled, cause, "call to %s cancelled", c.base)
	}
	switch context.Cause(rctx) {
	case errIdle:
		return api.Wrap(api.BackendTimeout, errIdle, "upstream %s sent nothing for %v", c.base, c.cfg.IdleTimeout)
	case errClosed:
		return api.Wrap(api.KernelShuttingDown, errClosed, "openai backend %q closed during the call", c.cfg.Name)
	}

	if f != nil && f.status != 0 {
		return c.statusError(f.status, f.header, bodyMessage(f.body))
	}
	var apiErr *openai.Error
	if errors.As(err, &apiErr) {
		var h http.Header
		if apiErr.Response != nil {
			h = apiErr.Response.Header
		}
		return c.statusError(apiErr.StatusCode, h, apiErr.Message)
	}
	var se *ssestream.StreamError
	if errors.As(err, &se) {
		return c.streamError(se)
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
		return api.Wrap(api.BackendUnavailable, err, "cannot connect to %s: is the server running there?", c.base)
	}
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, io.EOF) {
		return api.Wrap(api.BackendUnavailable, err, "upstream %s: stream ended before the response was complete: connection dropped", c.base)
	}
	return api.Wrap(api.BackendUnavailable, err, "request to %s failed", c.base)
}

// statusError maps an HTTP error status to a kind: rate limits and overload are worth
// retrying (after Retry-After), other server errors call for failover, and client errors
// will fail again anywhere.
func (c *Core) statusError(status int, h http.Header, msg string) *api.Error {
	detail := fmt.Sprintf("upstream %s answered HTTP %d", c.base, status)
	if msg != "" {
		detail += ": " + msg
	}
	var e *api.Error
	switch {
	case status == http.StatusTooManyRequests:
		e = api.Errorf(api.BackendRateLimited, "%s", detail)
	case status == http.StatusServiceUnavailable:
		e = api.Errorf(api.BackendOverloaded, "%s", detail)
	case status >= 500:
		e = api.Errorf(api.BackendUnavailable, "%s", detail)
	case status == http.StatusUnauthorized || status == http.StatusForbidden:
		e = api.Errorf(api.BackendRejected,
			"%s (the upstream refused the API key: check api_key for backend %q)", detail, c.cfg.Name)
	case status >= 400:
		e = api.Errorf(api.BackendRejected, "%s", detail)
	default:
		e = api.Errorf(api.BackendBadResponse, "%s", detail)
	}
	e.RetryAfter = retryAfter(h, time.Now())
	return e
}

// streamError handles an error event inside a 200 stream, which vLLM sends when the
// engine fails after the response started; its code, when numeric, is an HTTP status.
func (c *Core) streamError(se *ssestream.StreamError) *api.Error {
	var ev struct {
		Error struct {
			Message string          `json:"message"`
			Code    json.RawMessage `json:"code"`
		} `json:"error"`
	}
	_ = json.Unmarshal(se.Event.Data, &ev)
	msg := ev.Error.Message
	if msg == "" {
		msg = strings.TrimSpace(string(se.Event.Data))
	}
	if code, err := strconv.Atoi(strings.Trim(string(ev.Error.Code), `"`)); err == nil && code >= 400 && code < 600 {
		return c.statusError(code, nil, "error in stream: "+msg)
	}
	if strings.Contains(string(ev.Error.Code), "rate_limit") {
		return c.statusError(http.StatusTooManyRequests, nil, "error in stream: "+msg)
	}
	return api.Errorf(api.BackendUnavailable, "upstream %s failed mid-stream: %s", c.base, msg)
}

// bodyMessage digs the human message out of an error body. OpenAI nests it under
// "error", Ollama makes "error" a string, older vLLM puts "message" at the top level,
// FastAPI validation errors use "detail", and proxies answer plain text or HTML.
func bodyMessage(b []byte) string {
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
			return truncate(string(body.Detail), 300)
		}
	}
	return truncate(strings.TrimSpace(string(b)), 300)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

// retryAfter reads how long the upstream asked us to wait: OpenAI's retry-after-ms, or
// Retry-After in seconds or as an HTTP date. Zero when absent or unparsable.
func retryAfter(h http.Header, now time.Time) time.Duration {
	if h == nil {
		return 0
	}
	if v := h.Get("Retry-After-Ms"); v != "" {
		if ms, err := strconv.ParseFloat(v, 64); err == nil && ms > 0 {
			return time.Duration(ms * float64(time.Millisecond))
		}
	}
	v := strings.TrimSpace(h.Get("Retry-After"))
	if v == "" {
		return 0
	}
	if s, err := strconv.ParseFloat(v, 64); err == nil {
		if s <= 0 {
			return 0
		}
		return time.Duration(s * float64(time.Second))
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(t.Sub(now), 0)
	}
	return 0
}
