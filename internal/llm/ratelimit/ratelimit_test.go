package ratelimit

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/aios-go/aios/api"
	"github.com/aios-go/aios/internal/llm"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// fakeCore answers after a delay with the usage its use function decides, and records
// when each call was let through and how many tokens it used.
type fakeCore struct {
	delay time.Duration
	use   func(req *llm.Request, prompt int) (completion int)
	wrap  *Core // to compute the prompt the way the limiter does

	mu    sync.Mutex
	calls []admitted
}

type admitted struct {
	at     time.Time
	tokens int
}

func (f *fakeCore) Generate(ctx context.Context, req *llm.Request, emit func(llm.Delta)) (*llm.Result, error) {
	start := time.Now()
	prompt, _ := f.wrap.Estimate(req)
	completion := f.use(req, prompt)
	select {
	case <-time.After(f.delay):
	case <-ctx.Done():
		return nil, api.Wrap(api.CallerCancelled, context.Cause(ctx), "cancelled")
	}
	for range completion {
		emit(llm.Delta{Text: "x"})
	}
	f.mu.Lock()
	f.calls = append(f.calls, admitted{start, prompt + completion})
	f.mu.Unlock()
	return &llm.Result{Text: "x", FinishReason: "stop", Usage: api.Usage{
		PromptTokens: prompt, CompletionTokens: completion, TotalTokens: prompt + completion,
	}}, nil
}
func (f *fakeCore) Capabilities() llm.Capabilities { return llm.Capabilities{Resume: true} }
func (f *fakeCore) Capacity() llm.Capacity         { return llm.Capacity{MaxInflight: 1000} }
func (f *fakeCore) Health(context.Context) error   { return nil }
func (f *fakeCore) Close() error                   { return nil }

func wrap(t *testing.T, f *fakeCore, l Limits) *Core {
	t.Helper()
	c, err := Wrap(f, l)
	if err != nil {
		t.Fatal(err)
	}
	w := c.(*Core)
	f.wrap = w
	return w
}

func req(text string, maxTokens int) *llm.Request {
	return &llm.Request{Messages: []api.Message{{Role: "user", Content: api.Content(text)}}, MaxTokens: maxTokens}
}

// windowSums returns, for each one-second step, the tokens of calls admitted in the
// minute starting there, over the windows that fit in [from, to).
func windowSums(calls []admitted, epoch time.Time, from, to time.Duration) []int {
	var out []int
	for s := from; s+time.Minute <= to; s += time.Second {
		sum := 0
		for _, c := range calls {
			if at := c.at.Sub(epoch); at >= s && at < s+time.Minute {
				sum += c.tokens
			}
		}
		out = append(out, sum)
	}
	return out
}

// Forty agents call as fast as the limiter lets them for five minutes of virtual time;
// answers are a random fraction of max_tokens, so most of every reservation is given
// back when the call settles. Every one-minute window stays within 5% of the limit, and
// the steady-state windows use at least 90% of it: the refunds reach the callers.
func TestTPMHeldWithinFivePercent(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const tpm = 60_000
		rng := rand.New(rand.NewPCG(1, 2))
		var rngMu sync.Mutex
		f := &fakeCore{delay: 1500 * time.Millisecond, use: func(req *llm.Request, _ int) int {
			rngMu.Lock()
			defer rngMu.Unlock()
			return req.MaxTokens/10 + rng.IntN(req.MaxTokens-req.MaxTokens/10)
		}}
		c := wrap(t, f, Limits{TPM: tpm})
		epoch := time.Now()
		const run = 5 * time.Minute
		ctx, cancel := context.WithTimeout(t.Context(), run)
		defer cancel()
		var wg sync.WaitGroup
		for i := range 40 {
			wg.Go(func() {
				for n := 0; ctx.Err() == nil; n++ {
					_, err := c.Generate(ctx, req("agent question about the weather and the tides", 400+(i*37+n*11)%600), func(llm.Delta) {})
					if err != nil && ctx.Err() == nil {
						t.Errorf("agent %d: %v", i, err)
						return
					}
				}
			})
		}
		wg.Wait()

		f.mu.Lock()
		calls := f.calls
		f.mu.Unlock()
		sums := windowSums(calls, epoch, 0, run-5*time.Second)
		peak, low := 0, tpm*2
		for i, s := range sums {
			peak = max(peak, s)
			if time.Duration(i)*time.Second >= 30*time.Second {
				low = min(low, s)
			}
		}
		t.Logf("%d calls; one-minute windows: peak %d, steady-state low %d tokens (limit %d)", len(calls), peak, low, tpm)
		if peak > tpm*105/100 {
			t.Fatalf("a one-minute window used %d tokens, more than 5%% over the limit of %d", peak, tpm)
		}
		if low < tpm*90/100 {
			t.Fatalf("a steady-state window used only %d tokens of %d: settled tokens did not come back", low, tpm)
		}
	})
}

func TestRPMHeld(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const rpm = 120
		f := &fakeCore{delay: 10 * time.Millisecond, use: func(*llm.Request, int) int { return 1 }}
		c := wrap(t, f, Limits{RPM: rpm})
		epoch := time.Now()
		ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
		defer cancel()
		var wg sync.WaitGroup
		for range 20 {
			wg.Go(func() {
				for ctx.Err() == nil {
					c.Generate(ctx, req("hi", 5), nil)
				}
			})
		}
		wg.Wait()
		f.mu.Lock()
		calls := f.calls
		f.mu.Unlock()
		for i, s := range windowSums(calls, epoch, 0, 3*time.Minute-time.Second) {
			n := s / (calls[0].tokens) // every call uses the same tokens
			if n > rpm+rpm/60 || (i > 0 && n < rpm-2) {
				t.Fatalf("window at %ds admitted %d requests, limit %d", i, n, rpm)
			}
		}
	})
}

func TestRefundWakesWaiters(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// 100 tokens a second with a one-second burst: the first call's 1000-token
		// reservation leaves the bucket 900 in debt, a ten-second wait for the next.
		f := &fakeCore{delay: time.Second, use: func(*llm.Request, int) int { return 10 }}
		c := wrap(t, f, Limits{TPM: 6000})
		start := time.Now()
		var wg sync.WaitGroup
		wg.Go(func() { c.Generate(t.Context(), req("one", 990), nil) })
		synctest.Wait()
		second := make(chan time.Duration, 1)
		wg.Go(func() {
			c.Generate(t.Context(), req("two", 10), nil)
			second <- time.Since(start)
		})
		wg.Wait()
		// The first call used about 20 tokens; its refund at t=1s pays the debt.
		if d := <-second; d > 2500*time.Millisecond {
			t.Fatalf("the second call finished after %v: the refund did not wake it", d)
		}
	})
}

func TestOveruseIsDebt(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// The backend reports five times what was reserved; the next call pays for it.
		f := &fakeCore{use: func(r *llm.Request, prompt int) int { return 5*(prompt+r.MaxTokens) - prompt }}
		c := wrap(t, f, Limits{TPM: 60_000, Burst: time.Second}) // 1000 a second
		p, o := c.Estimate(req("x", 200))
		start := time.Now()
		c.Generate(t.Context(), req("x", 200), nil)
		c.Generate(t.Context(), req("x", 200), nil)
		// Bucket: 1000 - (p+o) reserved, then 4(p+o) more taken at settle; the second
		// call waits until the level is back to p+o.
		want := time.Duration(float64(5*(p+o)+(p+o)-1000) / 1000 * float64(time.Second))
		if got := time.Since(start); got < want-time.Millisecond || got > want+time.Millisecond {
			t.Fatalf("second call started after %v, want %v", got, want)
		}
	})
}

func TestWaitHonoursContext(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &fakeCore{use: func(*llm.Request, int) int { return 1 }}
		c := wrap(t, f, Limits{TPM: 600, RPM: 1}) // 10 tokens a second, one request a minute
		if _, err := c.Generate(t.Context(), req("x", 500), nil); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
		defer cancel()
		_, err := c.Generate(ctx, req("x", 500), nil)
		if api.KindOf(err) != api.PolicyTimeout || !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("err = %v, want policy_timeout wrapping the deadline", err)
		}

		cause := errors.New("preempted")
		ctx2, cancel2 := context.WithCancelCause(t.Context())
		time.AfterFunc(time.Second, func() { cancel2(cause) })
		_, err = c.Generate(ctx2, req("x", 5), nil)
		if api.KindOf(err) != api.CallerCancelled || !errors.Is(err, cause) {
			t.Fatalf("err = %v, want caller_cancelled wrapping the cause", err)
		}
		// The cancelled waiters gave their places back: after the budgets refill, a
		// call goes straight through.
		time.Sleep(2 * time.Minute)
		start := time.Now()
		if _, err := c.Generate(t.Context(), req("x", 5), nil); err != nil || time.Since(start) != 0 {
			t.Fatalf("after refill: err %v, waited %v", err, time.Since(start))
		}
	})
}

func TestWaitersServedInOrder(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &fakeCore{use: func(*llm.Request, int) int { return 0 }}
		c := wrap(t, f, Limits{TPM: 600}) // 10 a second
		c.Generate(t.Context(), req("x", 500), nil)
		var mu sync.Mutex
		var order []int
		var wg sync.WaitGroup
		for i, n := range []int{300, 5, 5} {
			wg.Go(func() {
				c.Generate(t.Context(), req("x", n), nil)
				mu.Lock()
				order = append(order, i)
				mu.Unlock()
			})
			synctest.Wait()
		}
		wg.Wait()
		if order[0] != 0 || order[1] != 1 || order[2] != 2 {
			t.Fatalf("order %v: the large call was overtaken", order)
		}
	})
}

func TestTooLargeAndUnlimited(t *testing.T) {
	f := &fakeCore{use: func(*llm.Request, int) int { return 1 }}
	c := wrap(t, f, Limits{TPM: 100})
	_, err := c.Generate(t.Context(), req("x", 500), nil)
	if api.KindOf(err) != api.CallerTooLarge {
		t.Fatalf("err = %v, want caller_too_large", err)
	}
	same, err := Wrap(f, Limits{})
	if err != nil || same != llm.Core(f) {
		t.Fatalf("Wrap with no limits = %v, %v; want the core itself", same, err)
	}
	if _, err := Wrap(f, Limits{RPM: -1}); api.KindOf(err) != api.CallerBadRequest {
		t.Fatalf("negative limit: %v", err)
	}
	if c.Unwrap() != llm.Core(f) {
		t.Fatal("Unwrap lost the core")
	}
}

type hintCore struct {
	fakeCore
	hints []string
}

func (h *hintCore) EndSession(s string) { h.hints = append(h.hints, "end "+s) }
func (h *hintCore) SwapSession(s string, in bool) {
	h.hints = append(h.hints, fmt.Sprint("swap ", s, " ", in))
}

// The session hints a core takes pass through the limiter, unlimited; a core that
// takes none stays a plain *Core.
func TestHintsPassThrough(t *testing.T) {
	h := &hintCore{}
	c, err := Wrap(h, Limits{RPM: 1})
	if err != nil {
		t.Fatal(err)
	}
	c.(llm.SessionSwapper).SwapSession("p", false)
	c.(llm.SessionEnder).EndSession("p")
	if got := fmt.Sprint(h.hints); got != "[swap p false end p]" {
		t.Errorf("hints reaching the core: %s", got)
	}
	if _, ok := c.(interface{ Unwrap() llm.Core }); !ok {
		t.Error("the wrapper with hints lost Unwrap")
	}
	plain, _ := Wrap(&fakeCore{}, Limits{RPM: 1})
	if _, ok := plain.(llm.SessionEnder); ok {
		t.Error("a core without hints takes them through the limiter")
	}
}
