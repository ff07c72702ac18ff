package sim

import (
	"errors"
	"math"
	"math/rand/v2"
	"strconv"
	"testing"
	"time"
)

func within(t *testing.T, what string, got, want time.Duration, tol float64) {
	t.Helper()
	if d := math.Abs(float64(got-want)) / float64(want); d > tol {
		t.Errorf("%s = %v, want %v (off by %.2f%%, allowed %.2f%%)", what, got, want, 100*d, 100*tol)
	}
}

// A lone request costs one prefill step and then one decode step per further token, each
// as the cost model prices it. The expectation is written from the sources, not from
// StepTime: Vidur's A100 figures plus attention reads at 70% of 2.039 TB/s.
func TestLoneRequestLatencyMatchesCostModel(t *testing.T) {
	const prompt, out = 512, 100
	e := newTestEngine(t, "llama3-8b-a100", ModeVLLM, PolicyFCFS)
	r := &Request{ID: 1, Prompt: ids(1, prompt), MaxTokens: out, EOSAt: -1}
	if err := e.Submit(r, 0); err != nil {
		t.Fatal(err)
	}
	runUntilIdle(t, e, 0, 10*out)

	bw := 0.7 * 2.039e12
	sec := func(s float64) time.Duration { return time.Duration(s * 1e9) }
	// Prefill: 512 tokens of linear layers (34.9 ms) plus attention, compute-bound at
	// 180 TFLOP/s over 512 × 256 query-key pairs × 4 × 4096 × 32 FLOPs.
	prefill := 34900*time.Microsecond + sec(512*256*4*4096*32/180e12)
	// Decode step j (j = 1..out-1) reads the KV of prompt + j tokens.
	var decode time.Duration
	for j := 1; j < out; j++ {
		decode += 9800*time.Microsecond + sec(float64(prompt+j)*131072/bw)
	}
	within(t, "time to first token", r.FirstToken-r.Arrival, prefill, 0.01)
	within(t, "latency", r.Finished-r.Arrival, prefill+decode, 0.01)
	if r.NumOutput != out || r.FinishReason != "length" {
		t.Errorf("generated %d tokens, finish %q; want %d, length", r.NumOutput, r.FinishReason, out)
	}
}

// The H100 profile's decode floor is the weight read: 16 GB at 3.35 TB/s ≈ 4.8 ms.
func TestH100DecodeFloor(t *testing.T) {
	p := mustProfile(t, "llama3-8b-h100")
	within(t, "H100 one-token step", p.StepTime(BatchShape{Tokens: 1, KVRead: 1, AttnPairs: 1}), 4800*time.Microsecond, 0.01)
	// Prefill near 30k tokens/s (DESIGN.md): a 4096-token chunk without context.
	pf := p.StepTime(BatchShape{Tokens: 4096, KVRead: 4096, AttnPairs: 4096 * 2048})
	if tps := 4096 / pf.Seconds(); tps < 25e3 || tps > 32e3 {
		t.Errorf("H100 prefill %.0f tokens/s, want about 30k", tps)
	}
}

// Throughput grows with the batch but less than linearly, because step time grows with
// the tokens in the batch and the context it reads, as the cost model says.
func TestThroughputSaturatesWithBatch(t *testing.T) {
	const prompt, out = 256, 128
	batches := []int{1, 4, 16, 64, 256}
	var tput []float64
	var stepTimes []time.Duration
	for _, b := range batches {
		e := newTestEngine(t, "llama3-8b-a100", ModeVLLM, PolicyFCFS)
		for i := range b {
			if err := e.Submit(&Request{ID: uint64(i), Prompt: ids(uint64(i), prompt), MaxTokens: out, EOSAt: -1}, 0); err != nil {
				t.Fatal(err)
			}
		}
		now := time.Duration(0)
		var decodeStep time.Duration
		for steps := 0; !e.Idle(); steps++ {
			st := e.Step(now)
			if st.Batch.Tokens == b && st.NumSeqs == b && decodeStep == 0 {
				decodeStep = st.End - st.Start // first all-decode step
			}
			now = st.End
			if steps > 10000 {
				t.Fatal("no progress")
			}
		}
		tput = append(tput, float64(b*out)/now.Seconds())
		stepTimes = append(stepTimes, decodeStep)
		// The decode step is linear(b) plus reading b contexts of about prompt+1 tokens.
		a100 := mustProfile(t, "llama3-8b-a100")
		lin := a100.linear(b)
		want := lin + time.Duration(float64(b)*float64(prompt+1)*131072/(0.7*2.039e12)*1e9)
		within(t, "decode step at batch "+strconv.Itoa(b), decodeStep, want, 0.01)
	}
	for i := 1; i < len(batches); i++ {
		if tput[i] <= tput[i-1] {
			t.Errorf("throughput fell from %.0f to %.0f tok/s going from batch %d to %d", tput[i-1], tput[i], batches[i-1], batches[i])
		}
		if stepTimes[i] <= stepTimes[i-1] {
			t.Errorf("decode step did not grow from batch %d (%v) to %d (%v)", batches[i-1], stepTimes[i-1], batches[i], stepTimes[i])
		}
	}
	first := tput[1] / tput[0] / 4 // efficiency of quadrupling the batch at the small end
	last := tput[4] / tput[3] / 4  // and at the large end
	if last >= first || last > 0.9 {
		t.Errorf("throughput does not saturate: scaling efficiency %.2f at small batches, %.2f at large", first, last)
	}
	t.Logf("tokens/s by batch %v: %.0f", batches, tput)
}

// Eight requests that each need 25 of the test profile's 128 blocks: vllm mode preempts
// and still finishes all of them; naive mode admits five and refuses three at once.
func TestKVOverflow(t *testing.T) {
	submitAll := func(e *Engine) (ok []*Request, errs []error) {
		for i := range 8 {
			r := &Request{ID: uint64(i), Prompt: ids(uint64(i), 200), MaxTokens: 200, EOSAt: -1}
			if err := e.Submit(r, 0); err != nil {
				errs = append(errs, err)
				continue
			}
			ok = append(ok, r)
		}
		return ok, errs
	}

	t.Run("vllm", func(t *testing.T) {
		e := newTestEngine(t, "test", ModeVLLM, PolicyFCFS)
		reqs, errs := submitAll(e)
		if len(errs) > 0 {
			t.Fatalf("vllm mode refused requests: %v", errs)
		}
		runUntilIdle(t, e, 0, 100000)
		for _, r := range reqs {
			if r.State != StateFinished || r.NumOutput != 200 {
				t.Errorf("request %d: %v with %d tokens", r.ID, r.State, r.NumOutput)
			}
		}
		s := e.Stats()
		if s.Preemptions == 0 {
			t.Error("no preemptions although demand was 200 blocks for 128")
		}
		if s.FreeBlocks != s.NumBlocks {
			t.Errorf("%d of %d blocks free after all finished", s.FreeBlocks, s.NumBlocks)
		}
	})

	t.Run("naive", func(t *testing.T) {
		e := newTestEngine(t, "test", ModeNaive, PolicyFCFS)
		reqs, errs := submitAll(e)
		if len(reqs) != 5 || len(errs) != 3 {
			t.Fatalf("admitted %d, refused %d; want 5 and 3", len(reqs), len(errs))
		}
		for _, err := range errs {
			if !errors.Is(err, ErrOutOfMemory) {
				t.Errorf("refusal %v is not ErrOutOfMemory", err)
			}
		}
		runUntilIdle(t, e, 0, 100000)
		for _, r := range reqs {
			if r.State != StateFinished {
				t.Errorf("request %d: %v", r.ID, r.State)
			}
		}
		if s := e.Stats(); s.Preemptions != 0 || s.KVUsage != 0 {
			t.Errorf("naive mode: %d preemptions, usage %.2f after all finished", s.Preemptions, s.KVUsage)
		}
	})
}

func TestRequestLargerThanCacheFailsAtOnce(t *testing.T) {
	e := newTestEngine(t, "test", ModeVLLM, PolicyFCFS)
	r := &Request{Prompt: ids(1, 3000), MaxTokens: 10, EOSAt: -1}
	if err := e.Submit(r, 0); !errors.Is(err, ErrOutOfMemory) {
		t.Fatalf("submit of 3000 tokens into 2048: %v, want ErrOutOfMemory", err)
	}
	if !e.Idle() {
		t.Error("refused request was queued")
	}
	tooLong := &Request{Prompt: ids(1, 4000), MaxTokens: 200}
	if err := e.Submit(tooLong, 0); !errors.Is(err, ErrInvalidRequest) {
		t.Errorf("prompt + max_tokens over max_model_len: %v, want ErrInvalidRequest", err)
	}
	if err := e.Submit(&Request{}, 0); !errors.Is(err, ErrInvalidRequest) {
		t.Errorf("empty prompt: %v, want ErrInvalidRequest", err)
	}
}

// A prompt longer than max_num_batched_tokens is prefilled in chunks, one per step.
func TestChunkedPrefill(t *testing.T) {
	e := newTestEngine(t, "test", ModeVLLM, PolicyFCFS) // budget 256 tokens a step
	r := &Request{Prompt: ids(1, 1000), MaxTokens: 3, EOSAt: -1}
	if err := e.Submit(r, 0); err != nil {
		t.Fatal(err)
	}
	var chunks []int
	now := time.Duration(0)
	for r.NumOutput == 0 {
		st := e.Step(now)
		chunks = append(chunks, st.Batch.Tokens)
		now = st.End
	}
	want := []int{256, 256, 256, 232}
	if len(chunks) != len(want) {
		t.Fatalf("prefill chunks %v, want %v", chunks, want)
	}
	for i := range want {
		if chunks[i] != want[i] {
			t.Fatalf("prefill chunks %v, want %v", chunks, want)
		}
	}
}

// The second of two requests sharing a 4k-token prefix computes only its suffix: its
// prefill costs what the suffix alone costs, reading the cached prefix as context.
func TestSharedPrefixChargesOnlySuffix(t *testing.T) {
	e := newTestEngine(t, "llama3-8b-h100", ModeVLLM, PolicyFCFS)
	prefix := ids(7, 4096)
	first := &Request{ID: 1, Prompt: append(append([]uint32{}, prefix...), ids(1, 100)...), MaxTokens: 10, EOSAt: -1}
	second := &Request{ID: 2, Prompt: append(append([]uint32{}, prefix...), ids(2, 100)...), MaxTokens: 10, EOSAt: -1}
	if err := e.Submit(first, 0); err != nil {
		t.Fatal(err)
	}
	now := runUntilIdle(t, e, 0, 1000)
	if err := e.Submit(second, now); err != nil {
		t.Fatal(err)
	}
	runUntilIdle(t, e, now, 1000)

	if second.NumCached != 4096 {
		t.Errorf("second request found %d cached tokens, want 4096", second.NumCached)
	}
	p := e.Profile()
	suffix := int64(100)
	want := p.StepTime(BatchShape{Tokens: 100, KVRead: 4196, AttnPairs: suffix * (4096 + (suffix+1)/2)})
	within(t, "second request's prefill", second.FirstToken-second.Arrival, want, 0.001)
	if full := first.FirstToken - first.Arrival; second.FirstToken-second.Arrival > full/5 {
		t.Errorf("prefill with the prefix cached took %v, without %v", second.FirstToken-second.Arrival, full)
	}
	s := e.Stats()
	if s.PrefixHits != 4096 || s.PrefixQueries != 2*4196 {
		t.Errorf("prefix cache counters: %d hits of %d queries, want 4096 of %d", s.PrefixHits, s.PrefixQueries, 2*4196)
	}
}

// A full-prompt hit still recomputes the last token, since its logits are needed.
func TestIdenticalPromptRecomputesLastToken(t *testing.T) {
	e := newTestEngine(t, "test", ModeVLLM, PolicyFCFS)
	a := &Request{Prompt: ids(1, 64), MaxTokens: 2, EOSAt: -1}
	b := &Request{Prompt: ids(1, 64), MaxTokens: 2, EOSAt: -1}
	e.Submit(a, 0)
	now := runUntilIdle(t, e, 0, 100)
	e.Submit(b, now)
	runUntilIdle(t, e, now, 100)
	if b.NumCached != 48 {
		t.Errorf("identical 64-token prompt: %d cached, want 48 (the last full block is recomputed)", b.NumCached)
	}
}

// Under the priority policy the waiting queue orders by priority value, and memory
// pressure preempts the request with the highest value.
func TestPriorityPolicy(t *testing.T) {
	e := newTestEngine(t, "test", ModeVLLM, PolicyPriority)
	var reqs []*Request
	for i := range 8 {
		r := &Request{ID: uint64(i), Prompt: ids(uint64(i), 200), MaxTokens: 200, EOSAt: -1, Priority: i % 2}
		reqs = append(reqs, r)
		if err := e.Submit(r, 0); err != nil {
			t.Fatal(err)
		}
	}
	runUntilIdle(t, e, 0, 100000)
	var hi, lo time.Duration
	var hiPre, loPre int
	for _, r := range reqs {
		if r.Priority == 0 {
			hi += r.Finished
			hiPre += r.Preemptions
		} else {
			lo += r.Finished
			loPre += r.Preemptions
		}
	}
	if hi >= lo {
		t.Errorf("priority 0 requests finished at %v in total, priority 1 at %v", hi, lo)
	}
	if hiPre > loPre {
		t.Errorf("priority 0 requests were preempted %d times, priority 1 %d", hiPre, loPre)
	}

	// Admission order: a later, more urgent arrival goes first.
	e = newTestEngine(t, "test", ModeVLLM, PolicyPriority)
	late := &Request{Prompt: ids(1, 16), MaxTokens: 1, EOSAt: -1, Priority: -5}
	early := &Request{Prompt: ids(2, 16), MaxTokens: 1, EOSAt: -1, Priority: 5}
	e.Submit(early, 0)
	e.Submit(late, time.Millisecond)
	e.waiting.peek()
	if e.waiting.peek() != late {
		t.Error("the priority -5 request is not at the head of the waiting queue")
	}
}

func TestCancel(t *testing.T) {
	e := newTestEngine(t, "test", ModeVLLM, PolicyFCFS)
	a := &Request{Prompt: ids(1, 100), MaxTokens: 100, EOSAt: -1}
	b := &Request{Prompt: ids(2, 100), MaxTokens: 100, EOSAt: -1}
	e.Submit(a, 0)
	now := e.Step(0).End
	e.Submit(b, now)
	e.Cancel(a, now) // running
	e.Cancel(b, now) // waiting
	if a.State != StateCancelled || b.State != StateCancelled || !e.Idle() {
		t.Fatalf("after cancel: %v, %v, idle %v", a.State, b.State, e.Idle())
	}
	if s := e.Stats(); s.FreeBlocks != s.NumBlocks {
		t.Errorf("%d of %d blocks free after cancelling everything", s.FreeBlocks, s.NumBlocks)
	}
	e.Cancel(a, now) // twice is harmless
}

// The retention hint keeps a finished request's prefix cached through pressure that
// would otherwise evict it, until the TTL passes.
func TestKVTTLPinsPrefix(t *testing.T) {
	run := func(ttl time.Duration, gap time.Duration) (*Engine, *Request) {
		e := newTestEngine(t, "test", ModeVLLM, PolicyFCFS)
		prefix := ids(9, 512)
		first := &Request{Prompt: prefix, MaxTokens: 1, EOSAt: -1, KVTTL: ttl}
		e.Submit(first, 0)
		now := runUntilIdle(t, e, 0, 100)
		// Pressure: enough other work to cycle the whole free queue.
		for i := range 8 {
			e.Submit(&Request{Prompt: ids(uint64(100+i), 300), MaxTokens: 50, EOSAt: -1}, now)
		}
		now = runUntilIdle(t, e, now, 100000)
		next := &Request{Prompt: append(append([]uint32{}, prefix...), ids(3, 10)...), MaxTokens: 1, EOSAt: -1}
		e.Submit(next, now+gap)
		runUntilIdle(t, e, now+gap, 1000)
		return e, next
	}
	if _, r := run(0, 0); r.NumCached != 0 {
		t.Errorf("without a TTL the prefix survived pressure: %d cached", r.NumCached)
	}
	e, r := run(time.Hour, 0)
	if r.NumCached != 512 {
		t.Errorf("with a TTL the next call found %d of 512 tokens cached", r.NumCached)
	}
	if s := e.Stats(); s.PinnedBlocks != 32 {
		t.Errorf("%d blocks pinned, want 32", s.PinnedBlocks)
	}
	e.ExpirePins(2 * time.Hour)
	if s := e.Stats(); s.PinnedBlocks != 0 || s.FreeBlocks != s.NumBlocks {
		t.Errorf("after expiry: %d pinned, %d of %d free", s.PinnedBlocks, s.FreeBlocks, s.NumBlocks)
	}
}

// Pins never wedge the engine: when nothing runs and the head of the queue cannot fit,
// the engine gives up pins.
func TestPinsYieldWhenStuck(t *testing.T) {
	e := newTestEngine(t, "test", ModeVLLM, PolicyFCFS)
	for i := range 3 {
		e.Submit(&Request{Prompt: ids(uint64(i), 600), MaxTokens: 1, EOSAt: -1, KVTTL: time.Hour}, 0)
	}
	now := runUntilIdle(t, e, 0, 1000)
	if s := e.Stats(); s.PinnedBlocks < 100 {
		t.Fatalf("only %d blocks pinned", s.PinnedBlocks)
	}
	big := &Request{Prompt: ids(50, 1500), MaxTokens: 10, EOSAt: -1}
	if err := e.Submit(big, now); err != nil {
		t.Fatal(err)
	}
	runUntilIdle(t, e, now, 1000)
	if big.State != StateFinished {
		t.Errorf("big request %v", big.State)
	}
}

// Random workloads in every mode and policy, with cancellations: every request ends
// finished, cancelled or refused, the engine drains, and no block leaks.
func TestRandomWorkloadsDrain(t *testing.T) {
	for _, mode := range []Mode{ModeVLLM, ModeNaive} {
		for _, policy := range []Policy{PolicyFCFS, PolicyPriority} {
			for seed := range uint64(5) {
				rng := rand.New(rand.NewPCG(seed, 1))
				e := newTestEngine(t, "test", mode, policy)
				var live []*Request
				now := time.Duration(0)
				for i := range 200 {
					shared := ids(uint64(rng.IntN(3)), rng.IntN(300))
					r := &Request{
						ID:        uint64(i),
						Prompt:    append(shared, ids(uint64(1000+i), 1+rng.IntN(300))...),
						MaxTokens: 1 + rng.IntN(400),
						EOSAt:     rng.IntN(300) - 50,
						Priority:  rng.IntN(3),
						KVTTL:     time.Duration(rng.IntN(3)) * 50 * time.Millisecond,
					}
					if err := e.Submit(r, now); err == nil {
						live = append(live, r)
					} else if !errors.Is(err, ErrOutOfMemory) {
						t.Fatalf("submit: %v", err)
					}
					for range rng.IntN(4) {
						if !e.Idle() {
							now = e.Step(now).End
						}
					}
					if rng.IntN(20) == 0 && len(live) > 0 {
						e.Cancel(live[rng.IntN(len(live))], now)
					}
				}
				runUntilIdle(t, e, now, 1_000_000)
				for _, r := range live {
					if r.State != StateFinished && r.State != StateCancelled {
						t.Fatalf("%s/%s seed %d: request %d left %v", mode, policy, seed, r.ID, r.State)
					}
					if r.State == StateFinished && r.NumOutput != r.target {
						t.Fatalf("request %d generated %d of %d tokens", r.ID, r.NumOutput, r.target)
					}
				}
				e.ExpirePins(now + time.Hour)
				if s := e.Stats(); s.FreeBlocks != s.NumBlocks {
					t.Fatalf("%s/%s seed %d: %d of %d blocks free after draining", mode, policy, seed, s.FreeBlocks, s.NumBlocks)
				}
			}
		}
	}
}

// The same workload gives the same schedule, to the nanosecond.
func TestEngineDeterministic(t *testing.T) {
	run := func() []time.Duration {
		e := newTestEngine(t, "test", ModeVLLM, PolicyFCFS)
		var reqs []*Request
		for i := range 40 {
			r := &Request{ID: uint64(i), Prompt: ids(uint64(i%5), 50+i*7), MaxTokens: 300, EOSAt: NaturalLength(uint64(i)) % 300}
			reqs = append(reqs, r)
			e.Submit(r, time.Duration(i)*time.Millisecond)
		}
		runUntilIdle(t, e, 0, 100000)
		var out []time.Duration
		for _, r := range reqs {
			out = append(out, r.Finished, time.Duration(r.NumOutput), time.Duration(r.Preemptions))
		}
		return out
	}
	a, b := run(), run()
	for i := range a {
		if a[i] != b[i] {
			t.Fatalf("runs differ at %d: %v vs %v", i, a[i], b[i])
		}
	}
}

func TestProfiles(t *testing.T) {
	for _, name := range ProfileNames() {
		p := mustProfile(t, name)
		if err := p.Validate(); err != nil {
			t.Error(err)
		}
		t.Logf("%s: %d blocks = %d KV tokens", name, p.NumBlocks(), p.NumBlocks()*p.BlockSize)
	}
	p := mustProfile(t, "llama3-8b-h100")
	if p.KVBytesPerToken != 131072 {
		t.Errorf("Llama-3-8B KV bytes/token = %d, want 131072", p.KVBytesPerToken)
	}
	if tok := p.NumBlocks() * 16; tok < 400_000 || tok > 500_000 {
		t.Errorf("H100 8B KV capacity %d tokens; vLLM reports about 450k", tok)
	}
	if mustProfile(t, "test").NumBlocks() != 128 {
		t.Error("test profile should have 128 blocks")
	}
	if _, err := LookupProfile("nope"); err == nil {
		t.Error("unknown profile accepted")
	}
	// Interpolation hits the sources exactly at the measured points.
	a := mustProfile(t, "llama3-8b-a100")
	for _, pt := range vidurA100 {
		if got := a.linear(pt.Tokens); got != pt.Time {
			t.Errorf("linear(%d) = %v, want %v", pt.Tokens, got, pt.Time)
		}
	}
	if got, want := a.linear(320), (13300+34900)*time.Microsecond/2; got != want {
		t.Errorf("linear(320) = %v, want midpoint %v", got, want)
	}
}

// A conversation's next turn finds the previous turn's prompt and output in the cache:
// the rendered reply tokenizes back to the ids the engine generated.
func TestNextTurnHitsOutputBlocks(t *testing.T) {
	e := newTestEngine(t, "test", ModeVLLM, PolicyFCFS)
	msgs := []Message{{Role: "user", Content: "Summarize the plan."}}
	r1, err := BuildRequest(GenRequest{Messages: msgs, MaxTokens: 100, IgnoreEOS: true})
	if err != nil {
		t.Fatal(err)
	}
	e.Submit(r1, 0)
	now := runUntilIdle(t, e, 0, 1000)
	reply := OutputText(r1.Seed, 0, r1.NumOutput)
	r2, err := BuildRequest(GenRequest{Messages: append(msgs,
		Message{Role: "assistant", Content: reply}, Message{Role: "user", Content: "Shorter."})})
	if err != nil {
		t.Fatal(err)
	}
	e.Submit(r2, now)
	runUntilIdle(t, e, now, 1000)
	// Everything the first turn computed (prompt + 99 of its 100 outputs) in full blocks.
	if want := (len(r1.Prompt) + 99) / 16 * 16; r2.NumCached != want {
		t.Errorf("next turn found %d tokens cached, want %d", r2.NumCached, want)
	}
}
