package tool

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
	"unicode/utf8"

	"github.com/aios-go/aios/api"
)

// The kernel's use: TryAcquire (retrying while refused), Run, Release. However many
// goroutines race, no more than Concurrency calls of a tool run at once.
func TestTryAcquireHonoursConcurrency(t *testing.T) {
	const limit, callers = 3, 100
	var running, peak atomic.Int32
	slow := newTool("slow", "builtin", ``, func(context.Context, Input) (Result, error) {
		n := running.Add(1)
		for {
			p := peak.Load()
			if n <= p || peak.CompareAndSwap(p, n) {
				break
			}
		}
		time.Sleep(time.Millisecond)
		running.Add(-1)
		return Result{Content: "done"}, nil
	})
	m := newManager(t, Config{PerTool: map[string]Limits{"slow": {Concurrency: limit}}}, slow)
	var wg sync.WaitGroup
	var refused atomic.Int32
	for range callers {
		wg.Go(func() {
			for !m.TryAcquire("slow") {
				refused.Add(1)
				runtime.Gosched()
			}
			defer m.Release("slow")
			if _, err := m.Run(context.Background(), "slow", Input{}); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if p := peak.Load(); p > limit || p < 1 {
		t.Fatalf("peak concurrency %d, limit %d", p, limit)
	}
	if refused.Load() == 0 {
		t.Error("no TryAcquire was ever refused")
	}
	s := statsOf(t, m, "slow")
	if s.Inflight != 0 || s.Calls != callers {
		t.Fatalf("stats after: %+v", s)
	}
	t.Logf("peak %d of %d, %d refusals", peak.Load(), limit, refused.Load())
}

func TestTryAcquireUnknownAndRelease(t *testing.T) {
	m := newManager(t, Config{PerTool: map[string]Limits{"one": {Concurrency: 1}}}, echo("one", "builtin"))
	if !m.TryAcquire("ghost") || !m.TryAcquire("ghost") {
		t.Fatal("an unknown tool was refused a slot")
	}
	m.Release("ghost")
	m.Release("ghost")
	m.Release("ghost") // one too many: harmless
	if !m.TryAcquire("one") || m.TryAcquire("one") {
		t.Fatal("Concurrency 1 not honoured")
	}
	if s := statsOf(t, m, "one"); s.Inflight != 1 {
		t.Fatalf("inflight %d", s.Inflight)
	}
	m.Release("one")
	if !m.TryAcquire("one") {
		t.Fatal("the released slot was not free")
	}
}

func TestTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		stuck := newTool("stuck", "builtin", ``, func(ctx context.Context, _ Input) (Result, error) {
			<-ctx.Done()
			return Result{}, ctx.Err()
		})
		m := newManager(t, Config{PerTool: map[string]Limits{"stuck": {Timeout: 2 * time.Second}}}, stuck)
		start := time.Now()
		_, err := m.Run(context.Background(), "stuck", Input{})
		e := apiErr(t, err, api.BackendTimeout)
		if !strings.Contains(e.Message, "tool stuck did not finish within 2s") {
			t.Errorf("message %q", e.Message)
		}
		if took := time.Since(start); took != 2*time.Second {
			t.Errorf("took %v", took)
		}
		if s := statsOf(t, m, "stuck"); s.Timeouts != 1 || s.Errors != 1 || s.MeanDuration != 2*time.Second {
			t.Errorf("stats %+v", s)
		}

		// The caller's own deadline is not the tool's timeout, and not the tool's fault.
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_, err = m.Run(ctx, "stuck", Input{})
		e = apiErr(t, err, api.BackendTimeout)
		if !strings.Contains(e.Message, "caller's deadline") {
			t.Errorf("message %q", e.Message)
		}
		ctx, cancel = context.WithCancel(context.Background())
		time.AfterFunc(time.Second, cancel)
		_, err = m.Run(ctx, "stuck", Input{})
		apiErr(t, err, api.CallerCancelled)
		if s := statsOf(t, m, "stuck"); s.BreakerState != BreakerClosed {
			t.Errorf("breaker %s", s.BreakerState)
		}
	})
}

func TestOutputCap(t *testing.T) {
	// "é" is 2 bytes and "€" 3: caps that fall inside them back off to where they start.
	content := "abcdé€xyz"
	cases := []struct {
		max       int
		kept      string
		truncated bool
	}{
		{100, content, false},
		{len(content), content, false},
		{4, "abcd", true},
		{5, "abcd", true},
		{6, "abcdé", true},
		{7, "abcdé", true},
		{8, "abcdé", true},
		{9, "abcdé€", true},
		{1, "a", true},
	}
	for _, c := range cases {
		t.Run(fmt.Sprint(c.max), func(t *testing.T) {
			big := newTool("big", "builtin", ``, func(context.Context, Input) (Result, error) {
				return Result{Content: content, Structured: json.RawMessage(`{"k":"v"}`)}, nil
			})
			m := newManager(t, Config{PerTool: map[string]Limits{"big": {MaxOutput: c.max}}}, big)
			res, err := m.Run(context.Background(), "big", Input{})
			if err != nil {
				t.Fatal(err)
			}
			if !utf8.ValidString(res.Content) || res.Truncated != c.truncated {
				t.Fatalf("result %+v", res)
			}
			if !c.truncated {
				if res.Content != content || string(res.Structured) != `{"k":"v"}` {
					t.Fatalf("result %+v", res)
				}
				return
			}
			want := fmt.Sprintf("%s\n[output truncated: %d of %d bytes shown]", c.kept, len(c.kept), len(content))
			if res.Content != want {
				t.Fatalf("content %q, want %q", res.Content, want)
			}
			if c.max < 9 && res.Structured != nil {
				t.Fatalf("structured output over the cap kept: %s", res.Structured)
			}
		})
	}
}

func TestErrorsOfTools(t *testing.T) {
	errPlain := errors.New("socket closed")
	limited := &api.Error{Kind: api.BackendRateLimited, Message: "slow down", RetryAfter: 3 * time.Second}
	cases := []struct {
		name     string
		fn       func(context.Context, Input) (Result, error)
		kind     api.Kind
		contains string
		retry    time.Duration
	}{
		{"plain error", func(context.Context, Input) (Result, error) { return Result{}, errPlain }, api.BackendBadResponse, "tool t failed", 0},
		{"typed error kept", func(context.Context, Input) (Result, error) { return Result{}, limited }, api.BackendRateLimited, "slow down", 3 * time.Second},
		{"typed error inside", func(context.Context, Input) (Result, error) { return Result{}, fmt.Errorf("mcp: %w", limited) }, api.BackendRateLimited, "tool t failed", 3 * time.Second},
		{"panic", func(context.Context, Input) (Result, error) { panic("boom") }, api.KernelInternal, "tool t crashed: boom", 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m := newManager(t, Config{}, newTool("t", "builtin", ``, c.fn))
			res, err := m.Run(context.Background(), "t", Input{})
			e := apiErr(t, err, c.kind)
			if !strings.Contains(e.Error(), c.contains) || e.RetryAfter != c.retry || res.Content != "" || res.IsError {
				t.Fatalf("error %v (retry %v), result %+v", e, e.RetryAfter, res)
			}
		})
	}
}

func TestSourceDown(t *testing.T) {
	var calls atomic.Int32
	m := newManager(t, Config{})
	fs := newTool("fs__read", "mcp:fs", ``, func(context.Context, Input) (Result, error) {
		calls.Add(1)
		return Result{Content: "data"}, nil
	})
	if err := m.SetSource("mcp:fs", []Tool{fs}); err != nil {
		t.Fatal(err)
	}
	if err := m.Register(echo("calc", "builtin")); err != nil {
		t.Fatal(err)
	}
	m.SetSourceDown("mcp:fs", errors.New("process exited with status 1"))
	_, err := m.Run(context.Background(), "fs__read", Input{})
	e := apiErr(t, err, api.BackendUnavailable)
	if !strings.Contains(e.Error(), "tool fs__read is unavailable: its server fs is down") || !strings.Contains(e.Error(), "process exited with status 1") {
		t.Errorf("error %v", e)
	}
	if calls.Load() != 0 {
		t.Error("the tool of a down source was called")
	}
	// Other sources are not affected, and validation still comes first.
	if _, err := m.Run(context.Background(), "calc", Input{Args: json.RawMessage(`{"text":"x"}`)}); err != nil {
		t.Fatal(err)
	}
	m.SetSourceDown("mcp:fs", nil)
	if res, err := m.Run(context.Background(), "fs__read", Input{}); err != nil || res.Content != "data" {
		t.Fatalf("after up: %+v, %v", res, err)
	}
	if s := statsOf(t, m, "fs__read"); s.Calls != 2 || s.Errors != 1 || s.BreakerState != BreakerClosed {
		t.Errorf("stats %+v", s)
	}
}

// Run through the breaker: failures open it, an open breaker fails fast with the wait,
// then lets exactly one probe through; a failed probe doubles the wait, a good one closes it.
func TestBreakerThroughRun(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var calls atomic.Int32
		var mode atomic.Value // "fail", "iserror", "ok", "block"
		release := make(chan struct{})
		flaky := newTool("flaky", "builtin", `{"type":"object","properties":{"n":{"type":"integer"}}}`, func(ctx context.Context, _ Input) (Result, error) {
			calls.Add(1)
			switch mode.Load() {
			case "fail":
				return Result{}, errors.New("upstream 502")
			case "iserror":
				return Result{Content: "no such file", IsError: true}, nil
			case "block":
				<-release
				return Result{}, errors.New("still broken")
			}
			return Result{Content: "ok"}, nil
		})
		m := newManager(t, Config{PerTool: map[string]Limits{"flaky": {BreakerThreshold: 3, BreakerCooldown: time.Second}}}, flaky)
		ctx := context.Background()
		run := func() error { _, err := m.Run(ctx, "flaky", Input{}); return err }
		state := func() string { return statsOf(t, m, "flaky").BreakerState }

		// IsError answers and refused arguments are not failures.
		mode.Store("iserror")
		for range 5 {
			if err := run(); err != nil {
				t.Fatal(err)
			}
		}
		for range 5 {
			if _, err := m.Run(ctx, "flaky", Input{Args: json.RawMessage(`{"n":"x"}`)}); api.KindOf(err) != api.CallerBadRequest {
				t.Fatal(err)
			}
		}
		mode.Store("fail")
		for i := range 3 {
			if state() != BreakerClosed {
				t.Fatalf("open after %d failures", i)
			}
			apiErr(t, run(), api.BackendBadResponse)
		}
		if state() != BreakerOpen {
			t.Fatalf("state %s after 3 failures", state())
		}
		before := calls.Load()
		time.Sleep(400 * time.Millisecond)
		e := apiErr(t, run(), api.BackendUnavailable)
		if e.RetryAfter != 600*time.Millisecond || !strings.Contains(e.Message, "try again in 600ms") {
			t.Fatalf("fast failure %v, retry after %v", e, e.RetryAfter)
		}
		if calls.Load() != before {
			t.Fatal("an open breaker let a call through")
		}

		// Cooldown over: one probe runs; while it runs, others fail fast.
		time.Sleep(600 * time.Millisecond)
		mode.Store("block")
		probeDone := make(chan error)
		go func() { probeDone <- run() }()
		synctest.Wait()
		if state() != BreakerHalfOpen {
			t.Fatalf("state %s while probing", state())
		}
		for range 3 {
			e := apiErr(t, run(), api.BackendUnavailable)
			if !strings.Contains(e.Message, "one trial call runs") {
				t.Fatalf("during the probe: %v", e)
			}
		}
		if calls.Load() != before+1 {
			t.Fatalf("%d calls reached the tool during the probe, want 1", calls.Load()-before)
		}
		close(release)
		apiErr(t, <-probeDone, api.BackendBadResponse)

		// The failed probe doubled the cooldown.
		e = apiErr(t, run(), api.BackendUnavailable)
		if e.RetryAfter != 2*time.Second {
			t.Fatalf("after a failed probe: retry after %v, want 2s", e.RetryAfter)
		}
		time.Sleep(2 * time.Second)
		mode.Store("ok")
		if err := run(); err != nil {
			t.Fatalf("probe: %v", err)
		}
		if state() != BreakerClosed {
			t.Fatalf("state %s after a good probe", state())
		}
		// Closed again, with the count and the cooldown back at the start.
		mode.Store("fail")
		for range 3 {
			apiErr(t, run(), api.BackendBadResponse)
		}
		if e := apiErr(t, run(), api.BackendUnavailable); e.RetryAfter != time.Second {
			t.Fatalf("reopened with retry after %v, want 1s", e.RetryAfter)
		}
	})
}

func TestBreakerDisabled(t *testing.T) {
	m := newManager(t, Config{Defaults: Limits{BreakerThreshold: -1}}, newTool("bad", "builtin", ``, func(context.Context, Input) (Result, error) {
		return Result{}, errors.New("no")
	}))
	for range 20 {
		_, err := m.Run(context.Background(), "bad", Input{})
		apiErr(t, err, api.BackendBadResponse)
	}
}
