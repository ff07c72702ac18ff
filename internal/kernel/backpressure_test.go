package kernel

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aios-go/aios/api"
	"github.com/aios-go/aios/internal/llm"
	"github.com/aios-go/aios/internal/sched"
)

// blockedCore runs one call at a time and holds each until release is closed.
func blockedCore(release chan struct{}) *funcCore {
	return &funcCore{cap: llm.Capacity{MaxInflight: 1}, gen: func(ctx context.Context, req *llm.Request, emit func(llm.Delta)) (*llm.Result, error) {
		select {
		case <-release:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		emit(llm.Delta{Text: "ok"})
		return &llm.Result{Text: "ok", FinishReason: "stop"}, nil
	}}
}

func chat(agent string) LLMCall {
	return LLMCall{Agent: agent, Request: llm.Request{Messages: userMsg("hi"), MaxTokens: 4}}
}

// Past the backlog limit a new call is refused with 429 and a Retry-After, and every
// call that was accepted still completes.
func TestBacklogLimitRefusesAndLosesNothing(t *testing.T) {
	release := make(chan struct{})
	var once sync.Once
	open := func() { once.Do(func() { close(release) }) }
	k := newKernel(t, Options{MaxQueued: 2}, CoreConfig{Model: "m", Backend: "test", Core: blockedCore(release)})
	t.Cleanup(open) // before the kernel's shutdown, which waits for the calls
	var accepted []*Syscall
	for i := 0; i < 3; i++ { // one runs, two queue
		sc, err := k.SubmitLLM(context.Background(), chat("a"))
		if err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
		accepted = append(accepted, sc)
		waitQueued(t, k, i) // the first is running before the others queue
	}
	_, err := k.SubmitLLM(context.Background(), chat("a"))
	var ae *api.Error
	if !errors.As(err, &ae) || ae.Kind != api.PolicyQuota || ae.Kind.HTTPStatus() != 429 || ae.RetryAfter != time.Second {
		t.Fatalf("want policy_quota_exceeded (429) with Retry-After 1s (no drain rate known yet), got %v", err)
	}
	open()
	for i, sc := range accepted {
		if _, err := sc.Wait(context.Background()); err != nil {
			t.Fatalf("accepted call %d: %v", i, err)
		}
	}
}

// A call whose deadline falls before the queue ahead of it drains is refused with 503:
// three calls queued at one completion per second take 3 s.
func TestDeadlineBackpressure(t *testing.T) {
	release := make(chan struct{})
	k := newKernel(t, Options{}, CoreConfig{Model: "m", Backend: "test", Core: blockedCore(release)})
	t.Cleanup(func() { close(release) })
	for i := 0; i < 4; i++ {
		c := chat("a")
		c.Timeout = time.Minute
		if _, err := k.SubmitLLM(context.Background(), c); err != nil {
			t.Fatal(err)
		}
		waitQueued(t, k, i)
	}
	k.mu.Lock()
	k.drain[sched.LLM] = drainRate{start: k.now(), rate: 1}
	k.mu.Unlock()
	short := chat("b")
	short.Timeout = 2 * time.Second
	_, err := k.SubmitLLM(context.Background(), short)
	var ae *api.Error
	if !errors.As(err, &ae) || ae.Kind != api.BackendOverloaded || ae.Kind.HTTPStatus() != 503 || ae.RetryAfter != 3*time.Second {
		t.Fatalf("want backend_overloaded (503) with Retry-After 3s, got %v (%+v)", err, ae)
	}
	long := chat("b")
	long.Timeout = 10 * time.Second
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if _, err := k.SubmitLLM(ctx, long); err != nil {
		t.Fatalf("a call whose deadline the queue meets was refused: %v", err)
	}
}

// The drain rate is completions per second over 5 s windows, halved into the last.
func TestDrainRate(t *testing.T) {
	var d drainRate
	if _, ok := d.wait(10, 0); ok {
		t.Fatal("a rate known before any window closed")
	}
	for i := 0; i < 50; i++ {
		d.done(time.Duration(i) * 100 * time.Millisecond) // 50 in [0, 5s)
	}
	if w, ok := d.wait(100, 5*time.Second); !ok || w != 10*time.Second {
		t.Fatalf("100 queued at 10/s: %v %v, want 10s", w, ok)
	}
	for i := 0; i < 100; i++ {
		d.done(5*time.Second + time.Duration(i)*50*time.Millisecond) // 100 in [5s, 10s)
	}
	if w, ok := d.wait(30, 10*time.Second); !ok || w != 2*time.Second {
		t.Fatalf("30 queued at (10+20)/2 = 15/s: %v %v, want 2s", w, ok)
	}
}

func waitQueued(t *testing.T, k *Kernel, n int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		k.mu.Lock()
		q := k.sched.Queued(sched.LLM)
		k.mu.Unlock()
		if q == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d queued, want %d", q, n)
		}
		time.Sleep(time.Millisecond)
	}
}

// A full queue of programs waiting for working-set admission does not refuse the calls
// of admitted programs: only they can free the room the others wait for.
func TestBacklogNeverRefusesAdmittedPrograms(t *testing.T) {
	core := &funcCore{cap: llm.Capacity{MaxInflight: 8, MaxTokens: 2000}, gen: func(ctx context.Context, req *llm.Request, emit func(llm.Delta)) (*llm.Result, error) {
		emit(llm.Delta{Text: "ok"})
		return &llm.Result{Text: "ok", FinishReason: "stop"}, nil
	}}
	k := newKernel(t, Options{MaxQueued: 1, WorkingSet: &sched.WorkingSet{High: 0.8, Suspend: 1, Idle: time.Hour}},
		CoreConfig{Model: "m", Backend: "test", Core: core})
	big := LLMCall{Agent: "x", Request: llm.Request{Messages: userMsg(strings.Repeat("x", 4*900)), MaxTokens: 100}}
	a, b, c := big, big, big
	a.Program, b.Program, c.Program = "a", "b", "c"
	if _, _, err := k.CallLLM(context.Background(), a); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if _, err := k.SubmitLLM(ctx, b); err != nil { // waits: a holds the set
		t.Fatal(err)
	}
	waitQueued(t, k, 1)
	var ae *api.Error
	if _, err := k.SubmitLLM(ctx, c); !errors.As(err, &ae) || ae.Kind != api.PolicyQuota {
		t.Fatalf("a new program past the limit: %v, want 429", err)
	}
	if _, _, err := k.CallLLM(context.Background(), a); err != nil {
		t.Fatalf("the admitted program's next call was refused: %v", err)
	}
}
