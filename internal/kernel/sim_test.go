package kernel

import (
	"context"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/aios-go/aios/internal/llm"
	"github.com/aios-go/aios/internal/llm/openai"
	"github.com/aios-go/aios/internal/llm/sim"
	"github.com/aios-go/aios/internal/llm/simcore"
)

// The kernel's sim backend is the engine simulator itself: calls through the kernel show
// up in the engine's own counters, prefix caching included.
func TestSimBackendIsTheEngine(t *testing.T) {
	core, err := simcore.New(simcore.Config{Config: sim.Config{Model: "sim", Speed: 100}})
	if err != nil {
		t.Fatal(err)
	}
	k := newKernel(t, Options{}, CoreConfig{Model: "sim", Backend: "sim", Core: core})
	prefix := strings.Repeat("shared context words ", 200)
	var prompts []int
	for i := range 2 {
		res, _, err := k.CallLLM(context.Background(), LLMCall{Agent: "a", Request: llm.Request{
			Messages: userMsg(prefix + []string{"first", "second"}[i]), MaxTokens: 4}})
		if err != nil {
			t.Fatal(err)
		}
		prompts = append(prompts, res.Usage.PromptTokens)
		if i == 1 && (res.Usage.PromptTokensDetails == nil || res.Usage.PromptTokensDetails.CachedTokens < 500) {
			t.Fatalf("second call shares a 600-token prefix but reports %+v cached", res.Usage.PromptTokensDetails)
		}
	}
	st := core.Live().Stats()
	if st.PromptTokens != int64(prompts[0]+prompts[1]) || st.GenerationTokens != 8 || st.PrefixHits == 0 {
		t.Fatalf("engine stats %+v after prompts %v", st, prompts)
	}
}

// The same engine served by `aios sim serve` works behind the openai backend, context
// switches included: round-robin over the HTTP engine joins answers exactly.
func TestSimServerBehindOpenAIBackend(t *testing.T) {
	srv, err := sim.NewServer(sim.Config{Model: "simhttp", Speed: 25})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(func() { ts.Close(); srv.Close() })
	core, err := openai.New(openai.Config{Name: "simhttp", BaseURL: ts.URL, MaxInflight: 1, Resume: true})
	if err != nil {
		t.Fatal(err)
	}
	k := newKernel(t, Options{Policy: "rr", TimeSlice: 5 * 1e6}, CoreConfig{Model: "simhttp", Backend: "vllm", Core: core})

	prompts := []string{"one", "two", "three"}
	want := make([]string, len(prompts))
	for i, p := range prompts {
		res, err := core.Generate(context.Background(), &llm.Request{Messages: userMsg(p), MaxTokens: 100}, func(llm.Delta) {})
		if err != nil {
			t.Fatal(err)
		}
		want[i] = res.Text
	}
	var wg sync.WaitGroup
	got := make([]string, len(prompts))
	preempted := make([]int, len(prompts))
	for i, p := range prompts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, sc, err := k.CallLLM(context.Background(), LLMCall{Agent: p, Request: llm.Request{Messages: userMsg(p), MaxTokens: 100}})
			if err != nil {
				t.Error(err)
				return
			}
			got[i], preempted[i] = res.Text, sc.Preempted()
		}()
	}
	wg.Wait()
	total := 0
	for i := range prompts {
		if got[i] != want[i] {
			t.Fatalf("call %d:\n got  %q\n want %q", i, got[i], want[i])
		}
		total += preempted[i]
	}
	if total == 0 {
		t.Fatal("no context switch happened")
	}
}
