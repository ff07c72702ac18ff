package kernel

import (
	"context"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/aios-go/aios/internal/llm"
	"github.com/aios-go/aios/internal/llm/openai"
	"github.com/aios-go/aios/internal/llm/sim"
	"github.com/aios-go/aios/internal/sched"
)

// A kernel in front of aios sim serve carries its working set's swaps and its programs'
// ends over HTTP, and the served engine acts on them, when the model is declared to
// take them (retention, offload); without offload the kernel refuses to swap over it.
func TestSessionHintsOverHTTPReachTheServedEngine(t *testing.T) {
	srv, err := sim.NewServer(sim.Config{Profile: "test", Speed: 1000, KVOffloadGiB: 1})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(func() { ts.Close(); srv.Close() })
	live := srv.Live()
	p := live.Profile()
	newCore := func(offload bool) llm.Core {
		c, err := openai.New(openai.Config{Name: live.Model(), BaseURL: ts.URL, Resume: true, Retention: true, Offload: offload,
			MaxTokens: p.NumBlocks() * p.BlockSize, Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatal(err)
		}
		return c.WithHints()
	}
	ws := func() *sched.WorkingSet {
		return &sched.WorkingSet{Swap: true, SwapAfter: 50 * time.Millisecond, SwapMargin: 10 * time.Millisecond}
	}

	ender := newCore(false)
	if _, err := New(Options{WorkingSet: ws()}, []CoreConfig{{Model: live.Model(), Backend: "vllm", Core: ender}}); err == nil || !strings.Contains(err.Error(), "swap") {
		t.Fatalf("swap over a core without offload: %v, want a refusal", err)
	}
	ender.Close()

	k := newKernel(t, Options{Retention: true, WorkingSet: ws()}, CoreConfig{Model: live.Model(), Backend: "vllm", Core: newCore(true)})
	msgs := userMsg(strings.Repeat("task ", 4*p.BlockSize))
	if _, _, err := k.CallLLM(context.Background(), LLMCall{Agent: "a", Program: "p", Request: llm.Request{Messages: msgs, MaxTokens: 4}}); err != nil {
		t.Fatal(err)
	}
	startTool(k, "p", 200*time.Millisecond)
	deadline := time.Now().Add(10 * time.Second)
	for live.Stats().OffloadStoredBlocks == 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if live.Stats().OffloadStoredBlocks == 0 {
		t.Fatal("the working set's swap out never reached the served engine's tier")
	}
	k.EndProgram("p")
	for live.Stats().ForgottenBlocks == 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if live.Stats().ForgottenBlocks == 0 {
		t.Fatal("the program's end never reached the served engine")
	}
}
