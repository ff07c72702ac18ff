package kernel

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aios-go/aios/api"
	"github.com/aios-go/aios/internal/llm"
	"github.com/aios-go/aios/internal/sched"
)

// Under working-set admission a program whose context does not fit beside the active
// ones waits until one of them ends, even though the core has free slots.
func TestWorkingSetHoldsProgramsUntilOneEnds(t *testing.T) {
	core := &funcCore{cap: llm.Capacity{MaxInflight: 8, MaxTokens: 2000}, gen: func(ctx context.Context, req *llm.Request, emit func(llm.Delta)) (*llm.Result, error) {
		emit(llm.Delta{Text: "ok "})
		return &llm.Result{Text: "ok ", FinishReason: "stop"}, nil
	}}
	k := newKernel(t, Options{WorkingSet: &sched.WorkingSet{High: 0.8, Suspend: 1, Idle: time.Hour}},
		CoreConfig{Model: "m", Backend: "test", Core: core})
	big := []api.Message{{Role: "user", Content: api.Content(strings.Repeat("x", 4*900))}} // ~900 tokens
	call := func(prog string) LLMCall {
		return LLMCall{Agent: "a", Program: prog, Request: llm.Request{Messages: big, MaxTokens: 100}}
	}
	if _, _, err := k.CallLLM(context.Background(), call("p1")); err != nil {
		t.Fatal(err)
	}
	// p1 is between calls (a tool runs); p2 would push the set past 0.8 × 2000.
	sc, err := k.SubmitLLM(context.Background(), call("p2"))
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-sc.Done():
		t.Fatal("p2 ran beside p1 although their contexts exceed the working-set limit")
	case <-time.After(50 * time.Millisecond):
	}
	// p1's next call still runs at once: it is in the set.
	if _, _, err := k.CallLLM(context.Background(), call("p1")); err != nil {
		t.Fatal(err)
	}
	k.EndProgram("p1")
	select {
	case <-sc.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("p2 never ran after p1 ended")
	}
	if _, err := sc.Result(); err != nil {
		t.Fatal(err)
	}
}

// Working-set admission over a core whose KV capacity is unknown cannot work (every
// program would be measured against 0 tokens): the kernel refuses to start.
func TestWorkingSetNeedsKnownCapacity(t *testing.T) {
	known := &funcCore{cap: llm.Capacity{MaxInflight: 8, MaxTokens: 2000}}
	unknown := &funcCore{cap: llm.Capacity{MaxInflight: 8}}
	ws := &sched.WorkingSet{}
	_, err := New(Options{WorkingSet: ws}, []CoreConfig{
		{Model: "m", Backend: "test", Core: known},
		{Model: "m", Backend: "vllm", Hostname: "http://gpu:8000", Core: unknown},
	})
	if err == nil || !strings.Contains(err.Error(), "max_tokens_inflight") || !strings.Contains(err.Error(), "http://gpu:8000") {
		t.Fatalf("want a start-up error naming the core and the fix, got %v", err)
	}
	// A configured capacity, for the core or for the working set, is enough.
	k := newKernel(t, Options{WorkingSet: ws}, CoreConfig{Model: "m", Backend: "vllm", Core: unknown, Capacity: llm.Capacity{MaxTokens: 4096}})
	if _, on := k.WorkingSet(); !on {
		t.Fatal("working set off")
	}
	newKernel(t, Options{WorkingSet: &sched.WorkingSet{Capacity: 4096}}, CoreConfig{Model: "m", Backend: "vllm", Core: unknown})
}

// A working set that swaps needs cores that can carry swaps out; any other core is
// refused at start-up rather than admitting as if contexts had left the GPU.
func TestWorkingSetSwapRefused(t *testing.T) {
	core := &funcCore{cap: llm.Capacity{MaxInflight: 8, MaxTokens: 2000}}
	_, err := New(Options{WorkingSet: &sched.WorkingSet{Swap: true}}, []CoreConfig{{Model: "m", Backend: "test", Core: core}})
	if err == nil || !strings.Contains(err.Error(), "swap") {
		t.Fatalf("New with a swapping working set: %v, want a refusal naming swap", err)
	}
}

// swapCore records the swaps the kernel hands it.
type swapCore struct {
	funcCore
	mu    sync.Mutex
	swaps []string
}

func (c *swapCore) SwapSession(session string, in bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	dir := "out"
	if in {
		dir = "in"
	}
	c.swaps = append(c.swaps, session+":"+dir)
}

func (c *swapCore) seen() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.swaps...)
}

// A program that starts a long tool through the kernel is swapped out to the tier and
// warmed back in before the tool is expected to end: the kernel hands both moves to the
// core.
func TestWorkingSetSwapsReachTheCore(t *testing.T) {
	core := &swapCore{funcCore: funcCore{cap: llm.Capacity{MaxInflight: 8, MaxTokens: 100_000},
		gen: func(context.Context, *llm.Request, func(llm.Delta)) (*llm.Result, error) {
			return &llm.Result{Text: "ok", FinishReason: "stop"}, nil
		}}}
	ws := &sched.WorkingSet{Swap: true, SwapAfter: 50 * time.Millisecond, SwapMargin: 10 * time.Millisecond}
	k := newKernel(t, Options{WorkingSet: ws}, CoreConfig{Model: "m", Backend: "test", Core: core})
	if _, _, err := k.CallLLM(context.Background(), LLMCall{Agent: "a", Program: "p", Request: llm.Request{Messages: userMsg("hi"), MaxTokens: 4}}); err != nil {
		t.Fatal(err)
	}
	startTool(k, "p", 200*time.Millisecond)
	deadline := time.Now().Add(10 * time.Second)
	for len(core.seen()) < 2 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if got := core.seen(); len(got) != 2 || got[0] != "p:out" || got[1] != "p:in" {
		t.Fatalf("swaps handed to the core: %v, want [p:out p:in]", got)
	}
}

// startTool tells k's scheduler that program has started a tool expected to take d, as
// the kernel does when it runs one, and wakes the dispatcher.
func startTool(k *Kernel, program string, d time.Duration) {
	k.mu.Lock()
	k.sched.ToolStarted(program, "search", d, k.now())
	k.mu.Unlock()
	k.poke()
}
