package kernel

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aios-go/aios/api"
	"github.com/aios-go/aios/internal/llm"
	"github.com/aios-go/aios/internal/llm/openai"
	"github.com/aios-go/aios/internal/testfakes/fakeopenai"
)

// upstreamKernel runs a kernel over one openai core talking to a fake upstream that
// streams genuine OpenAI SSE.
func upstreamKernel(t *testing.T, opts Options, fopts fakeopenai.Options, ocfg openai.Config) (*Kernel, *fakeopenai.Server, *openai.Core) {
	t.Helper()
	up := fakeopenai.New(fopts)
	t.Cleanup(up.Close)
	ocfg.BaseURL = up.URL()
	if ocfg.Name = fopts.Model; ocfg.Name == "" {
		ocfg.Name = fakeopenai.DefaultModel
	}
	core, err := openai.New(ocfg)
	if err != nil {
		t.Fatal(err)
	}
	k := newKernel(t, opts, CoreConfig{Model: "up", Backend: "vllm", Core: core})
	return k, up, core
}

func TestRoundRobinResumesExactlyThroughOpenAIUpstream(t *testing.T) {
	k, up, core := upstreamKernel(t, Options{Policy: "rr", TimeSlice: 8 * time.Millisecond},
		fakeopenai.Options{TokenDelay: 300 * time.Microsecond},
		openai.Config{MaxInflight: 1, Resume: true})

	prompts := []string{"alpha task", "beta task", "gamma task"}
	const n = 80
	want := make([]string, len(prompts))
	for i, p := range prompts {
		res, err := core.Generate(context.Background(), &llm.Request{Messages: userMsg(p), MaxTokens: n}, func(llm.Delta) {})
		if err != nil {
			t.Fatal(err)
		}
		want[i] = res.Text
	}
	before := up.Requests()

	var wg sync.WaitGroup
	errs := make([]error, len(prompts))
	for i, p := range prompts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var streamed strings.Builder
			res, sc, err := k.CallLLM(context.Background(), LLMCall{Agent: p, Request: llm.Request{Messages: userMsg(p), MaxTokens: n},
				Emit: func(d llm.Delta) { streamed.WriteString(d.Text) }})
			switch {
			case err != nil:
				errs[i] = err
			case res.Text != want[i] || streamed.String() != want[i]:
				errs[i] = api.Errorf(api.KernelInternal, "call %d: got %q (streamed %q), want %q", i, res.Text, streamed.String(), want[i])
			case res.Usage.CompletionTokens != n:
				errs[i] = api.Errorf(api.KernelInternal, "call %d: %d completion tokens over its slices, want %d", i, res.Usage.CompletionTokens, n)
			case sc.Preempted() > 0 && len(strings.Fields(res.Text)) != n:
				errs[i] = api.Errorf(api.KernelInternal, "call %d: %d words", i, len(strings.Fields(res.Text)))
			}
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if extra := up.Requests() - before - len(prompts); extra <= 0 {
		t.Fatalf("the upstream saw no resumed requests: no call was preempted")
	}
}

func TestUpstreamFaultsEndTyped(t *testing.T) {
	for _, tc := range []struct {
		name  string
		fault fakeopenai.Fault
		kind  api.Kind
	}{
		{"429", fakeopenai.Fault{Kind: fakeopenai.FaultRateLimited, Count: 1, RetryAfter: 3 * time.Second}, api.BackendRateLimited},
		{"500", fakeopenai.Fault{Kind: fakeopenai.FaultInternal, Count: 1}, api.BackendUnavailable},
		{"503", fakeopenai.Fault{Kind: fakeopenai.FaultOverloaded, Count: 1}, api.BackendOverloaded},
		{"hang", fakeopenai.Fault{Kind: fakeopenai.FaultHang, Count: 1}, api.BackendTimeout},
		{"disconnect", fakeopenai.Fault{Kind: fakeopenai.FaultDisconnect, Count: 1, AfterTokens: 3}, api.BackendUnavailable},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k, up, _ := upstreamKernel(t, Options{}, fakeopenai.Options{TokenDelay: 100 * time.Microsecond},
				openai.Config{MaxInflight: 2, IdleTimeout: 200 * time.Millisecond})
			up.InjectFault(tc.fault)
			var streamed strings.Builder
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			_, sc, err := k.CallLLM(ctx, LLMCall{Agent: "a", Request: llm.Request{Messages: userMsg("x"), MaxTokens: 10},
				Emit: func(d llm.Delta) { streamed.WriteString(d.Text) }})
			if api.KindOf(err) != tc.kind || sc.State() != StateFailed {
				t.Fatalf("kind %q state %q (%v); want %q failed", api.KindOf(err), sc.State(), err, tc.kind)
			}
			if tc.name == "429" {
				if ae, ok := err.(*api.Error); !ok || ae.RetryAfter != 3*time.Second {
					t.Fatalf("Retry-After lost: %#v", err)
				}
			}
			if tc.name == "disconnect" && len(strings.Fields(streamed.String())) != 3 {
				t.Fatalf("streamed %q before the cut, want 3 tokens", streamed.String())
			}
			// The next call, with the fault spent, succeeds: nothing was left hanging.
			res, _, err := k.CallLLM(ctx, LLMCall{Agent: "a", Request: llm.Request{Messages: userMsg("x"), MaxTokens: 4}})
			if err != nil || len(strings.Fields(res.Text)) != 4 {
				t.Fatalf("after the fault: %v %+v", err, res)
			}
		})
	}
}
