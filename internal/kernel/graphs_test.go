package kernel

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/aios-go/aios/api"
	"github.com/aios-go/aios/internal/llm"
)

// With retention hints on, a call whose class the kernel has learned carries the
// execution graph's eviction hint to the engine; one of an unseen class carries none.
// Session s1 (two calls under one system prompt) teaches the class that a first call is
// followed at once by another, so s2's first call is hinted back almost at once.
func TestReuseHintReachesTheEngine(t *testing.T) {
	var mu sync.Mutex
	hints := map[string][]time.Duration{}
	core := &funcCore{cap: llm.Capacity{MaxInflight: 1}, gen: func(ctx context.Context, req *llm.Request, emit func(llm.Delta)) (*llm.Result, error) {
		mu.Lock()
		hints[req.Session] = append(hints[req.Session], req.ReuseAfter)
		mu.Unlock()
		return &llm.Result{Text: "ok"}, nil
	}}
	k := newKernel(t, Options{Retention: true}, CoreConfig{Model: "m", Core: core})
	msgs := []api.Message{{Role: "system", Content: api.Content("You are a planner.")}, {Role: "user", Content: api.Content("go")}}
	for _, s := range []string{"s1", "s1", "s2"} {
		if _, _, err := k.CallLLM(context.Background(), LLMCall{Agent: "a", Program: s, Request: llm.Request{Messages: msgs, MaxTokens: 4}}); err != nil {
			t.Fatal(err)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if h := hints["s1"]; len(h) != 2 || h[0] != 0 {
		t.Errorf("s1's hints %v: want none on the class's first call", h)
	}
	if h := hints["s2"]; len(h) != 1 || h[0] != time.Millisecond {
		t.Errorf("s2's hints %v: want 1ms (the next call follows at once, floored to 1ms)", h)
	}
	g := k.Graphs()
	if len(g.Classes) != 1 || len(g.Classes[0].States) != 2 {
		t.Errorf("graphs %+v: want one class with two states", g)
	}
}
