// Package upstream is shared plumbing for calling remote LLM APIs (the openai,
// anthropic and gemini backends): recording an error response before a provider's SDK
// parses it, telling whose fault an ended context is, and reading Retry-After. What a
// provider's statuses and bodies mean stays with its backend.
package upstream

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/aios-go/aios/api"
)

// Sentinel causes for cancelling an upstream request ourselves; ContextError tells them
// from the caller's cancellation.
var (
	// ErrIdle ends a request whose upstream sent nothing for the idle timeout.
	ErrIdle = errors.New("upstream idle timeout")
	// ErrClosed ends the requests in flight when their core closes.
	ErrClosed = errors.New("core closed")
)

// WithClose derives the context an upstream request runs under: it ends with ctx, with
// ErrClosed as its cause when closing ends, and when cancel is called (the idle watchdog
// cancels with ErrIdle). stop detaches it from closing.
func WithClose(ctx, closing context.Context) (rctx context.Context, cancel context.CancelCauseFunc, stop func() bool) {
	rctx, cancel = context.WithCancelCause(ctx)
	stop = context.AfterFunc(closing, func() { cancel(ErrClosed) })
	return rctx, cancel, stop
}

// Failure is an error response as it came off the wire. An SDK parses error bodies only
// in its provider's shape, and may drop the status and headers (Retry-After among them)
// on the way; recording the response first keeps every upstream, and every proxy in
// front of one, classifiable. The zero value is ready; it is safe for concurrent use.
type Failure struct {
	mu     sync.Mutex
	status int
	header http.Header
	body   []byte
}

// maxBody is how much of an error body Record keeps.
const maxBody = 64 << 10

// Record keeps res's status and header when it is an error response (status 400 or
// more), replacing what was recorded before. With body it also reads up to 64 KiB of
// the body and puts that copy back for the SDK to parse; without, the body is left
// untouched for the SDK alone.
func (f *Failure) Record(res *http.Response, body bool) {
	if res == nil || res.StatusCode < 400 {
		return
	}
	var b []byte
	if body {
		b, _ = io.ReadAll(io.LimitReader(res.Body, maxBody))
		_ = res.Body.Close()
		res.Body = io.NopCloser(bytes.NewReader(b))
	}
	f.mu.Lock()
	f.status, f.header, f.body = res.StatusCode, res.Header.Clone(), b
	f.mu.Unlock()
}

// Response is what was recorded: status 0 when no error response was (or f is nil).
func (f *Failure) Response() (status int, header http.Header, body []byte) {
	if f == nil {
		return 0, nil, nil
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.status, f.header, f.body
}

// Capture returns an SDK middleware (the openai and anthropic SDKs'
// option.WithMiddleware) that records an error response, body included, into f.
func Capture(f *Failure) func(*http.Request, func(*http.Request) (*http.Response, error)) (*http.Response, error) {
	return func(req *http.Request, next func(*http.Request) (*http.Response, error)) (*http.Response, error) {
		res, err := next(req)
		if err == nil {
			f.Record(res, true)
		}
		return res, err
	}
}

type failureKey struct{}

// WithFailure returns ctx carrying f, for a Transport to record the request's error
// response into.
func WithFailure(ctx context.Context, f *Failure) context.Context {
	return context.WithValue(ctx, failureKey{}, f)
}

// Transport wraps inner to record the status and header (not the body, which the SDK
// parses itself) of an error response into the Failure its request's context carries
// (WithFailure), for SDKs that take an http.Client but no middleware.
func Transport(inner http.RoundTripper) http.RoundTripper { return transport{inner} }

type transport struct{ inner http.RoundTripper }

func (t transport) RoundTrip(req *http.Request) (*http.Response, error) {
	res, err := t.inner.RoundTrip(req)
	if err == nil {
		if f, ok := req.Context().Value(failureKey{}).(*Failure); ok {
			f.Record(res, false)
		}
	}
	return res, err
}

// Target names the upstream a call went to, for error messages.
type Target struct {
	Provider string        // the backend type: "openai", "anthropic", "gemini"
	Name     string        // the backend's configured name
	Base     string        // the API root called
	Idle     time.Duration // the idle timeout the request ran under
}

// ContextError explains a failed call by its contexts, or returns nil when neither
// does. ctx is the caller's context and rctx the request's (made by WithClose), which
// also ends on the idle watchdog and on Close; the order of checks decides whose fault
// an ended context is.
func ContextError(ctx, rctx context.Context, t Target) *api.Error {
	if ctx.Err() != nil {
		cause := context.Cause(ctx)
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return api.Wrap(api.PolicyTimeout, cause, "the call's deadline passed while %s was answering", t.Base)
		}
		// The kernel cancels with a cause to preempt a call; wrapping it keeps
		// errors.Is(err, cause) true for the scheduler.
		return api.Wrap(api.CallerCancelled, cause, "call to %s cancelled", t.Base)
	}
	switch context.Cause(rctx) {
	case ErrIdle:
		return api.Wrap(api.BackendTimeout, ErrIdle, "upstream %s sent nothing for %v", t.Base, t.Idle)
	case ErrClosed:
		return api.Wrap(api.KernelShuttingDown, ErrClosed, "%s backend %q closed during the call", t.Provider, t.Name)
	}
	return nil
}

// RetryAfter reads how long the upstream asked us to wait in Retry-After, in seconds
// or as an HTTP date. Zero when absent, unparsable or not in the future.
func RetryAfter(h http.Header, now time.Time) time.Duration {
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

// TransportError classifies a failure no response explains: a timeout, a refused or
// dropped connection, or anything else, all against base. refusedHint, when not empty,
// is appended to the message for a refused connection (a local server that may not be
// running). It is the last resort of a backend's classify and never returns nil.
func TransportError(err error, base, refusedHint string) *api.Error {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return api.Wrap(api.BackendTimeout, err, "upstream %s timed out", base)
	}
	if errors.Is(err, syscall.ECONNREFUSED) {
		if refusedHint != "" {
			return api.Wrap(api.BackendUnavailable, err, "cannot connect to %s: %s", base, refusedHint)
		}
		return api.Wrap(api.BackendUnavailable, err, "cannot connect to %s", base)
	}
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, io.EOF) {
		return api.Wrap(api.BackendUnavailable, err, "upstream %s: stream ended before the response was complete: connection dropped", base)
	}
	return api.Wrap(api.BackendUnavailable, err, "request to %s failed", base)
}

// HTTPClient is the client a backend makes for itself when its caller gave none: a
// clone of the default transport that keeps as many idle connections to the upstream
// as the core may have calls in flight, so a busy core does not redial per call. No
// client timeout: a streamed answer legitimately lasts minutes; idle watchdogs bound
// silence instead.
func HTTPClient(maxInflight int) *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = maxInflight
	tr.MaxIdleConns = 0
	return &http.Client{Transport: tr}
}
