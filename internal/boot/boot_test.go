package boot

import (
	"context"
	"net/http"
	"net/http/httptest"

	"github.com/aios-go/aios/api"
	"github.com/aios-go/aios/internal/kernel"
	"github.com/aios-go/aios/internal/storage"
	"github.com/aios-go/aios/internal/testfakes/fakeanthropic"
	"github.com/aios-go/aios/internal/testfakes/fakegemini"
	"github.com/aios-go/aios/internal/testfakes/fakegen"
	"github.com/aios-go/aios/internal/testleak"
	"go.uber.org/goleak"
	"strings"
	"testing"
	"time"

	"github.com/aios-go/aios/internal/config"
	"github.com/aios-go/aios/internal/llm"
	"github.com/aios-go/aios/internal/llm/sim"
	"github.com/aios-go/aios/internal/llm/simcore"
)

func TestBuildAppliesSchedulerConfig(t *testing.T) {
	cfg := config.Defaults()
	cfg.DataDir = t.TempDir()
	cfg.LLMs.Models = []config.Model{{Name: "s", Backend: "sim", Cores: 2, Speed: 100}}
	cfg.Scheduler.Policy = "plas"
	cfg.Scheduler.Routing = "cache-aware"
	on := true
	cfg.Scheduler.WorkingSet.Enabled = &on
	cfg.Scheduler.PLAS.Queues = 3
	sys, err := Build(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	k := sys.Kernel
	defer k.Shutdown(context.Background())
	if k.Policy() != "plas" || len(k.Status().LLMCores) != 2 {
		t.Fatalf("policy %q, cores %d", k.Policy(), len(k.Status().LLMCores))
	}
	res, _, err := k.CallLLM(context.Background(), kernel.LLMCall{Agent: "a", Program: "p", Request: userReq("hello")})
	if err != nil || res.Text == "" {
		t.Fatalf("%v %+v", err, res)
	}

	cfg.Scheduler.Routing = "random"
	if _, err := Build(cfg, nil); err == nil || !strings.Contains(err.Error(), "routing") {
		t.Fatalf("unknown routing: %v", err)
	}
	cfg.Scheduler.Routing = ""
	cfg.Scheduler.PLAS.QuantumRatio = 0.5
	if _, err := Build(cfg, nil); err == nil {
		t.Fatal("a quantum ratio below 1 was accepted")
	}
	cfg.Scheduler.PLAS.QuantumRatio = 0
	cfg.Scheduler.Policy = "psjf"
	cfg.Scheduler.PSJF.ProgramAging = -1
	if _, err := Build(cfg, nil); err == nil {
		t.Fatal("a negative psjf program_aging was accepted")
	}
	cfg.Scheduler.PSJF.ProgramAging = 0
	cfg.Scheduler.Policy = "slo"
	cfg.Scheduler.SLOBound = -1
	if _, err := Build(cfg, nil); err == nil || !strings.Contains(err.Error(), "bound") {
		t.Fatalf("a negative slo_bound: %v", err)
	}
}

// With no policy configured the LLM module runs the default, psjf; the service
// modules stay fifo.
func TestBuildDefaultPolicy(t *testing.T) {
	cfg := config.Defaults()
	cfg.DataDir = t.TempDir()
	cfg.LLMs.Models = []config.Model{{Name: "s", Backend: "sim", Cores: 1, Speed: 100}}
	sys, err := Build(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer sys.Kernel.Shutdown(context.Background())
	if got := sys.Kernel.Policy(); got != "psjf" {
		t.Fatalf("default LLM policy %q, want psjf", got)
	}
	res, _, err := sys.Kernel.CallLLM(context.Background(), kernel.LLMCall{Agent: "a", Program: "p", Request: userReq("hello")})
	if err != nil || res.Text == "" {
		t.Fatalf("%v %+v", err, res)
	}
}

func userReq(s string) llm.Request {
	return llm.Request{Messages: []api.Message{{Role: "user", Content: api.Content(s)}}, MaxTokens: 8}
}

// Build wires the Anthropic and Gemini backends with their limits and retries: a call
// through each reaches its fake provider, and a rate-limited one is retried.
func TestBuildProviderBackends(t *testing.T) {
	ant := fakeanthropic.New(fakeanthropic.Options{Model: "claude-test", APIKey: "ak"})
	t.Cleanup(ant.Close)
	gem := fakegemini.New(fakegemini.Options{Model: "gemini-test", APIKey: "gk"})
	t.Cleanup(gem.Close)
	retries, none := 2, 0
	cfg := config.Defaults()
	cfg.DataDir = t.TempDir()
	cfg.LLMs.Models = []config.Model{
		{Name: "claude", UpstreamModel: "claude-test", Backend: "anthropic", Hostname: ant.URL(), APIKey: "ak", Cores: 1,
			TPM: 100_000, RPM: 600, MaxRetries: &retries, RetryBackoff: time.Millisecond},
		{Name: "gemini", UpstreamModel: "gemini-test", Backend: "gemini", Hostname: gem.URL(), APIKey: "gk", Cores: 2,
			MaxRetries: &none},
	}
	sys, err := Build(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	k := sys.Kernel
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		k.Shutdown(ctx)
	})
	ant.InjectFault(fakegenFault429())
	for _, model := range []string{"claude", "gemini"} {
		res, _, err := k.CallLLM(t.Context(), kernel.LLMCall{Agent: "a", Request: llm.Request{Model: model, Messages: []api.Message{{Role: "user", Content: "hello"}}, MaxTokens: 5}})
		if err != nil || len(strings.Fields(res.Text)) != 5 || res.FinishReason != "length" {
			t.Fatalf("%s: %+v %v", model, res, err)
		}
	}
	if ant.Requests() != 2 || gem.Requests() != 1 {
		t.Fatalf("requests: anthropic %d gemini %d", ant.Requests(), gem.Requests())
	}
	d := k.Discover(t.Context())
	if d.Cores[0].Models[0].ID != "claude-test" || d.Cores[1].Models[0].ID != "gemini-test" {
		t.Fatalf("discovered %+v", d)
	}
	if _, err := Build(config.Config{LLMs: config.LLMs{Models: []config.Model{{Name: "g", Backend: "gemini", Cores: 1, Resume: &[]bool{true}[0]}}}}, nil); err == nil {
		t.Fatal("gemini with resume: true was accepted")
	}
}

func fakegenFault429() fakegen.Fault {
	return fakegen.Fault{Kind: fakegen.RateLimited, RetryAfter: time.Second}
}

func TestMain(m *testing.M) { goleak.VerifyTestMain(m, testleak.Ignore()...) }

// The working set is on by default wherever every core's KV capacity is known: the
// simulator knows its own, a vLLM server tells it on /metrics (vllm:cache_config_info).
// Where it is unknown the default leaves it off, and asking for it fails at start-up.
func TestWorkingSetDefaultFollowsKnownCapacity(t *testing.T) {
	eng, err := sim.NewServer(sim.Config{Profile: "test", Speed: 100, Model: "v"})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(eng.Handler())
	t.Cleanup(func() { ts.Close(); eng.Close() })
	noMetrics := httptest.NewServer(http.NotFoundHandler())
	t.Cleanup(noMetrics.Close)
	p, _ := sim.LookupProfile("test")

	build := func(enabled *bool, models ...config.Model) (*System, error) {
		cfg := config.Defaults()
		cfg.DataDir = t.TempDir()
		cfg.Storage.Disabled = true
		cfg.Scheduler.WorkingSet.Enabled = enabled
		cfg.LLMs.Models = models
		for i := range cfg.LLMs.Models {
			cfg.LLMs.Models[i].Cores = max(cfg.LLMs.Models[i].Cores, 1)
		}
		sys, err := Build(cfg, nil)
		if err == nil {
			t.Cleanup(func() { _ = sys.Kernel.Shutdown(context.Background()) })
		}
		return sys, err
	}
	on, off := true, false
	simModel := config.Model{Name: "s", Backend: "sim", Speed: 100}
	vllm := config.Model{Name: "v", Backend: "vllm", Hostname: ts.URL + "/v1", Cores: 2}
	blind := config.Model{Name: "b", Backend: "vllm", Hostname: noMetrics.URL + "/v1"}

	for _, tc := range []struct {
		name    string
		enabled *bool
		models  []config.Model
		wantOn  bool
		wantErr bool
	}{
		{"sim, default", nil, []config.Model{simModel}, true, false},
		{"vllm learned, default", nil, []config.Model{vllm}, true, false},
		{"vllm learned, off", &off, []config.Model{vllm}, false, false},
		{"unknown, default", nil, []config.Model{simModel, blind}, false, false},
		{"unknown, required", &on, []config.Model{simModel, blind}, false, true},
		{"configured, required", &on, []config.Model{func() config.Model { b := blind; b.MaxTokensInflight = 4096; return b }()}, true, false},
	} {
		sys, err := build(tc.enabled, tc.models...)
		if tc.wantErr {
			if err == nil || !strings.Contains(err.Error(), "max_tokens_inflight") {
				t.Errorf("%s: want a start-up error saying what to set, got %v", tc.name, err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if _, got := sys.Kernel.WorkingSet(); got != tc.wantOn {
			t.Errorf("%s: working set on = %v, want %v", tc.name, got, tc.wantOn)
		}
		if tc.name == "vllm learned, default" {
			// Two replicas share the engine's cache.
			for _, c := range sys.Kernel.Status().LLMCores {
				if want := p.NumBlocks() * p.BlockSize / 2; c.MaxTokensInflight != want {
					t.Errorf("learned capacity %d, want %d", c.MaxTokensInflight, want)
				}
			}
		}
	}
}

// Fair shares are shares of the working set: asking for them where it is off, by
// choice or for want of a KV capacity, fails at start-up and says why.
func TestFairShareNeedsWorkingSet(t *testing.T) {
	noMetrics := httptest.NewServer(http.NotFoundHandler())
	t.Cleanup(noMetrics.Close)
	off := false
	for _, tc := range []struct {
		name    string
		enabled *bool
		model   config.Model
		want    string
	}{
		{"off", &off, config.Model{Name: "s", Backend: "sim", Speed: 100, Cores: 1}, "enabled is false"},
		{"unknown capacity", nil, config.Model{Name: "b", Backend: "vllm", Hostname: noMetrics.URL + "/v1", Cores: 1}, "max_tokens_inflight"},
	} {
		cfg := config.Defaults()
		cfg.DataDir = t.TempDir()
		cfg.Storage.Disabled = true
		cfg.Scheduler.WorkingSet.Enabled = tc.enabled
		cfg.Scheduler.WorkingSet.FairShare = true
		cfg.LLMs.Models = []config.Model{tc.model}
		sys, err := Build(cfg, nil)
		if err == nil {
			_ = sys.Kernel.Shutdown(context.Background())
			t.Errorf("%s: started", tc.name)
			continue
		}
		if !strings.Contains(err.Error(), "fair_share") || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v", tc.name, err)
		}
	}
	cfg := config.Defaults()
	cfg.DataDir = t.TempDir()
	cfg.Storage.Disabled = true
	cfg.Scheduler.WorkingSet.FairShare = true
	cfg.Scheduler.WorkingSet.FairLight = 0.6
	cfg.Scheduler.Fair.Weights = map[string]float64{"tenant-a": 2}
	cfg.LLMs.Models = []config.Model{{Name: "s", Backend: "sim", Speed: 100, Cores: 1}}
	sys, err := Build(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sys.Kernel.Shutdown(context.Background()) })
	if ws, on := sys.Kernel.WorkingSet(); !on || !ws.FairShare || ws.FairLight != 0.6 || ws.Weights["tenant-a"] != 2 {
		t.Fatalf("working set %+v on %v, want fair share with fair_light 0.6 and the fair policy's weights", ws, on)
	}
}

// Embeddings from a configured core: the simulated engine's, computed in process, are
// what storage retrieves with; a core whose backend serves none is refused at start.
func TestEmbeddingsFromCore(t *testing.T) {
	cfg := config.Defaults()
	cfg.DataDir = t.TempDir()
	cfg.LLMs.Models = []config.Model{{Name: "s", Backend: "sim", Cores: 1, Speed: 100}}
	cfg.Embeddings.Core = "s"
	e, err := embedder(cfg)
	if err != nil || e.Name() != "sim:sim-embed-1:256" {
		t.Fatalf("embedder %v, %v", e, err)
	}
	sys, err := Build(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer sys.Kernel.Shutdown(context.Background())
	ctx := t.Context()
	for path, text := range map[string]string{"cats.txt": "the cat sat on the warm mat", "tax.txt": "quarterly tax report for the accountant"} {
		if _, err := sys.Storage.Write(ctx, "a", path, strings.NewReader(text)); err != nil {
			t.Fatal(err)
		}
	}
	hits, err := sys.Storage.Retrieve(ctx, "a", storage.Query{Text: "a cat sitting", K: 1})
	if err != nil || len(hits) != 1 || hits[0].Path != "/cats.txt" {
		t.Fatalf("retrieve with sim embeddings: %+v, %v", hits, err)
	}

	cfg.LLMs.Models = append(cfg.LLMs.Models, config.Model{Name: "c", Backend: "anthropic", Hostname: "http://127.0.0.1:1", Cores: 1})
	cfg.Embeddings.Core = "c"
	if _, err := Build(cfg, nil); err == nil || !strings.Contains(err.Error(), "serves no OpenAI-compatible /v1/embeddings") {
		t.Fatalf("anthropic core as embedder: %v", err)
	}
}

// A sim core's kv_offload_gib reaches its engine as a CPU tier of that many GiB of blocks.
func TestSimCoreOffloadTier(t *testing.T) {
	c, err := buildCore(config.Model{Name: "s", Backend: "sim", Profile: "test", Speed: 100, KVOffloadGiB: 1}, true, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	sc, ok := c.(*simcore.Core)
	if !ok {
		t.Fatalf("core %T", c)
	}
	if n := sc.Live().Stats().OffloadCapacityBlocks; n != 512 { // 1 GiB of 2 MiB blocks
		t.Errorf("tier of %d blocks, want 512", n)
	}
}

// The working set's tier marks apply only when every LLM core has a CPU tier.
func TestAllTiered(t *testing.T) {
	cfg := config.Defaults()
	cfg.LLMs.Models = []config.Model{{Name: "a", Backend: "sim", KVOffloadGiB: 8}, {Name: "b", Backend: "sim", KVOffloadGiB: 8}}
	if !allTiered(cfg) {
		t.Error("two tiered sim models: not all tiered")
	}
	cfg.LLMs.Models[1].KVOffloadGiB = 0
	if allTiered(cfg) {
		t.Error("one model without a tier: all tiered")
	}
	cfg.LLMs.Models[1] = config.Model{Name: "b", Backend: "vllm", KVRetention: true, KVOffload: true}
	if !allTiered(cfg) {
		t.Error("a sim model with a tier and a served one declared to have one: not all tiered")
	}
	cfg.LLMs.Models = nil
	if allTiered(cfg) {
		t.Error("no models: all tiered")
	}
}

// A swapping working set over simulated engines with CPU tiers builds, with the tiers'
// copy rate for its warm-ups, and serves calls.
func TestBuildWorkingSetSwap(t *testing.T) {
	cfg := config.Defaults()
	cfg.DataDir = t.TempDir()
	cfg.Storage.Disabled = true
	cfg.Scheduler.WorkingSet.Swap = true
	cfg.LLMs.Models = []config.Model{{Name: "s", Backend: "sim", Speed: 100, Cores: 1, KVOffloadGiB: 1}}
	sys, err := Build(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sys.Kernel.Shutdown(context.Background()) })
	ws, on := sys.Kernel.WorkingSet()
	if !on || !ws.Swap || ws.SwapRate <= 0 {
		t.Fatalf("working set %+v on %v, want swapping with a copy rate", ws, on)
	}
	res, _, err := sys.Kernel.CallLLM(context.Background(), kernel.LLMCall{Agent: "a", Program: "p", Request: userReq("hello")})
	if err != nil || res.Text == "" {
		t.Fatalf("%v %+v", err, res)
	}
}

// A vllm-type model served by aios sim serve, declared to take the hints and to have a
// tier, builds a swapping working set whose core carries the swaps; without those
// declarations its core takes no hint at all.
func TestBuildSwapOverSimServe(t *testing.T) {
	srv, err := sim.NewServer(sim.Config{Profile: "test", Speed: 100, KVOffloadGiB: 1})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(func() { ts.Close(); srv.Close() })
	model := config.Model{Name: srv.Live().Model(), Backend: "vllm", Hostname: ts.URL + "/v1", Cores: 1}

	plain, err := buildCore(model, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := plain.(llm.SessionEnder); ok {
		t.Error("a vllm model without kv_retention takes session hints")
	}
	plain.Close()

	cfg := config.Defaults()
	cfg.DataDir = t.TempDir()
	cfg.Storage.Disabled = true
	cfg.Scheduler.WorkingSet.Swap = true
	model.KVRetention, model.KVOffload = true, true
	cfg.LLMs.Models = []config.Model{model}
	sys, err := Build(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sys.Kernel.Shutdown(context.Background()) })
	if ws, on := sys.Kernel.WorkingSet(); !on || !ws.Swap || !ws.Tier {
		t.Fatalf("working set %+v on %v, want swapping with the tier's marks", ws, on)
	}
	res, _, err := sys.Kernel.CallLLM(context.Background(), kernel.LLMCall{Agent: "a", Program: "p", Request: userReq("hello")})
	if err != nil || res.Text == "" {
		t.Fatalf("%v %+v", err, res)
	}
}
