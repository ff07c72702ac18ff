package kernel

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aios-go/aios/api"
	"github.com/aios-go/aios/internal/llm"
	"github.com/aios-go/aios/internal/llm/anthropic"
	"github.com/aios-go/aios/internal/llm/openai"
	"github.com/aios-go/aios/internal/testfakes/fakeanthropic"
	"github.com/aios-go/aios/internal/testfakes/fakegen"
	"github.com/aios-go/aios/internal/testfakes/fakeopenai"
)

// upstream is one fake OpenAI-compatible server and the core that talks to it.
type upstream struct {
	srv  *fakeopenai.Server
	core *openai.Core
}

func newUpstream(t *testing.T, fopts fakeopenai.Options, ocfg openai.Config) upstream {
	t.Helper()
	srv := fakeopenai.New(fopts)
	t.Cleanup(srv.Close)
	ocfg.BaseURL = srv.URL()
	ocfg.Name = fakeopenai.DefaultModel
	if ocfg.MaxInflight == 0 {
		ocfg.MaxInflight = 4
	}
	core, err := openai.New(ocfg)
	if err != nil {
		t.Fatal(err)
	}
	return upstream{srv, core}
}

func (u upstream) config(r Resilience) CoreConfig {
	return CoreConfig{Model: "m", Backend: "vllm", Core: u.core, Resilience: r}
}

func coreState(k *Kernel, i int) api.LLMCoreStatus { return k.Status().LLMCores[i] }

// waitFor polls cond, failing the test after a generous bound that only catches a hang.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

func TestBackoffDelays(t *testing.T) {
	p := RetryPolicy{Backoff: 100 * time.Millisecond, MaxBackoff: time.Second}.withDefaults()
	for n, want := range []time.Duration{100, 200, 400, 800, 1000, 1000} {
		want *= time.Millisecond
		for range 50 {
			if d := p.delay(n); d < want/2 || d > want {
				t.Fatalf("retry %d waited %v, want within [%v, %v]", n, d, want/2, want)
			}
		}
	}
}

// A 429 with Retry-After: the core is held out for that long, so neither the retry nor
// a call arriving meanwhile reaches the upstream before the provider asked; then both
// succeed.
func TestRateLimitRetryAfterHonoured(t *testing.T) {
	u := newUpstream(t, fakeopenai.Options{}, openai.Config{})
	k := newKernel(t, Options{}, u.config(Resilience{Retry: RetryPolicy{MaxRetries: 2}}))
	u.srv.InjectFault(fakeopenai.Fault{Kind: fakeopenai.FaultRateLimited, RetryAfter: time.Second})

	start := time.Now()
	first := make(chan error, 1)
	go func() {
		_, _, err := k.CallLLM(t.Context(), LLMCall{Agent: "a", Request: llm.Request{Messages: userMsg("x"), MaxTokens: 4}})
		first <- err
	}()
	waitFor(t, "the 429", func() bool { return coreState(k, 0).State == "cooling" })
	second := make(chan error, 1)
	go func() {
		_, _, err := k.CallLLM(t.Context(), LLMCall{Agent: "b", Request: llm.Request{Messages: userMsg("y"), MaxTokens: 4}})
		second <- err
	}()
	time.Sleep(300 * time.Millisecond)
	if n := u.srv.Requests(); n != 1 {
		t.Fatalf("%d requests reached the upstream inside its Retry-After", n)
	}
	for _, c := range []chan error{first, second} {
		if err := <-c; err != nil {
			t.Fatal(err)
		}
	}
	if el := time.Since(start); el < time.Second {
		t.Fatalf("both calls done after %v, before the Retry-After of 1s", el)
	}
	st := coreState(k, 0)
	if st.State != "ok" || st.Retried != 1 || st.Failed != 0 || st.Completed != 2 || u.srv.Requests() != 3 {
		t.Fatalf("status %+v, %d requests", st, u.srv.Requests())
	}
}

// A Retry-After longer than the call's deadline fails the call at once, typed, with the
// wait the provider asked for, rather than holding it until it times out.
func TestRetryAfterPastDeadlineFailsFast(t *testing.T) {
	u := newUpstream(t, fakeopenai.Options{}, openai.Config{})
	k := newKernel(t, Options{}, u.config(Resilience{Retry: RetryPolicy{MaxRetries: 3}}))
	u.srv.InjectFault(fakeopenai.Fault{Kind: fakeopenai.FaultRateLimited, RetryAfter: 30 * time.Second})
	start := time.Now()
	_, sc, err := k.CallLLM(t.Context(), LLMCall{Agent: "a", Timeout: 2 * time.Second, Request: llm.Request{Messages: userMsg("x")}})
	var ae *api.Error
	if !errors.As(err, &ae) || ae.Kind != api.BackendRateLimited || ae.RetryAfter != 30*time.Second || !strings.Contains(ae.Message, "deadline") {
		t.Fatalf("err = %#v", err)
	}
	if el := time.Since(start); el > time.Second || sc.State() != StateFailed {
		t.Fatalf("state %s after %v", sc.State(), el)
	}
}

// A storm of 500s on one of two cores serving the model: every call succeeds, the
// failing core is taken out, and the healthy one serves the rest. No syscall is lost.
func TestServerErrorStormFailsOver(t *testing.T) {
	bad := newUpstream(t, fakeopenai.Options{}, openai.Config{})
	good := newUpstream(t, fakeopenai.Options{TokenDelay: 200 * time.Microsecond}, openai.Config{})
	r := Resilience{
		Retry:   RetryPolicy{MaxRetries: 3, Backoff: 5 * time.Millisecond, MaxBackoff: 20 * time.Millisecond},
		Breaker: BreakerPolicy{Threshold: 3, Cooldown: time.Minute},
	}
	k := newKernel(t, Options{}, bad.config(r), good.config(r))
	bad.srv.InjectFault(fakeopenai.Fault{Kind: fakeopenai.FaultInternal, Count: 1 << 20})

	const calls = 60
	var wg sync.WaitGroup
	errs := make(chan error, calls)
	for i := range calls {
		wg.Go(func() {
			msgs := userMsg(fmt.Sprint("question ", i))
			var streamed strings.Builder
			res, sc, err := k.CallLLM(t.Context(), LLMCall{Agent: fmt.Sprint("agent", i%7), Request: llm.Request{Messages: msgs, MaxTokens: 6},
				Emit: func(d llm.Delta) { streamed.WriteString(d.Text) }})
			want := fakeopenai.Text(fakeopenai.Seed(msgs), 0, 6)
			switch {
			case err != nil:
				errs <- fmt.Errorf("call %d: %v", i, err)
			case res.Text != want || streamed.String() != want || sc.State() != StateDone:
				errs <- fmt.Errorf("call %d: text %q streamed %q state %s", i, res.Text, streamed.String(), sc.State())
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	st := k.Status()
	b, g := st.LLMCores[0], st.LLMCores[1]
	if b.State != "open" || b.Completed != 0 || b.Failed != 0 || g.Completed != calls || g.Failed != 0 {
		t.Fatalf("cores after the storm: bad %+v good %+v", b, g)
	}
	if bad.srv.Requests() < 3 || int(b.Retried) != bad.srv.Requests() {
		t.Fatalf("bad core saw %d requests, %d retried", bad.srv.Requests(), b.Retried)
	}
}

// A core that failed enough to be taken out is probed after its cool-down and, healthy
// again, gets calls again.
func TestRecoveredCoreUsedAgain(t *testing.T) {
	a := newUpstream(t, fakeopenai.Options{TokenDelay: time.Millisecond}, openai.Config{MaxInflight: 2})
	b := newUpstream(t, fakeopenai.Options{TokenDelay: time.Millisecond}, openai.Config{MaxInflight: 2})
	r := Resilience{
		Retry:   RetryPolicy{MaxRetries: 3, Backoff: time.Millisecond, MaxBackoff: 2 * time.Millisecond},
		Breaker: BreakerPolicy{Threshold: 3, Cooldown: 100 * time.Millisecond},
	}
	k := newKernel(t, Options{}, a.config(r), b.config(r))
	a.srv.InjectFault(fakeopenai.Fault{Kind: fakeopenai.FaultOverloaded, Count: 3})

	burst := func(n int) {
		t.Helper()
		var wg sync.WaitGroup
		errs := make(chan error, n)
		for i := range n {
			wg.Go(func() {
				_, _, err := k.CallLLM(t.Context(), LLMCall{Agent: "a", Request: llm.Request{Messages: userMsg(fmt.Sprint("q", i)), MaxTokens: 5}})
				errs <- err
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
	}
	// Until the three faults are spent on the first core its breaker opens; every call
	// still succeeds, on the second core.
	for coreState(k, 0).State != "open" {
		if a.srv.Requests() >= 3 {
			t.Fatalf("three failures did not open the breaker: %+v", coreState(k, 0))
		}
		burst(1)
	}
	if st := coreState(k, 0); st.Completed != 0 || st.Failed != 0 {
		t.Fatalf("after the failures: %+v", st)
	}
	waitFor(t, "the probe to bring the core back", func() bool { return coreState(k, 0).State == "ok" })
	// Eight overlapping calls need both cores' two slots each: the recovered core serves.
	burst(8)
	if st := coreState(k, 0); st.Completed == 0 || st.State != "ok" || st.Failed != 0 {
		t.Fatalf("recovered core not used: %+v", st)
	}
}

// A failed probe keeps the core out and waits longer before the next one.
func TestFailedProbeKeepsCoreOut(t *testing.T) {
	var healthy sync.Mutex
	ok := false
	flaky := &funcCore{cap: llm.Capacity{MaxInflight: 1},
		gen: func(ctx context.Context, req *llm.Request, emit func(llm.Delta)) (*llm.Result, error) {
			return nil, api.Errorf(api.BackendUnavailable, "down")
		}}
	probed := 0
	flakyHealth := &healthCore{funcCore: flaky, health: func() error {
		healthy.Lock()
		defer healthy.Unlock()
		probed++
		if !ok {
			return api.Errorf(api.BackendUnavailable, "still down")
		}
		return nil
	}}
	good := &funcCore{cap: llm.Capacity{MaxInflight: 1}, gen: func(ctx context.Context, req *llm.Request, emit func(llm.Delta)) (*llm.Result, error) {
		return &llm.Result{Text: "ok", FinishReason: "stop"}, nil
	}}
	r := Resilience{Retry: RetryPolicy{MaxRetries: 1, Backoff: time.Millisecond}, Breaker: BreakerPolicy{Threshold: 1, Cooldown: 20 * time.Millisecond, MaxCooldown: 40 * time.Millisecond}}
	k := newKernel(t, Options{}, CoreConfig{Model: "m", Backend: "t", Core: flakyHealth, Resilience: r}, CoreConfig{Model: "m", Backend: "t", Core: good, Resilience: r})
	if _, _, err := k.CallLLM(t.Context(), LLMCall{Agent: "a", Request: llm.Request{Messages: userMsg("x")}}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "two failed probes", func() bool { healthy.Lock(); defer healthy.Unlock(); return probed >= 2 })
	if st := coreState(k, 0); st.State != "open" {
		t.Fatalf("core let back in after failed probes: %+v", st)
	}
	healthy.Lock()
	ok = true
	healthy.Unlock()
	waitFor(t, "a good probe", func() bool { return coreState(k, 0).State == "ok" })
}

type healthCore struct {
	*funcCore
	health func() error
}

func (h *healthCore) Health(context.Context) error { return h.health() }

// The last core serving a model is never taken out: calls keep retrying and end typed.
func TestLastCoreStaysInAndRetriesEnd(t *testing.T) {
	u := newUpstream(t, fakeopenai.Options{}, openai.Config{})
	k := newKernel(t, Options{}, u.config(Resilience{
		Retry:   RetryPolicy{MaxRetries: 2, Backoff: time.Millisecond},
		Breaker: BreakerPolicy{Threshold: 1},
	}))
	u.srv.InjectFault(fakeopenai.Fault{Kind: fakeopenai.FaultInternal, Count: 100})
	_, sc, err := k.CallLLM(t.Context(), LLMCall{Agent: "a", Request: llm.Request{Messages: userMsg("x")}})
	var ae *api.Error
	if !errors.As(err, &ae) || ae.Kind != api.BackendUnavailable || !strings.Contains(ae.Message, "gave up after 3 attempts") || sc.State() != StateFailed {
		t.Fatalf("err %v state %s", err, sc.State())
	}
	if st := coreState(k, 0); st.State != "ok" || u.srv.Requests() != 3 || st.Failed != 1 || st.Retried != 2 {
		t.Fatalf("status %+v after %d requests", st, u.srv.Requests())
	}
}

// Rejected requests are the caller's fault: not retried, and no mark on the core.
func TestRejectedNotRetried(t *testing.T) {
	u := newUpstream(t, fakeopenai.Options{}, openai.Config{})
	k := newKernel(t, Options{}, u.config(Resilience{Retry: RetryPolicy{MaxRetries: 3}, Breaker: BreakerPolicy{Threshold: 1}}))
	u.srv.InjectFault(fakeopenai.Fault{Kind: fakeopenai.FaultStatus, Status: 400, Message: "context too long"})
	_, _, err := k.CallLLM(t.Context(), LLMCall{Agent: "a", Request: llm.Request{Messages: userMsg("x")}})
	if api.KindOf(err) != api.BackendRejected || u.srv.Requests() != 1 {
		t.Fatalf("err %v after %d requests", err, u.srv.Requests())
	}
}

// A stream that drops halfway is resumed from the text the agent already has, on a core
// that continues partial answers: the agent receives one complete answer, streamed once.
func TestMidStreamDisconnectResumed(t *testing.T) {
	u := newUpstream(t, fakeopenai.Options{TokenDelay: 100 * time.Microsecond}, openai.Config{Resume: true})
	k := newKernel(t, Options{}, u.config(Resilience{Retry: RetryPolicy{MaxRetries: 2, Backoff: time.Millisecond}}))
	msgs := userMsg("tell me a long story")
	want := fakeopenai.Text(fakeopenai.Seed(msgs), 0, 12)
	u.srv.InjectFault(fakeopenai.Fault{Kind: fakeopenai.FaultDisconnect, AfterTokens: 5})

	var streamed strings.Builder
	res, sc, err := k.CallLLM(t.Context(), LLMCall{Agent: "a", Request: llm.Request{Messages: msgs, MaxTokens: 12},
		Emit: func(d llm.Delta) { streamed.WriteString(d.Text) }})
	if err != nil {
		t.Fatal(err)
	}
	if res.Text != want || streamed.String() != want || res.FinishReason != "length" || sc.State() != StateDone {
		t.Fatalf("text %q streamed %q finish %q; want %q", res.Text, streamed.String(), res.FinishReason, want)
	}
	if res.Usage.CompletionTokens != 12 {
		t.Fatalf("usage %+v: the resumed call's output is 12 tokens", res.Usage)
	}
	var body struct {
		Messages             []api.Message `json:"messages"`
		ContinueFinalMessage bool          `json:"continue_final_message"`
		MaxTokens            int           `json:"max_tokens"`
	}
	if err := json.Unmarshal(u.srv.LastBody(), &body); err != nil {
		t.Fatal(err)
	}
	last := body.Messages[len(body.Messages)-1]
	if u.srv.Requests() != 2 || !body.ContinueFinalMessage || last.Role != "assistant" ||
		string(last.Content) != fakeopenai.Text(fakeopenai.Seed(msgs), 0, 5) || body.MaxTokens != 7 {
		t.Fatalf("resume request %+v after %d requests", body, u.srv.Requests())
	}
}

// On a core that cannot continue a partial answer, a drop after text reached the agent
// ends typed, never truncated; a drop before anything reached it restarts.
func TestDisconnectWithoutResume(t *testing.T) {
	u := newUpstream(t, fakeopenai.Options{}, openai.Config{})
	k := newKernel(t, Options{}, u.config(Resilience{Retry: RetryPolicy{MaxRetries: 3, Backoff: time.Millisecond}}))

	u.srv.InjectFault(fakeopenai.Fault{Kind: fakeopenai.FaultDisconnect, AfterTokens: 3})
	res, sc, err := k.CallLLM(t.Context(), LLMCall{Agent: "a", Request: llm.Request{Messages: userMsg("x"), MaxTokens: 8}, Emit: func(llm.Delta) {}})
	var ae *api.Error
	if !errors.As(err, &ae) || ae.Kind != api.BackendUnavailable || !strings.Contains(ae.Message, "continue a partial answer") || res != nil || sc.State() != StateFailed {
		t.Fatalf("res %+v err %v", res, err)
	}
	if u.srv.Requests() != 1 {
		t.Fatalf("%d requests: a partial answer was restarted", u.srv.Requests())
	}

	u.srv.InjectFault(fakeopenai.Fault{Kind: fakeopenai.FaultDisconnect, AfterTokens: 0})
	res, _, err = k.CallLLM(t.Context(), LLMCall{Agent: "a", Request: llm.Request{Messages: userMsg("y"), MaxTokens: 8}})
	if err != nil || len(strings.Fields(res.Text)) != 8 || u.srv.Requests() != 3 {
		t.Fatalf("restart: %+v %v after %d requests", res, err, u.srv.Requests())
	}
}

// A call sent back, with text to continue, to a core that cannot continue it (a mixed
// fleet) ends typed instead of starting over or failing as a kernel bug.
func TestResumeOnNonResumableCoreEndsTyped(t *testing.T) {
	e := &coreEntry{cfg: CoreConfig{Model: "m", Backend: "ollama"}}
	if err := cannotResume(e, "abc"); api.KindOf(err) != api.BackendUnavailable {
		t.Fatalf("%v", err)
	}
}

// The caller leaving while its call backs off ends it at once.
func TestCancelDuringBackoff(t *testing.T) {
	u := newUpstream(t, fakeopenai.Options{}, openai.Config{})
	k := newKernel(t, Options{}, u.config(Resilience{Retry: RetryPolicy{MaxRetries: 3, Backoff: time.Minute, MaxBackoff: time.Minute}}))
	u.srv.InjectFault(fakeopenai.Fault{Kind: fakeopenai.FaultInternal})
	cause := errors.New("agent stopped")
	ctx, cancel := context.WithCancelCause(t.Context())
	sc, err := k.SubmitLLM(ctx, LLMCall{Agent: "a", Request: llm.Request{Messages: userMsg("x")}})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the first failure", func() bool { return coreState(k, 0).Retried == 1 })
	cancel(cause)
	select {
	case <-sc.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("the call stayed in backoff after its caller left")
	}
	if _, err := sc.Result(); !errors.Is(err, cause) || sc.State() != StateCancelled {
		t.Fatalf("state %s err %v", sc.State(), err)
	}
	if st := coreState(k, 0); st.Inflight != 0 {
		t.Fatalf("the slot was not released: %+v", st)
	}
}

// Tokens are charged to agents, sessions and models as the backend reported them.
func TestUsageAccounting(t *testing.T) {
	u := newUpstream(t, fakeopenai.Options{}, openai.Config{})
	k := newKernel(t, Options{}, u.config(Resilience{}))
	want := map[string]api.UsageCounters{}
	sessions := map[string]api.UsageCounters{}
	for i, c := range []struct{ agent, session string }{{"alice", "s1"}, {"alice", "s1"}, {"alice", "s2"}, {"bob", ""}} {
		msgs := userMsg(fmt.Sprint("question number ", i))
		if i == 1 {
			msgs = append(userMsg("question number 0"), api.Message{Role: "assistant", Content: "a"}, api.Message{Role: "user", Content: "more"})
		}
		res, _, err := k.CallLLM(t.Context(), LLMCall{Agent: c.agent, Program: c.session, Request: llm.Request{Messages: msgs, MaxTokens: 3 + i}})
		if err != nil {
			t.Fatal(err)
		}
		add := func(m map[string]api.UsageCounters, key string) {
			w := m[key]
			w.Calls++
			w.PromptTokens += int64(res.Usage.PromptTokens)
			w.CompletionTokens += int64(res.Usage.CompletionTokens)
			w.TotalTokens += int64(res.Usage.TotalTokens)
			w.CachedTokens += int64(res.Usage.PromptTokensDetails.CachedTokens)
			m[key] = w
		}
		add(want, c.agent)
		session := c.session
		if session == "" {
			session = c.agent
		}
		add(sessions, session)
	}
	u.srv.InjectFault(fakeopenai.Fault{Kind: fakeopenai.FaultInternal})
	if _, _, err := k.CallLLM(t.Context(), LLMCall{Agent: "bob", Request: llm.Request{Messages: userMsg("x")}}); err == nil {
		t.Fatal("the faulted call succeeded")
	}
	w := want["bob"]
	w.Calls++
	w.Failed++
	want["bob"] = w
	s := sessions["bob"]
	s.Calls++
	s.Failed++
	sessions["bob"] = s

	r := k.Usage(UsageFilter{})
	for a, c := range want {
		if r.Agents[a] != c {
			t.Errorf("agent %s: %+v, want %+v", a, r.Agents[a], c)
		}
	}
	for s, c := range sessions {
		if r.Sessions[s] != c {
			t.Errorf("session %s: %+v, want %+v", s, r.Sessions[s], c)
		}
	}
	if r.Total.Calls != 5 || r.Total.Failed != 1 || r.Models["m"] != r.Total || r.Agents["alice"].CachedTokens == 0 {
		t.Fatalf("report %+v", r)
	}
	if only := k.Usage(UsageFilter{Agent: "alice"}); len(only.Agents) != 1 || len(only.Models) != 1 || len(only.Sessions) != 2 || only.Total != want["alice"] {
		t.Fatalf("filtered %+v", only)
	}
	if k.UsageOf("alice") != want["alice"] {
		t.Fatalf("UsageOf %+v", k.UsageOf("alice"))
	}
}

func TestSessionTableBounded(t *testing.T) {
	b := newUsageBook(time.Now())
	for i := range maxSessions + 5 {
		sc := &Syscall{Agent: "a", Program: fmt.Sprint("s", i), llmState: &llmState{req: &llm.Request{Model: "m"}}}
		b.record(sc, &llm.Result{}, nil, time.Unix(int64(i), 0))
	}
	if len(b.sessions) != maxSessions || b.sessions["s0"] != nil || b.total.Calls != maxSessions+5 {
		t.Fatalf("%d sessions, total %+v", len(b.sessions), b.total)
	}
}

// Discovery asks each backend what it serves: Ollama through /api/tags, OpenAI-compatible
// servers through /v1/models, and says so when a backend cannot tell.
func TestDiscover(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/tags", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, `{"models":[{"name":"llama3.2:latest","modified_at":"2026-10-01T00:00:00Z"},{"name":"qwen2.5:7b","modified_at":"2026-10-02T00:00:00Z"}]}`)
	})
	ollama := httptest.NewServer(mux)
	t.Cleanup(ollama.Close)
	oc, err := openai.New(openai.Config{Name: "llama3.2", BaseURL: ollama.URL})
	if err != nil {
		t.Fatal(err)
	}
	vllm := newUpstream(t, fakeopenai.Options{Model: fakeopenai.DefaultModel}, openai.Config{})
	plain := &funcCore{gen: func(context.Context, *llm.Request, func(llm.Delta)) (*llm.Result, error) { return nil, nil }}
	k := newKernel(t, Options{},
		CoreConfig{Model: "llama3.2", Backend: "ollama", Core: oc},
		CoreConfig{Model: "m", Backend: "vllm", Core: vllm.core},
		CoreConfig{Model: "p", Backend: "test", Core: plain})
	d := k.Discover(t.Context())
	if len(d.Cores) != 3 {
		t.Fatalf("%+v", d)
	}
	if c := d.Cores[0]; c.Error != "" || len(c.Models) != 2 || c.Models[1].ID != "qwen2.5:7b" {
		t.Fatalf("ollama: %+v", c)
	}
	if c := d.Cores[1]; c.Error != "" || len(c.Models) != 1 || c.Models[0].ID != fakeopenai.DefaultModel {
		t.Fatalf("vllm: %+v", c)
	}
	if c := d.Cores[2]; c.Error == "" || len(c.Models) != 0 {
		t.Fatalf("plain: %+v", c)
	}
}

// The same through the Anthropic backend: a Claude stream that drops is continued from a
// prefill of what the agent already has.
func TestAnthropicDropResumedByPrefill(t *testing.T) {
	up := fakeanthropic.New(fakeanthropic.Options{TokenDelay: 100 * time.Microsecond})
	t.Cleanup(up.Close)
	core, err := anthropic.New(anthropic.Config{Name: "claude-old", BaseURL: up.URL(), Resume: true})
	if err != nil {
		t.Fatal(err)
	}
	msgs := userMsg("tell me a long story")
	full, err := core.Generate(t.Context(), &llm.Request{Messages: msgs, MaxTokens: 12}, nil)
	if err != nil {
		t.Fatal(err)
	}
	k := newKernel(t, Options{}, CoreConfig{Model: "claude", Backend: "anthropic", Core: core,
		Resilience: Resilience{Retry: RetryPolicy{MaxRetries: 2, Backoff: time.Millisecond}}})
	up.InjectFault(fakegen.Fault{Kind: fakegen.Disconnect, AfterTokens: 4})
	var streamed strings.Builder
	res, _, err := k.CallLLM(t.Context(), LLMCall{Agent: "a", Request: llm.Request{Messages: msgs, MaxTokens: 12},
		Emit: func(d llm.Delta) { streamed.WriteString(d.Text) }})
	if err != nil {
		t.Fatal(err)
	}
	if res.Text != full.Text || streamed.String() != full.Text || up.Requests() != 3 {
		t.Fatalf("text %q streamed %q after %d requests; want %q", res.Text, streamed.String(), up.Requests(), full.Text)
	}
}
