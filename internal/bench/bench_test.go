package bench

import (
	"context"
	"errors"
	"math"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/aios-go/aios/api"
	"github.com/aios-go/aios/internal/bench/workload"
	"github.com/aios-go/aios/internal/llm"
	"github.com/aios-go/aios/internal/llm/sim"
	"github.com/aios-go/aios/internal/sched"
	"github.com/aios-go/aios/internal/testleak"
)

// The Gemini backend's dependencies start a goroutine for the life of the process.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m, testleak.Ignore()...) }

func TestParseArms(t *testing.T) {
	arms, err := ParseArms("direct, kernel:fifo,kernel:rr+ws")
	if err != nil {
		t.Fatal(err)
	}
	want := []Arm{{Name: "direct"}, {Name: "kernel:fifo", Kernel: true, Policy: "fifo"}, {Name: "kernel:rr+ws", Kernel: true, Policy: "rr", WS: true}}
	if !reflect.DeepEqual(arms, want) {
		t.Fatalf("%+v", arms)
	}
	for _, bad := range []string{"kernel:", "kernel:lottery", "proxy", ""} {
		if _, err := ParseArms(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func programs(t *testing.T, kind string, n int, seed uint64) []workload.Program {
	t.Helper()
	ps, err := workload.Generate(kind, n, seed, workload.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return ps
}

// The same seed gives the same virtual results, to the nanosecond.
func TestVirtualIsDeterministic(t *testing.T) {
	setup := Setup{Profile: "llama3-8b-h100"}
	for _, arm := range []Arm{{Name: "direct"}, {Name: "kernel:rr", Kernel: true, Policy: "rr"}} {
		a, err := RunVirtual(setup, arm, programs(t, "mixed", 24, 7), 8)
		if err != nil {
			t.Fatal(err)
		}
		b, err := RunVirtual(setup, arm, programs(t, "mixed", 24, 7), 8)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(a, b) {
			t.Fatalf("%s: two runs with one seed differ", arm.Name)
		}
		if len(a.Programs) != 24 {
			t.Fatalf("%s: %d programs finished", arm.Name, len(a.Programs))
		}
	}
}

// Every call of every program runs, produces exactly its output tokens, and reuses its
// program's cached prefix.
func TestVirtualRunsEveryStep(t *testing.T) {
	ps := programs(t, "react", 6, 3)
	want := 0
	for _, p := range ps {
		for _, s := range p.Steps {
			if s.Kind == workload.LLM {
				want++
			}
		}
	}
	res, err := RunVirtual(Setup{}, Arm{Name: "kernel:fifo", Kernel: true, Policy: "fifo"}, ps, 3)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Calls) != want {
		t.Fatalf("%d calls ran, want %d", len(res.Calls), want)
	}
	byID := map[int]workload.Program{}
	for _, p := range ps {
		byID[p.ID] = p
	}
	cached, prompt := 0, 0
	for _, c := range res.Calls {
		if c.Failed || c.OutputTokens == 0 || c.TTFT <= 0 || c.Latency < c.TTFT {
			t.Fatalf("call %+v", c)
		}
		cached += c.CachedTokens
		prompt += c.PromptTokens
	}
	if float64(cached)/float64(prompt) < 0.5 {
		t.Fatalf("prefix hit rate %.2f: follow-up calls should hit their program's context", float64(cached)/float64(prompt))
	}
	for _, p := range res.Programs {
		if p.Finish <= p.Arrival || p.Failed {
			t.Fatalf("program %+v", p)
		}
	}
}

// A naive engine refuses calls that do not fit; agents calling it directly retry and
// some give up, while the kernel admits only what fits and loses nothing.
func TestNaiveEngineDirectVersusKernel(t *testing.T) {
	setup := Setup{Profile: "test", Mode: sim.ModeNaive, Retry: Retry{Base: 10 * time.Millisecond, Max: 20 * time.Millisecond, Attempts: 2}}
	ps := programs(t, "chat", 12, 5)
	for i := range ps {
		ps[i].System = 64
		for j := range ps[i].Steps {
			if ps[i].Steps[j].Kind == workload.LLM {
				ps[i].Steps[j].Input, ps[i].Steps[j].Output = 40, 40
			} else {
				ps[i].Steps[j].ToolTime = time.Millisecond
			}
		}
	}
	direct, err := RunVirtual(setup, Arm{Name: "direct"}, ps, 12)
	if err != nil {
		t.Fatal(err)
	}
	kern, err := RunVirtual(setup, Arm{Name: "kernel:fifo", Kernel: true, Policy: "fifo"}, ps, 12)
	if err != nil {
		t.Fatal(err)
	}
	retries := 0
	for _, c := range direct.Calls {
		retries += c.Retries
	}
	if retries == 0 {
		t.Fatal("the naive engine never refused a direct call: the test does not overload it")
	}
	for _, c := range kern.Calls {
		if c.Failed || c.Retries > 0 {
			t.Fatalf("kernel call refused or failed: %+v", c)
		}
	}
}

func TestRunReportsEveryArm(t *testing.T) {
	rep, err := Run(context.Background(), Options{
		Setup: Setup{Profile: "llama3-8b-h100"}, Arms: mustArms(t, "direct,kernel:fifo"),
		Workload: "react", Programs: 16, Seed: 2, Virtual: true, Agents: 4,
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Arms) != 2 || rep.Arms[0].Arm != "direct" || rep.Arms[0].Programs != 16 || rep.SoloP99S <= 0 {
		t.Fatalf("%+v", rep)
	}
	var sb strings.Builder
	rep.WriteTable(&sb)
	if !strings.Contains(sb.String(), "kernel:fifo") {
		t.Fatal(sb.String())
	}
	dir := t.TempDir()
	if err := rep.WriteFiles(dir); err != nil {
		t.Fatal(err)
	}
}

// The live mode drives real HTTP: engines served as vLLM, the kernel in between.
func TestLiveSmoke(t *testing.T) {
	ps := programs(t, "react", 3, 9)
	for _, arm := range mustArms(t, "direct,kernel:rr") {
		res, err := RunLive(context.Background(), Setup{Profile: "llama3-8b-h100"}, arm, ps, 3, 200)
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Programs) != 3 {
			t.Fatalf("%s: %d programs", arm.Name, len(res.Programs))
		}
		var queued time.Duration
		for _, p := range res.Programs {
			if p.Failed || p.Finish <= p.Arrival {
				t.Fatalf("%s: %+v", arm.Name, p)
			}
			queued += p.Queued
		}
		// The kernel reports each call's queued time (X-AIOS-Queue-Ms); an engine does not.
		if (queued > 0) != arm.Kernel {
			t.Fatalf("%s: queued %v", arm.Name, queued)
		}
		hits := 0
		for _, c := range res.Calls {
			if c.Failed || c.OutputTokens == 0 {
				t.Fatalf("%s: %+v", arm.Name, c)
			}
			hits += c.CachedTokens
		}
		if hits == 0 {
			t.Fatalf("%s: no prefix cache hits over HTTP", arm.Name)
		}
	}
}

func mustArms(t *testing.T, s string) []Arm {
	t.Helper()
	a, err := ParseArms(s)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func TestParseArmSuffixes(t *testing.T) {
	if a, err := ParseArm("kernel:fifo+ws+ttl"); err != nil || !a.WS || !a.TTL || a.Policy != "fifo" {
		t.Fatalf("%+v %v", a, err)
	}
	if a, err := ParseArm("kernel:psjf+ws+aeg"); err != nil || !a.WS || !a.AEG || a.AEGSuspend || a.Policy != "psjf" {
		t.Fatalf("+aeg: %+v %v", a, err)
	}
	if a, err := ParseArm("kernel:psjf+ws+aeg-suspend"); err != nil || !a.WS || !a.AEG || !a.AEGSuspend {
		t.Fatalf("+aeg-suspend: %+v %v", a, err)
	}
	if _, err := ParseArm("kernel:psjf+aeg-suspend"); err == nil {
		t.Fatal("+aeg-suspend without +ws accepted")
	}
}

// A +aeg arm's kernel learns the programs' graphs from their LLM calls and the tools
// the virtual driver reports, predicts their next calls, and over HTTP is refused.
func TestAEGArmLearnsAndPredicts(t *testing.T) {
	arm, err := ParseArm("kernel:psjf+ws+aeg")
	if err != nil {
		t.Fatal(err)
	}
	res, err := RunVirtual(Setup{}, arm, programs(t, "react", 12, 5), 4)
	if err != nil {
		t.Fatal(err)
	}
	if res.Graph == nil || res.Graph.Predictions == 0 || res.Graph.MAES < 0 {
		t.Fatalf("graph accuracy %+v: no predictions", res.Graph)
	}
	plain, err := RunVirtual(Setup{}, Arm{Name: "kernel:psjf+ws", Kernel: true, Policy: "psjf", WS: true}, programs(t, "react", 12, 5), 4)
	if err != nil {
		t.Fatal(err)
	}
	if plain.Graph != nil {
		t.Errorf("an arm without +aeg reports graph accuracy")
	}
	if _, err := RunLive(context.Background(), Setup{}, arm, programs(t, "react", 1, 5), 1, 10); !errors.Is(err, ErrAEGLive) {
		t.Errorf("live +aeg: %v, want ErrAEGLive", err)
	}
}

// Every word of a live prompt is one token to the engine's tokenizer, so live prompts
// are as long as the workload says.
func TestWordsAreOneTokenEach(t *testing.T) {
	for _, n := range []int{0, 1, 7, 500} {
		if got := sim.CountTokens(words(hashKey("k", strconv.Itoa(n)), n)); got != n {
			t.Errorf("words(%d) is %d tokens", n, got)
		}
	}
}

// --retries is the direct agents' setting; agents calling the kernel keep the default.
func TestRetriesApplyToDirectAgentsOnly(t *testing.T) {
	s := Setup{Retry: Retry{Base: time.Millisecond, Max: time.Millisecond, Attempts: 100000}}
	if r := agentRetry(s, Arm{Name: "direct"}); r.Attempts != 100000 {
		t.Fatalf("direct: %+v", r)
	}
	if r := agentRetry(s, Arm{Name: "kernel:fifo", Kernel: true, Policy: "fifo"}); r != DefaultRetry {
		t.Fatalf("kernel: %+v", r)
	}
}

// A live +ttl arm passes the kernel's retention hint to the engines; without +ttl no
// prefix is pinned. Calls a tool step follows come back as calls of that tool.
func TestLiveTTLReachesTheEngine(t *testing.T) {
	ps := programs(t, "react", 2, 4)
	for _, name := range []string{"kernel:fifo", "kernel:fifo+ttl"} {
		arm := mustArms(t, name)[0]
		res, err := RunLive(context.Background(), Setup{Profile: "llama3-8b-h100"}, arm, ps, 2, 200)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range res.Programs {
			if p.Failed {
				t.Fatalf("%s: %+v", name, p)
			}
		}
		if pinned := res.Engine.Pins > 0; pinned != arm.TTL {
			t.Fatalf("%s: %d pins", name, res.Engine.Pins)
		}
	}
}

// The kernel's size estimate of a live prompt matches what the engine counts.
func TestLivePromptEstimate(t *testing.T) {
	text := words(hashKey("x"), 1000)
	est := llm.EstimateTokens([]api.Message{{Role: "user", Content: api.Content(text)}}, nil)
	if got := sim.CountTokens(text); est < got || est > got+10 {
		t.Fatalf("estimate %d tokens, engine counts %d", est, got)
	}
}

// direct+affinity sends all of a session's calls to one engine and spreads sessions;
// plain direct spreads calls. It is the baseline once there are several engines.
func TestDirectAffinity(t *testing.T) {
	a := mustArms(t, "direct+affinity")[0]
	if !a.Affinity || a.Kernel {
		t.Fatalf("%+v", a)
	}
	seen := map[int]bool{}
	for s := 0; s < 32; s++ {
		e := engineFor(a, strconv.Itoa(s), 0, 4)
		for rr := 1; rr < 5; rr++ {
			if engineFor(a, strconv.Itoa(s), rr, 4) != e {
				t.Fatalf("session %d moved engines", s)
			}
		}
		seen[e] = true
	}
	if len(seen) != 4 {
		t.Fatalf("32 sessions used engines %v", seen)
	}
	if engineFor(Arm{Name: "direct"}, "x", 5, 4) != 1 {
		t.Fatal("direct is not round robin")
	}
	if Baseline(1).Name != "direct" || Baseline(4).Name != "direct+affinity" {
		t.Fatal("baseline")
	}
	// On 4 engines, affinity keeps every program's prefix on its engine.
	ps := programs(t, "react", 16, 3)
	setup := Setup{Cores: 4}
	rr, err := RunVirtual(setup, Arm{Name: "direct"}, ps, 8)
	if err != nil {
		t.Fatal(err)
	}
	aff, err := RunVirtual(setup, a, ps, 8)
	if err != nil {
		t.Fatal(err)
	}
	if hit(aff) <= hit(rr) {
		t.Fatalf("hit rate with affinity %.3f, round robin %.3f", hit(aff), hit(rr))
	}
}

func hit(r Result) float64 {
	c, p := 0, 0
	for _, x := range r.Calls {
		c += x.CachedTokens
		p += x.PromptTokens
	}
	return float64(c) / float64(p)
}

// Kernel arms run their policy with the run's parameters, in both modes: a PLAS quantum
// ratio below 1 is refused by the policy itself, and a valid one changes its decisions.
func TestKernelArmsHonourPolicyConfig(t *testing.T) {
	ps := programs(t, "react", 4, 1)
	arm := mustArms(t, "kernel:plas")[0]
	bad := Setup{Policy: sched.Config{QuantumRatio: 0.5}}
	if _, err := RunVirtual(bad, arm, ps, 2); err == nil {
		t.Fatal("virtual: the policy's parameters were ignored")
	}
	if _, err := RunLive(context.Background(), bad, arm, ps, 2, 200); err == nil {
		t.Fatal("live: the policy's parameters were ignored")
	}
	if got := policyConfig(Setup{TimeSlice: time.Second, Policy: sched.Config{Beta: 7, Name: "x"}}, arm); got.Name != "plas" || got.Beta != 7 || got.Slice != time.Second {
		t.Fatalf("%+v", got)
	}
}

// Virtual runs report how the engines were used: one program alone keeps the engine
// stepping only part of the time (tools), one sequence per step, and some KV held.
func TestVirtualUtilisation(t *testing.T) {
	ps := programs(t, "react", 1, 2)
	res, err := RunVirtual(Setup{}, Arm{Name: "direct"}, ps, 1)
	if err != nil {
		t.Fatal(err)
	}
	u := res.Util
	if u.Busy <= 0 || u.Busy >= 1 || math.Abs(u.Batch-1) > 1e-9 || u.KV <= 0 || u.KV >= 1 {
		t.Fatalf("%+v", u)
	}
}

// The baseline's capacity is measured on the run's own arrival draw (the one --load
// scales) and on further draws, whose spread the report carries.
func TestCapacityOnTheRunsArrivals(t *testing.T) {
	o := Options{Setup: Setup{Profile: "llama3-8b-h100"}, Arms: mustArms(t, "direct"), Workload: "react",
		Programs: 12, Seed: 4, Virtual: true, Load: 0.5, CapacityDraws: 2}
	rep, err := Run(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.CapacityDraws) != 2 || rep.DirectCapacity == nil || *rep.DirectCapacity != rep.CapacityDraws[0] {
		t.Fatalf("%+v", rep)
	}
	ps := programs(t, "react", 12, 4)
	solo, err := SoloTimes(Setup{}, ps)
	if err != nil {
		t.Fatal(err)
	}
	c, err := Capacity(Setup{}, Arm{Name: "direct"}, ps, solo, 4^0x5eed)
	if err != nil || c != rep.CapacityDraws[0] {
		t.Fatalf("capacity on the run's draw %v (%v), report %v", c, err, rep.CapacityDraws[0])
	}
	if rep.RatePerMin != 0.5*c {
		t.Fatalf("rate %v, want half of %v", rep.RatePerMin, c)
	}
}

// The load test completes every program through a kernel whose queue is far smaller
// than the crowd: the kernel refuses with 429 and Retry-After, agents retry, nothing is
// lost and the queue never exceeds its bound. The working set admits one program at a
// time (a capacity of one token admits a program only into an empty set), so eleven of
// the twelve programs' first calls meet the bound however fast the machine is; the one
// admitted program's call is exempt from it (refusing it would cost its place), so the
// queue holds at most the bound plus that call.
func TestScaleBackpressure(t *testing.T) {
	rep, err := RunScale(context.Background(), ScaleOptions{Agents: 12, Steps: 2, Tool: time.Millisecond,
		Input: 20, Output: 4, Profile: "test", Speed: 1000, MaxQueued: 2, WorkingSetTokens: 1})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Completed != 12 || rep.Failed != 0 || rep.Calls != 24 || rep.Refused429 == 0 || rep.PeakQueued > 3 {
		t.Fatalf("%+v", rep)
	}
}

// The ceiling is programs over the span from the first arrival to the latest arrival
// plus solo time: three programs arriving at 0, 60 s and 120 s, alone 30 s, 200 s and
// 10 s, span 0 to 260 s (the second's end), so 3 / (260/60) programs/min.
func TestCeiling(t *testing.T) {
	progs := []workload.Program{{ID: 7, Arrival: 60 * time.Second}, {ID: 3, Arrival: 0}, {ID: 9, Arrival: 120 * time.Second}}
	solo := map[int]time.Duration{3: 30 * time.Second, 7: 200 * time.Second, 9: 10 * time.Second}
	if got, want := Ceiling(progs, solo), 3/(260.0/60); math.Abs(got-want) > 1e-9 {
		t.Fatalf("Ceiling = %v, want %v", got, want)
	}
	if Ceiling(nil, solo) != 0 {
		t.Fatal("no programs, a ceiling")
	}
}

// --kv-offload-gib reaches the virtual engines: on a cache too small for the programs'
// contexts, evicted prefixes come back from the CPU tier instead of being recomputed.
func TestVirtualKVOffload(t *testing.T) {
	ps := programs(t, "chat", 12, 5)
	for i := range ps {
		ps[i].System = 64
		for j := range ps[i].Steps {
			if ps[i].Steps[j].Kind == workload.LLM {
				ps[i].Steps[j].Input, ps[i].Steps[j].Output = 120, 20
			} else {
				ps[i].Steps[j].ToolTime = time.Millisecond
			}
		}
	}
	run := func(gib float64) Result {
		res, err := RunVirtual(Setup{Profile: "test", KVOffloadGiB: gib}, Arm{Name: "direct"}, ps, 12)
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	off, on := run(0), run(1)
	if off.Engine.ExternalQueries != 0 || off.Engine.OffloadLoadedBlocks != 0 {
		t.Errorf("no tier, yet offload counters: %+v", off.Engine)
	}
	if on.Engine.ExternalHits == 0 || on.Engine.OffloadLoadTime <= 0 || on.Engine.ExternalHits != 16*on.Engine.OffloadLoadedBlocks {
		t.Errorf("with a 1 GiB tier: %d tokens in %d blocks loaded in %v", on.Engine.ExternalHits, on.Engine.OffloadLoadedBlocks, on.Engine.OffloadLoadTime)
	}
	hitRate := func(r Result) float64 {
		cached, prompt := 0, 0
		for _, c := range r.Calls {
			cached, prompt = cached+c.CachedTokens, prompt+c.PromptTokens
		}
		return float64(cached) / float64(prompt)
	}
	if hitRate(on) <= hitRate(off) {
		t.Errorf("hit rate %.3f with the tier, %.3f without", hitRate(on), hitRate(off))
	}
	t.Logf("hit rate %.3f → %.3f, span %v → %v", hitRate(off), hitRate(on), off.Span, on.Span)
}

// --max-inflight caps the calls the kernel runs at once on an engine: at 1 a kernel arm's
// engine never batches, while direct agents, not held to it, still do.
func TestMaxInflightCapsKernelBatches(t *testing.T) {
	ps := programs(t, "react", 12, 4)
	arr := workload.Poisson(600, len(ps), 3)
	for i := range ps {
		ps[i].Arrival = arr[i]
	}
	setup := Setup{Profile: "llama3-8b-h100", MaxInflight: 1}
	for _, name := range []string{"kernel:fifo", "direct"} {
		res, err := RunVirtual(setup, mustArms(t, name)[0], ps, 0)
		if err != nil {
			t.Fatal(err)
		}
		if capped := res.Util.Batch <= 1; capped != (name == "kernel:fifo") {
			t.Errorf("%s: mean batch %.2f", name, res.Util.Batch)
		}
	}
}
