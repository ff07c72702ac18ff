package kernel

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aios-go/aios/api"
	"github.com/aios-go/aios/internal/sched"
)

// gatedService limits each resource to limit parallel runs, as the tool manager limits
// each tool; runs of "slow" block until release is closed.
type gatedService struct {
	limit   int
	queue   int
	wait    time.Duration
	release chan struct{}

	mu      sync.Mutex
	running map[string]int
	peak    map[string]int
	order   []string // resources in the order their runs started
}

func newGated(limit, queue int, wait time.Duration) *gatedService {
	return &gatedService{limit: limit, queue: queue, wait: wait, release: make(chan struct{}),
		running: map[string]int{}, peak: map[string]int{}}
}

func (g *gatedService) Acquire(r string) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.running[r] >= g.limit {
		return false
	}
	g.running[r]++
	g.peak[r] = max(g.peak[r], g.running[r])
	return true
}

func (g *gatedService) Release(r string) {
	g.mu.Lock()
	g.running[r]--
	g.mu.Unlock()
}

func (g *gatedService) QueueLimits(string) (int, time.Duration) { return g.queue, g.wait }

func (g *gatedService) Admit(r Request) error {
	if r.Op == "invalid" {
		return api.Errorf(api.CallerBadRequest, "arguments do not match %s's schema", r.Resource)
	}
	return nil
}

func (g *gatedService) Run(ctx context.Context, r Request) (any, error) {
	g.mu.Lock()
	g.order = append(g.order, r.Resource)
	g.mu.Unlock()
	if r.Resource == "slow" {
		select {
		case <-g.release:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return r.Resource + " done", nil
}

func toolKernel(t *testing.T, g *gatedService, concurrency int) *Kernel {
	t.Helper()
	return newKernel(t, Options{
		Services: map[sched.Module]Service{sched.Tool: g},
		Modules:  map[sched.Module]ModuleOptions{sched.Tool: {Concurrency: concurrency}},
	}, echoCore())
}

// 100 parallel calls of a tool limited to 3 never run more than 3 at once, and calls of
// a free tool submitted after them all run while the busy tool's queue is full.
func TestGatedServiceHoldsLimitAndRunsFreeResources(t *testing.T) {
	g := newGated(3, 0, 0)
	k := toolKernel(t, g, 8)
	var wg sync.WaitGroup
	var slowDone atomic.Int64
	for range 100 {
		wg.Go(func() {
			res, _, err := k.Do(t.Context(), Call{Agent: "a", Module: sched.Tool, Op: "call", Resource: "slow"})
			if err != nil || res != "slow done" {
				t.Errorf("slow call: %v %v", res, err)
			}
			slowDone.Add(1)
		})
	}
	waitFor(t, "97 slow calls queued", func() bool { return k.Status().Queued["tool"] == 97 })
	for i := range 20 {
		res, _, err := k.Do(t.Context(), Call{Agent: "b", Module: sched.Tool, Op: "call", Resource: "fast"})
		if err != nil || res != "fast done" {
			t.Fatalf("fast call %d behind a busy tool: %v %v", i, res, err)
		}
	}
	if n := slowDone.Load(); n != 0 {
		t.Fatalf("%d slow calls ended before release", n)
	}
	close(g.release)
	wg.Wait()
	if p := g.peak["slow"]; p != 3 {
		t.Fatalf("slow ran %d at once, limit 3", p)
	}
}

// The queue bound refuses a call at once with a typed, retryable error; the wait bound
// fails a queued call as busy; a call the service refuses at admission never queues.
func TestGatedServiceQueueBounds(t *testing.T) {
	g := newGated(1, 2, 50*time.Millisecond)
	k := toolKernel(t, g, 8)
	ctx := t.Context()
	first, err := k.Submit(ctx, Call{Agent: "a", Module: sched.Tool, Op: "call", Resource: "slow"})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the first call running", func() bool { g.mu.Lock(); defer g.mu.Unlock(); return g.running["slow"] == 1 })
	var queued []*Syscall
	for range 2 {
		sc, err := k.Submit(ctx, Call{Agent: "a", Module: sched.Tool, Op: "call", Resource: "slow"})
		if err != nil {
			t.Fatal(err)
		}
		queued = append(queued, sc)
	}
	_, err = k.Submit(ctx, Call{Agent: "a", Module: sched.Tool, Op: "call", Resource: "slow"})
	if e, ok := err.(*api.Error); !ok || e.Kind != api.BackendOverloaded || e.RetryAfter <= 0 {
		t.Fatalf("third waiter: %v, want backend_overloaded with Retry-After", err)
	}
	for i, sc := range queued {
		_, err := sc.Wait(ctx)
		if api.KindOf(err) != api.BackendOverloaded {
			t.Fatalf("queued call %d after its wait bound: %v", i, err)
		}
	}
	_, _, err = k.Do(ctx, Call{Agent: "a", Module: sched.Tool, Op: "invalid", Resource: "slow"})
	if api.KindOf(err) != api.CallerBadRequest {
		t.Fatalf("refused at admission: %v", err)
	}
	close(g.release)
	if res, err := first.Wait(ctx); err != nil || res != "slow done" {
		t.Fatalf("first: %v %v", res, err)
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if fmt.Sprint(g.order) != "[slow]" {
		t.Fatalf("runs started: %v, want only the first", g.order)
	}
}

// The kernel times the tool calls it runs: retention learns the tool's duration from
// the run itself, and the gap before the session's next LLM call is not learned from.
func TestToolSyscallsTeachRetention(t *testing.T) {
	g := newGated(1, 0, 0)
	k := newKernel(t, Options{Retention: true, Services: map[sched.Module]Service{sched.Tool: g}}, echoCore())
	sc, err := k.Submit(t.Context(), Call{Agent: "a", Program: "p", Module: sched.Tool, Op: "call", Resource: "slow"})
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(40 * time.Millisecond)
	close(g.release)
	if _, err := sc.Wait(t.Context()); err != nil {
		t.Fatal(err)
	}
	k.mu.Lock()
	got := k.retain.est.Expect("slow")
	w := k.retain.pending["p"]
	k.mu.Unlock()
	if got < 40*time.Millisecond || got > 5*time.Second {
		t.Fatalf("learned %v for a tool that ran about 40ms", got)
	}
	if w.tool != "slow" || !w.measured {
		t.Fatalf("session's pending tool %+v, want slow, measured", w)
	}
}
