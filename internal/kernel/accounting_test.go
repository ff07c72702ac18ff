package kernel

import (
	"context"
	"testing"
	"time"

	"github.com/aios-go/aios/api"
	"github.com/aios-go/aios/internal/llm"
)

// A client that hangs up mid-stream is charged the tokens generated before it left, and
// the call counts as failed; one cancelled while queued is charged nothing.
func TestCutStreamIsCharged(t *testing.T) {
	const made = 7
	core := &funcCore{cap: llm.Capacity{MaxInflight: 1}, gen: func(ctx context.Context, req *llm.Request, emit func(llm.Delta)) (*llm.Result, error) {
		for range made {
			emit(llm.Delta{Text: "tok "})
		}
		<-ctx.Done()
		return nil, api.Wrap(api.CallerCancelled, context.Cause(ctx), "stopped")
	}}
	k := newKernel(t, Options{}, CoreConfig{Model: "m", Backend: "test", Core: core})
	ctx, hangUp := context.WithCancel(context.Background())
	got := make(chan struct{})
	n := 0
	call := LLMCall{Agent: "a", Program: "s", Request: llm.Request{Messages: userMsg("x")}, Emit: func(llm.Delta) {
		if n++; n == made {
			close(got)
		}
	}}
	sc, err := k.SubmitLLM(ctx, call)
	if err != nil {
		t.Fatal(err)
	}
	// Queued behind it on the one slot, and cancelled there.
	qctx, leave := context.WithCancel(context.Background())
	queued, err := k.SubmitLLM(qctx, LLMCall{Agent: "b", Request: llm.Request{Messages: userMsg("y")}})
	if err != nil {
		t.Fatal(err)
	}
	<-got
	// The queued call ends before the slot frees, or it could be dispatched and stream.
	leave()
	if _, err := queued.Wait(context.Background()); api.KindOf(err) != api.CallerCancelled {
		t.Fatalf("queued: %v", err)
	}
	hangUp()
	if _, err := sc.Wait(context.Background()); api.KindOf(err) != api.CallerCancelled {
		t.Fatalf("running: %v", err)
	}
	r := k.Usage(UsageFilter{})
	want := api.UsageCounters{Calls: 1, Failed: 1, CompletionTokens: made, TotalTokens: made}
	if r.Agents["a"] != want || r.Sessions["s"] != want {
		t.Fatalf("cut stream charged %+v, want %+v", r.Agents["a"], want)
	}
	if b := r.Agents["b"]; b != (api.UsageCounters{Calls: 1, Failed: 1}) {
		t.Fatalf("a call cancelled in the queue was charged %+v", b)
	}
	if r.Total.CompletionTokens != made || r.Total.Calls != 2 {
		t.Fatalf("total %+v", r.Total)
	}
}

// Filters apply to the whole report: the total, agents, sessions and models all follow.
func TestUsageFiltersApplyToTotals(t *testing.T) {
	b := newUsageBook(time.Now())
	k := &Kernel{usage: b}
	charge := func(agent, session, model string, prompt, completion int) {
		sc := &Syscall{Agent: agent, Program: session, llmState: &llmState{req: &llm.Request{Model: model}}}
		b.record(sc, &llm.Result{Usage: api.Usage{PromptTokens: prompt, CompletionTokens: completion}}, nil, time.Now())
	}
	charge("alice", "s1", "m1", 10, 1)
	charge("alice", "s1", "m2", 20, 2)
	charge("alice", "s2", "m1", 30, 3)
	charge("bob", "s1", "m1", 40, 4)
	charge("bob", "s3", "m2", 50, 5)
	c := func(calls, prompt, completion int64) api.UsageCounters {
		return api.UsageCounters{Calls: calls, PromptTokens: prompt, CompletionTokens: completion, TotalTokens: prompt + completion}
	}
	for _, tc := range []struct {
		name     string
		f        UsageFilter
		total    api.UsageCounters
		agents   map[string]api.UsageCounters
		sessions map[string]api.UsageCounters
		models   map[string]api.UsageCounters
	}{
		{"none", UsageFilter{}, c(5, 150, 15),
			map[string]api.UsageCounters{"alice": c(3, 60, 6), "bob": c(2, 90, 9)},
			map[string]api.UsageCounters{"s1": c(3, 70, 7), "s2": c(1, 30, 3), "s3": c(1, 50, 5)},
			map[string]api.UsageCounters{"m1": c(3, 80, 8), "m2": c(2, 70, 7)}},
		{"agent", UsageFilter{Agent: "alice"}, c(3, 60, 6),
			map[string]api.UsageCounters{"alice": c(3, 60, 6)},
			map[string]api.UsageCounters{"s1": c(2, 30, 3), "s2": c(1, 30, 3)},
			map[string]api.UsageCounters{"m1": c(2, 40, 4), "m2": c(1, 20, 2)}},
		{"session", UsageFilter{Session: "s1"}, c(3, 70, 7),
			map[string]api.UsageCounters{"alice": c(2, 30, 3), "bob": c(1, 40, 4)},
			map[string]api.UsageCounters{"s1": c(3, 70, 7)},
			map[string]api.UsageCounters{"m1": c(2, 50, 5), "m2": c(1, 20, 2)}},
		{"both", UsageFilter{Agent: "bob", Session: "s1"}, c(1, 40, 4),
			map[string]api.UsageCounters{"bob": c(1, 40, 4)},
			map[string]api.UsageCounters{"s1": c(1, 40, 4)},
			map[string]api.UsageCounters{"m1": c(1, 40, 4)}},
		{"unknown agent", UsageFilter{Agent: "carol"}, api.UsageCounters{}, nil, nil, nil},
		{"agent not in session", UsageFilter{Agent: "bob", Session: "s2"}, api.UsageCounters{}, nil, nil, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := k.Usage(tc.f)
			if r.Total != tc.total {
				t.Errorf("total %+v, want %+v", r.Total, tc.total)
			}
			for what, p := range map[string][2]map[string]api.UsageCounters{
				"agents": {r.Agents, tc.agents}, "sessions": {r.Sessions, tc.sessions}, "models": {r.Models, tc.models},
			} {
				got, want := p[0], p[1]
				if len(got) != len(want) {
					t.Errorf("%s %v, want %v", what, got, want)
				}
				for key, w := range want {
					if got[key] != w {
						t.Errorf("%s[%s] %+v, want %+v", what, key, got[key], w)
					}
				}
			}
		})
	}
}
