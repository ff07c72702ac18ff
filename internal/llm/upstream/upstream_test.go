package upstream

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aios-go/aios/api"
)

func TestRetryAfter(t *testing.T) {
	now := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	cases := []struct {
		h    map[string]string
		want time.Duration
	}{
		{nil, 0},
		{map[string]string{}, 0},
		{map[string]string{"Retry-After": "3"}, 3 * time.Second},
		{map[string]string{"Retry-After": " 3 "}, 3 * time.Second},
		{map[string]string{"Retry-After": "0.5"}, 500 * time.Millisecond},
		{map[string]string{"Retry-After": "0"}, 0},
		{map[string]string{"Retry-After": "-4"}, 0},
		{map[string]string{"Retry-After": "NaN"}, 0},
		{map[string]string{"Retry-After": now.Add(90 * time.Second).Format(http.TimeFormat)}, 90 * time.Second},
		{map[string]string{"Retry-After": now.Add(-time.Minute).Format(http.TimeFormat)}, 0},
		{map[string]string{"Retry-After": "soon"}, 0},
		{map[string]string{"Retry-After-Ms": "250"}, 0}, // OpenAI's own header: its backend reads it
	}
	for _, tc := range cases {
		var h http.Header
		if tc.h != nil {
			h = http.Header{}
			for k, v := range tc.h {
				h.Set(k, v)
			}
		}
		if got := RetryAfter(h, now); got != tc.want {
			t.Errorf("RetryAfter(%v) = %v, want %v", tc.h, got, tc.want)
		}
	}
}

func TestContextError(t *testing.T) {
	target := Target{Provider: "gemini", Name: "flash", Base: "http://up.example", Idle: 7 * time.Second}
	preempt := errors.New("preempted by the scheduler")
	cases := []struct {
		name string
		// ctx and rctx build the caller's and the request's contexts.
		ctx  func() context.Context
		rctx func(ctx context.Context) context.Context
		kind api.Kind // "" wants nil
		is   error
		msg  string
	}{
		{name: "both live", ctx: context.Background},
		{
			name: "caller deadline",
			ctx: func() context.Context {
				ctx, cancel := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
				t.Cleanup(cancel)
				return ctx
			},
			kind: api.PolicyTimeout, is: context.DeadlineExceeded,
			msg: "the call's deadline passed while http://up.example was answering",
		},
		{
			name: "caller cancelled with a cause",
			ctx: func() context.Context {
				ctx, cancel := context.WithCancelCause(context.Background())
				cancel(preempt)
				return ctx
			},
			kind: api.CallerCancelled, is: preempt, msg: "call to http://up.example cancelled",
		},
		{
			name: "caller ended first wins over idle",
			ctx: func() context.Context {
				ctx, cancel := context.WithCancel(context.Background())
				cancel()
				return ctx
			},
			rctx: func(ctx context.Context) context.Context { return cancelled(ctx, ErrIdle) },
			kind: api.CallerCancelled, is: context.Canceled,
		},
		{
			name: "idle", ctx: context.Background,
			rctx: func(ctx context.Context) context.Context { return cancelled(ctx, ErrIdle) },
			kind: api.BackendTimeout, is: ErrIdle, msg: "upstream http://up.example sent nothing for 7s",
		},
		{
			name: "closed", ctx: context.Background,
			rctx: func(ctx context.Context) context.Context { return cancelled(ctx, ErrClosed) },
			kind: api.KernelShuttingDown, is: ErrClosed, msg: `gemini backend "flash" closed during the call`,
		},
		{
			name: "request ended for another reason", ctx: context.Background,
			rctx: func(ctx context.Context) context.Context { return cancelled(ctx, errors.New("other")) },
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctx := tc.ctx()
			rctx := ctx
			if tc.rctx != nil {
				rctx = tc.rctx(ctx)
			}
			e := ContextError(ctx, rctx, target)
			if tc.kind == "" {
				if e != nil {
					t.Fatalf("ContextError = %v, want nil", e)
				}
				return
			}
			if e == nil || e.Kind != tc.kind {
				t.Fatalf("ContextError = %v, want kind %s", e, tc.kind)
			}
			if !errors.Is(e, tc.is) {
				t.Errorf("errors.Is(%v, %v) = false", e, tc.is)
			}
			if !strings.Contains(e.Error(), tc.msg) {
				t.Errorf("message %q lacks %q", e.Error(), tc.msg)
			}
		})
	}
}

func cancelled(ctx context.Context, cause error) context.Context {
	rctx, cancel := context.WithCancelCause(ctx)
	cancel(cause)
	return rctx
}

func TestWithClose(t *testing.T) {
	closing, closeCore := context.WithCancel(context.Background())
	rctx, cancel, stop := WithClose(context.Background(), closing)
	defer stop()
	defer cancel(nil)
	closeCore()
	<-rctx.Done()
	if got := context.Cause(rctx); got != ErrClosed {
		t.Fatalf("cause = %v, want ErrClosed", got)
	}
}

func TestTransportError(t *testing.T) {
	cases := []struct {
		err  error
		hint string
		kind api.Kind
		msg  string
	}{
		{&net.OpError{Op: "read", Err: timeoutErr{}}, "", api.BackendTimeout, "upstream http://up timed out"},
		{syscall.ECONNREFUSED, "", api.BackendUnavailable, "cannot connect to http://up"},
		{fmt.Errorf("dial: %w", syscall.ECONNREFUSED), "is the server running there?", api.BackendUnavailable,
			"cannot connect to http://up: is the server running there?"},
		{io.ErrUnexpectedEOF, "", api.BackendUnavailable, "connection dropped"},
		{syscall.ECONNRESET, "", api.BackendUnavailable, "connection dropped"},
		{io.EOF, "", api.BackendUnavailable, "connection dropped"},
		{errors.New("odd"), "", api.BackendUnavailable, "request to http://up failed"},
	}
	for _, tc := range cases {
		e := TransportError(tc.err, "http://up", tc.hint)
		if e.Kind != tc.kind || !strings.Contains(e.Error(), tc.msg) || !errors.Is(e, tc.err) {
			t.Errorf("TransportError(%v) = %v (%s), want %s containing %q", tc.err, e, e.Kind, tc.kind, tc.msg)
		}
	}
}

type timeoutErr struct{}

func (timeoutErr) Error() string   { return "i/o timeout" }
func (timeoutErr) Timeout() bool   { return true }
func (timeoutErr) Temporary() bool { return true }

func TestCaptureAndTransport(t *testing.T) {
	big := strings.Repeat("x", maxBody+10)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/ok":
			_, _ = io.WriteString(w, "fine")
		case "/big":
			w.Header().Set("Retry-After", "2")
			w.WriteHeader(http.StatusTooManyRequests)
			_, _ = io.WriteString(w, big)
		default:
			w.Header().Set("Retry-After", "2")
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = io.WriteString(w, "<html>busy</html>")
		}
	}))
	defer srv.Close()
	get := func(t *testing.T, path string, f *Failure) (int, string) {
		req, _ := http.NewRequest("GET", srv.URL+path, nil)
		res, err := Capture(f)(req, http.DefaultTransport.RoundTrip)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(b)
	}

	t.Run("middleware", func(t *testing.T) {
		var f Failure
		if code, body := get(t, "/ok", &f); code != 200 || body != "fine" {
			t.Fatalf("ok: %d %q", code, body)
		}
		if status, _, _ := f.Response(); status != 0 {
			t.Fatalf("a success was recorded: %d", status)
		}
		code, body := get(t, "/busy", &f)
		if code != 503 || body != "<html>busy</html>" {
			t.Fatalf("the SDK lost the body: %d %q", code, body)
		}
		status, h, b := f.Response()
		if status != 503 || h.Get("Retry-After") != "2" || string(b) != "<html>busy</html>" {
			t.Fatalf("recorded %d %v %q", status, h, b)
		}
		if _, body := get(t, "/big", &f); len(body) != maxBody {
			t.Fatalf("body passed on: %d bytes, want the %d kept", len(body), maxBody)
		}
		if status, _, b := f.Response(); status != 429 || len(b) != maxBody {
			t.Fatalf("recorded %d with %d bytes", status, len(b))
		}
	})

	t.Run("transport", func(t *testing.T) {
		hc := &http.Client{Transport: Transport(http.DefaultTransport)}
		var f Failure
		req, _ := http.NewRequestWithContext(WithFailure(context.Background(), &f), "GET", srv.URL+"/big", nil)
		res, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if len(b) != len(big) {
			t.Fatalf("the transport cut the body to %d bytes", len(b))
		}
		status, h, body := f.Response()
		if status != 429 || h.Get("Retry-After") != "2" || body != nil {
			t.Fatalf("recorded %d %v %d body bytes", status, h, len(body))
		}
		// A request without a Failure in its context passes through.
		res, err = hc.Get(srv.URL + "/busy")
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
	})

	t.Run("nil", func(t *testing.T) {
		var f *Failure
		if status, h, b := f.Response(); status != 0 || h != nil || b != nil {
			t.Fatal("a nil Failure recorded something")
		}
	})
}

func TestHTTPClientKeepsAConnectionPerCall(t *testing.T) {
	tr, ok := HTTPClient(48).Transport.(*http.Transport)
	if !ok || tr.MaxIdleConnsPerHost != 48 || tr.MaxIdleConns != 0 || HTTPClient(1).Timeout != 0 {
		t.Fatalf("%+v", tr)
	}
}
