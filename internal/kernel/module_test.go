package kernel

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aios-go/aios/api"
	"github.com/aios-go/aios/internal/llm"
	"github.com/aios-go/aios/internal/sched"
)

func echoCore() CoreConfig {
	return CoreConfig{Model: "m", Backend: "test", Core: &funcCore{
		cap: llm.Capacity{MaxInflight: 4},
		gen: func(ctx context.Context, req *llm.Request, emit func(llm.Delta)) (*llm.Result, error) {
			return &llm.Result{Text: "ok"}, nil
		},
	}}
}

// A service module's syscalls get the LLM path's life cycle: the module's concurrency
// bounds how many run at once, every call ends in exactly one state with timings, a typed
// error passes through and an untyped one becomes kernel_internal.
func TestServiceRunsThroughTheSyscallPath(t *testing.T) {
	const limit, calls = 3, 40
	var running, peak atomic.Int64
	svc := ServiceFunc(func(ctx context.Context, r Request) (any, error) {
		n := running.Add(1)
		defer running.Add(-1)
		for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
		}
		time.Sleep(2 * time.Millisecond)
		switch r.Op {
		case "bad":
			return nil, api.Errorf(api.CallerBadRequest, "bad path %v", r.Args)
		case "bug":
			return nil, errors.New("unclassified")
		}
		return fmt.Sprintf("%s:%s:%v", r.Agent, r.Op, r.Args), nil
	})
	k := newKernel(t, Options{
		Services: map[sched.Module]Service{sched.Storage: svc},
		Modules:  map[sched.Module]ModuleOptions{sched.Storage: {Concurrency: limit}},
	}, echoCore())

	var wg sync.WaitGroup
	errs := make(chan error, calls)
	for i := range calls {
		wg.Go(func() {
			res, sc, err := k.Do(t.Context(), Call{Agent: "a", Module: sched.Storage, Op: "write", Args: i})
			if err != nil || res != fmt.Sprintf("a:write:%d", i) || sc.State() != StateDone || sc.Timings().End.IsZero() {
				errs <- fmt.Errorf("call %d: %v %v", i, res, err)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if p := peak.Load(); p > limit || p < 2 {
		t.Fatalf("peak concurrency %d, limit %d", p, limit)
	}

	_, sc, err := k.Do(t.Context(), Call{Agent: "a", Module: sched.Storage, Op: "bad", Args: "../x"})
	if api.KindOf(err) != api.CallerBadRequest || sc.State() != StateFailed {
		t.Fatalf("typed error: %v, state %v", err, sc.State())
	}
	_, _, err = k.Do(t.Context(), Call{Agent: "a", Module: sched.Storage, Op: "bug"})
	if api.KindOf(err) != api.KernelInternal {
		t.Fatalf("untyped error became %v", err)
	}
	if _, _, err := k.Do(t.Context(), Call{Agent: "a", Module: sched.Storage}); api.KindOf(err) != api.CallerBadRequest {
		t.Fatalf("no op: %v", err)
	}
	st := k.Status()
	if st.Modules["storage"] != "enabled" || st.Modules["memory"] != "not enabled" || len(st.LLMCores) != 1 {
		t.Fatalf("status %+v", st)
	}
}

// A module that is not configured answers policy_not_enabled before any syscall exists.
func TestDisabledModule(t *testing.T) {
	k := newKernel(t, Options{}, echoCore())
	for _, m := range []sched.Module{sched.Memory, sched.Storage, sched.Tool} {
		_, sc, err := k.Do(t.Context(), Call{Agent: "a", Module: m, Op: "x"})
		if sc != nil || api.KindOf(err) != api.PolicyNotEnabled || !strings.Contains(err.Error(), m.String()) {
			t.Fatalf("%v: %v %v", m, sc, err)
		}
	}
}

// Deadlines and cancellation end service calls whether queued or running, with the
// state that says why, and the module's ctx ends with them.
func TestServiceDeadlineAndCancel(t *testing.T) {
	release := make(chan struct{})
	sawCancel := make(chan struct{}, 8)
	svc := ServiceFunc(func(ctx context.Context, r Request) (any, error) {
		select {
		case <-ctx.Done():
			sawCancel <- struct{}{}
			return nil, ctx.Err()
		case <-release:
			return "done", nil
		}
	})
	k := newKernel(t, Options{
		Services: map[sched.Module]Service{sched.Memory: svc},
		Modules:  map[sched.Module]ModuleOptions{sched.Memory: {Concurrency: 1}},
	}, echoCore())
	running, err := k.Submit(t.Context(), Call{Agent: "a", Module: sched.Memory, Op: "get", Timeout: 30 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	queued, err := k.Submit(ctx, Call{Agent: "b", Module: sched.Memory, Op: "get"})
	if err != nil {
		t.Fatal(err)
	}
	<-running.Done()
	if running.State() != StateTimedOut {
		t.Fatalf("running: %v", running.State())
	}
	<-sawCancel
	cancel()
	<-queued.Done()
	if queued.State() != StateCancelled {
		t.Fatalf("queued: %v", queued.State())
	}
	close(release)
	res, _, err := k.Do(t.Context(), Call{Agent: "c", Module: sched.Memory, Op: "get"})
	if err != nil || res != "done" {
		t.Fatalf("after: %v %v", res, err)
	}
}

// Service modules take only policies that never preempt; a wrong one fails at start.
func TestServicePolicyChecked(t *testing.T) {
	svc := ServiceFunc(func(ctx context.Context, r Request) (any, error) { return nil, nil })
	_, err := New(Options{
		Services: map[sched.Module]Service{sched.Tool: svc},
		Modules:  map[sched.Module]ModuleOptions{sched.Tool: {Policy: "rr"}},
	}, []CoreConfig{echoCore()})
	if err == nil || !strings.Contains(err.Error(), "scheduler.modules.tool.policy") {
		t.Fatalf("rr for a service: %v", err)
	}
	k := newKernel(t, Options{
		Services: map[sched.Module]Service{sched.Tool: svc},
		Modules:  map[sched.Module]ModuleOptions{sched.Tool: {Policy: "priority"}, sched.LLM: {Policy: "rr"}},
	}, echoCore())
	if k.Policy() != "rr" || k.sched.Policy(sched.Tool).Name() != "priority" {
		t.Fatalf("llm %q tool %q", k.Policy(), k.sched.Policy(sched.Tool).Name())
	}
}
