package kernel

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/aios-go/aios/api"
	"github.com/aios-go/aios/internal/llm"
	"github.com/aios-go/aios/internal/llm/sim"
	"github.com/aios-go/aios/internal/llm/simcore"
	"github.com/aios-go/aios/internal/sched"
	"github.com/aios-go/aios/internal/testleak"
)

// The Gemini backend's dependencies start a goroutine for the life of the process.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m, testleak.Ignore()...) }

// funcCore is a core whose behaviour each test writes.
type funcCore struct {
	gen  func(ctx context.Context, req *llm.Request, emit func(llm.Delta)) (*llm.Result, error)
	caps llm.Capabilities
	cap  llm.Capacity
}

func (f *funcCore) Generate(ctx context.Context, req *llm.Request, emit func(llm.Delta)) (*llm.Result, error) {
	return f.gen(ctx, req, emit)
}
func (f *funcCore) Capabilities() llm.Capabilities { return f.caps }
func (f *funcCore) Capacity() llm.Capacity         { return f.cap }
func (f *funcCore) Health(context.Context) error   { return nil }
func (f *funcCore) Close() error                   { return nil }

func newKernel(t *testing.T, opts Options, cores ...CoreConfig) *Kernel {
	t.Helper()
	k, err := New(opts, cores)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := k.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
	return k
}

func userMsg(s string) []api.Message { return []api.Message{{Role: "user", Content: api.Content(s)}} }

func TestAdmissionLimitsHoldUnderConcurrency(t *testing.T) {
	const maxInflight, maxTokens, calls = 8, 8 * 600, 1000
	var inflight, tokens, peakInflight, peakTokens atomic.Int64
	core := &funcCore{
		cap: llm.Capacity{MaxInflight: maxInflight, MaxTokens: maxTokens},
		gen: func(ctx context.Context, req *llm.Request, emit func(llm.Delta)) (*llm.Result, error) {
			tk := int64(llm.EstimateTokens(req.Messages, req.Tools) + req.MaxTokens)
			n, m := inflight.Add(1), tokens.Add(tk)
			for p := peakInflight.Load(); n > p && !peakInflight.CompareAndSwap(p, n); p = peakInflight.Load() {
			}
			for p := peakTokens.Load(); m > p && !peakTokens.CompareAndSwap(p, m); p = peakTokens.Load() {
			}
			time.Sleep(100 * time.Microsecond)
			emit(llm.Delta{Text: "ok"})
			inflight.Add(-1)
			tokens.Add(-tk)
			return &llm.Result{Text: "ok", FinishReason: "stop"}, nil
		},
	}
	k := newKernel(t, Options{}, CoreConfig{Model: "m", Backend: "test", Core: core})
	var wg sync.WaitGroup
	var failed atomic.Int64
	for i := range calls {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Sizes vary so the token budget, not only the slot count, binds.
			res, _, err := k.CallLLM(context.Background(), LLMCall{Agent: "a", Request: llm.Request{
				Messages: userMsg(strings.Repeat("x", 40*(i%13))), MaxTokens: 100 + 37*(i%11),
			}})
			if err != nil || res.Text != "ok" {
				failed.Add(1)
			}
		}()
	}
	wg.Wait()
	if failed.Load() != 0 {
		t.Fatalf("%d of %d calls failed", failed.Load(), calls)
	}
	if p := peakInflight.Load(); p > maxInflight {
		t.Errorf("peak in-flight %d exceeds max_inflight %d", p, maxInflight)
	}
	if p := peakTokens.Load(); p > maxTokens {
		t.Errorf("peak tokens %d exceed max_tokens_inflight %d", p, maxTokens)
	}
	if peakInflight.Load() < 2 {
		t.Errorf("peak in-flight %d: calls never ran concurrently", peakInflight.Load())
	}
	st := k.Status()
	if st.LLMCores[0].Completed != calls || st.LLMCores[0].Inflight != 0 {
		t.Errorf("status after the run: %+v", st.LLMCores[0])
	}
}

func TestRoundRobinResumesExactlyOnSimCore(t *testing.T) {
	sim, err := simcore.New(simcore.Config{Config: sim.Config{Model: "sim", Speed: 25}, MaxInflight: 1})
	if err != nil {
		t.Fatal(err)
	}
	// A core with a KV cache is preempted only under working-set admission (the
	// kernel's default where the capacity is known), which keeps contexts resident.
	k := newKernel(t, Options{Policy: "rr", TimeSlice: 5 * time.Millisecond, WorkingSet: &sched.WorkingSet{}},
		CoreConfig{Model: "sim", Backend: "sim", Core: sim})

	prompts := []string{"first agent task", "second agent task", "third agent task"}
	want := make([]string, len(prompts))
	for i, p := range prompts {
		res, err := sim.Generate(context.Background(), &llm.Request{Messages: userMsg(p), MaxTokens: 120, Session: p}, func(llm.Delta) {})
		if err != nil {
			t.Fatal(err)
		}
		want[i] = res.Text
	}

	type out struct {
		streamed, final string
		preempted       int
		err             error
	}
	outs := make([]out, len(prompts))
	var wg sync.WaitGroup
	for i, p := range prompts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var sb strings.Builder
			res, sc, err := k.CallLLM(context.Background(), LLMCall{
				Agent: "agent", Program: p, Request: llm.Request{Messages: userMsg(p), MaxTokens: 120},
				Emit: func(d llm.Delta) { sb.WriteString(d.Text) },
			})
			outs[i] = out{streamed: sb.String(), err: err}
			if err == nil {
				outs[i].final, outs[i].preempted = res.Text, sc.Preempted()
			}
		}()
	}
	wg.Wait()
	total := 0
	for i, o := range outs {
		if o.err != nil {
			t.Fatalf("call %d: %v", i, o.err)
		}
		if o.final != want[i] || o.streamed != want[i] {
			t.Fatalf("call %d: text differs from the uninterrupted answer\nfinal    %q\nstreamed %q\nwant     %q", i, o.final, o.streamed, want[i])
		}
		total += o.preempted
	}
	if total == 0 {
		t.Fatal("no call was preempted: the test did not exercise the context switch")
	}
}

func TestTerminalStates(t *testing.T) {
	block := make(chan struct{})
	t.Cleanup(func() { close(block) })
	slow := &funcCore{cap: llm.Capacity{MaxInflight: 1}, gen: func(ctx context.Context, req *llm.Request, emit func(llm.Delta)) (*llm.Result, error) {
		select {
		case <-ctx.Done():
			return nil, api.Wrap(api.CallerCancelled, context.Cause(ctx), "stopped")
		case <-block:
			return &llm.Result{Text: "late"}, nil
		}
	}}
	k := newKernel(t, Options{}, CoreConfig{Model: "m", Backend: "test", Core: slow})

	// Running call whose caller leaves.
	ctx1, cancel1 := context.WithCancel(context.Background())
	running, err := k.SubmitLLM(ctx1, LLMCall{Agent: "a", Request: llm.Request{Messages: userMsg("x")}})
	if err != nil {
		t.Fatal(err)
	}
	waitRunning(t, k)
	// Queued calls: one whose caller leaves, one that times out.
	ctx2, cancel2 := context.WithCancel(context.Background())
	queued, err := k.SubmitLLM(ctx2, LLMCall{Agent: "b", Request: llm.Request{Messages: userMsg("y")}})
	if err != nil {
		t.Fatal(err)
	}
	timed, err := k.SubmitLLM(context.Background(), LLMCall{Agent: "c", Timeout: 20 * time.Millisecond, Request: llm.Request{Messages: userMsg("z")}})
	if err != nil {
		t.Fatal(err)
	}
	cancel2()
	cancel1()
	for _, tc := range []struct {
		sc    *Syscall
		state State
		kind  api.Kind
	}{
		{running, StateCancelled, api.CallerCancelled},
		{queued, StateCancelled, api.CallerCancelled},
		{timed, StateTimedOut, api.PolicyTimeout},
	} {
		select {
		case <-tc.sc.Done():
		case <-time.After(5 * time.Second):
			t.Fatalf("syscall %d never ended", tc.sc.ID)
		}
		_, err := tc.sc.Result()
		if tc.sc.State() != tc.state || api.KindOf(err) != tc.kind {
			t.Errorf("syscall %d: state %q kind %q; want %q %q (err %v)", tc.sc.ID, tc.sc.State(), api.KindOf(err), tc.state, tc.kind, err)
		}
	}
}

func waitRunning(t *testing.T, k *Kernel) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for k.Status().Running["llm"] == 0 {
		if time.Now().After(deadline) {
			t.Fatal("call never started")
		}
		time.Sleep(time.Millisecond)
	}
}

func TestBackendErrorsStayTyped(t *testing.T) {
	var calls atomic.Int64
	core := &funcCore{cap: llm.Capacity{MaxInflight: 4}, gen: func(ctx context.Context, req *llm.Request, emit func(llm.Delta)) (*llm.Result, error) {
		switch calls.Add(1) {
		case 1:
			return nil, &api.Error{Kind: api.BackendRateLimited, Message: "slow down", RetryAfter: time.Second}
		case 2:
			return nil, errors.New("untyped failure")
		}
		return &llm.Result{Text: "fine"}, nil
	}}
	k := newKernel(t, Options{}, CoreConfig{Model: "m", Backend: "test", Core: core})
	call := LLMCall{Agent: "a", Request: llm.Request{Messages: userMsg("x")}}
	_, sc, err := k.CallLLM(context.Background(), call)
	if api.KindOf(err) != api.BackendRateLimited || sc.State() != StateFailed {
		t.Fatalf("429: kind %q state %q", api.KindOf(err), sc.State())
	}
	_, sc, err = k.CallLLM(context.Background(), call)
	if api.KindOf(err) != api.KernelInternal || sc.State() != StateFailed {
		t.Fatalf("untyped: kind %q state %q", api.KindOf(err), sc.State())
	}
	res, sc, err := k.CallLLM(context.Background(), call)
	if err != nil || res.Text != "fine" || sc.State() != StateDone {
		t.Fatalf("third call: %v %v", err, sc.State())
	}
	if f := k.Status().LLMCores[0].Failed; f != 2 {
		t.Fatalf("failed count %d, want 2", f)
	}
}

func TestSubmitRejections(t *testing.T) {
	core := &funcCore{cap: llm.Capacity{MaxInflight: 1, MaxTokens: 100}, gen: func(context.Context, *llm.Request, func(llm.Delta)) (*llm.Result, error) {
		return &llm.Result{}, nil
	}}
	k := newKernel(t, Options{}, CoreConfig{Model: "m", Backend: "test", Core: core})
	for _, tc := range []struct {
		name string
		req  llm.Request
		kind api.Kind
	}{
		{"unknown model", llm.Request{Model: "nope", Messages: userMsg("x"), MaxTokens: 1}, api.CallerNotFound},
		{"no messages", llm.Request{MaxTokens: 1}, api.CallerBadRequest},
		{"too large", llm.Request{Messages: userMsg("x"), MaxTokens: 1000}, api.CallerTooLarge},
	} {
		if _, err := k.SubmitLLM(context.Background(), LLMCall{Agent: "a", Request: tc.req}); api.KindOf(err) != tc.kind {
			t.Errorf("%s: kind %q, want %q (%v)", tc.name, api.KindOf(err), tc.kind, err)
		}
	}
}

func TestShutdownDrainsThenCancels(t *testing.T) {
	release := make(chan struct{})
	core := &funcCore{cap: llm.Capacity{MaxInflight: 1}, gen: func(ctx context.Context, req *llm.Request, emit func(llm.Delta)) (*llm.Result, error) {
		select {
		case <-release:
			return &llm.Result{Text: "done"}, nil
		case <-ctx.Done():
			return nil, api.Wrap(api.CallerCancelled, context.Cause(ctx), "stopped")
		}
	}}
	k, err := New(Options{}, []CoreConfig{{Model: "m", Backend: "test", Core: core}})
	if err != nil {
		t.Fatal(err)
	}
	first, _ := k.SubmitLLM(context.Background(), LLMCall{Agent: "a", Request: llm.Request{Messages: userMsg("1")}})
	second, _ := k.SubmitLLM(context.Background(), LLMCall{Agent: "a", Request: llm.Request{Messages: userMsg("2")}})
	waitRunning(t, k)

	// A graceful shutdown lets the running call finish...
	go func() { time.Sleep(20 * time.Millisecond); close(release) }()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := k.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if first.State() != StateDone || second.State() != StateDone {
		t.Fatalf("states after graceful shutdown: %q %q", first.State(), second.State())
	}
	if _, err := k.SubmitLLM(context.Background(), LLMCall{Agent: "a", Request: llm.Request{Messages: userMsg("3")}}); api.KindOf(err) != api.KernelShuttingDown {
		t.Fatalf("submit after shutdown: %v", err)
	}
}

func TestShutdownDeadlineCancels(t *testing.T) {
	core := &funcCore{cap: llm.Capacity{MaxInflight: 1}, gen: func(ctx context.Context, req *llm.Request, emit func(llm.Delta)) (*llm.Result, error) {
		<-ctx.Done()
		return nil, api.Wrap(api.CallerCancelled, context.Cause(ctx), "stopped")
	}}
	k, err := New(Options{}, []CoreConfig{{Model: "m", Backend: "test", Core: core}})
	if err != nil {
		t.Fatal(err)
	}
	a, _ := k.SubmitLLM(context.Background(), LLMCall{Agent: "a", Request: llm.Request{Messages: userMsg("1")}})
	b, _ := k.SubmitLLM(context.Background(), LLMCall{Agent: "a", Request: llm.Request{Messages: userMsg("2")}})
	waitRunning(t, k)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if err := k.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("shutdown err = %v", err)
	}
	for _, sc := range []*Syscall{a, b} {
		_, err := sc.Result()
		if sc.State() != StateCancelled || api.KindOf(err) != api.KernelShuttingDown {
			t.Fatalf("syscall %d: %q %v", sc.ID, sc.State(), err)
		}
	}
}

func TestTimingsAreConsistent(t *testing.T) {
	core := &funcCore{cap: llm.Capacity{MaxInflight: 1}, gen: func(ctx context.Context, req *llm.Request, emit func(llm.Delta)) (*llm.Result, error) {
		time.Sleep(10 * time.Millisecond)
		return &llm.Result{Text: "x"}, nil
	}}
	k := newKernel(t, Options{}, CoreConfig{Model: "m", Backend: "test", Core: core})
	var wg sync.WaitGroup
	scs := make([]*Syscall, 2)
	for i := range scs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, scs[i], _ = k.CallLLM(context.Background(), LLMCall{Agent: "a", Request: llm.Request{Messages: userMsg("x")}})
		}()
	}
	wg.Wait()
	var maxWait time.Duration
	for _, sc := range scs {
		tm := sc.Timings()
		if tm.Start.Before(tm.Arrival) || tm.End.Before(tm.Start) || tm.Turnaround != tm.End.Sub(tm.Arrival) {
			t.Fatalf("inconsistent timings %+v", tm)
		}
		if tm.Waiting > tm.Turnaround {
			t.Fatalf("waited %v longer than turnaround %v", tm.Waiting, tm.Turnaround)
		}
		maxWait = max(maxWait, tm.Waiting)
	}
	if maxWait < 5*time.Millisecond {
		t.Fatalf("two calls on one slot: the second should have waited ~10ms, max wait %v", maxWait)
	}
}

// The policy's order reaches the core as the request's priority.
func TestPolicyRankPassedDown(t *testing.T) {
	var seen atomic.Int64
	core := &funcCore{cap: llm.Capacity{MaxInflight: 1}, gen: func(ctx context.Context, req *llm.Request, emit func(llm.Delta)) (*llm.Result, error) {
		seen.Store(int64(req.Priority))
		return &llm.Result{Text: "x"}, nil
	}}
	k := newKernel(t, Options{Policy: "priority"}, CoreConfig{Model: "m", Backend: "test", Core: core})
	if _, _, err := k.CallLLM(context.Background(), LLMCall{Agent: "a", Priority: 7, Request: llm.Request{Messages: userMsg("x")}}); err != nil {
		t.Fatal(err)
	}
	if seen.Load() != 7 {
		t.Fatalf("core saw priority %d, want 7", seen.Load())
	}
}
