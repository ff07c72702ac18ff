package sim

import (
	"encoding/json"
	"errors"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
)

// blockBytes is one block of the test profile: 16 tokens × 131,072 bytes = 2 MiB, which
// its offload bandwidth copies in exactly 1 ms.
const blockBytes = 16 * llama8BKV

func newOffloadEngine(t testing.TB, blocks int) *Engine {
	t.Helper()
	e, err := NewEngine(EngineConfig{Profile: mustProfile(t, "test"), OffloadBytes: int64(blocks) * blockBytes})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func submit(t testing.TB, e *Engine, r *Request, now time.Duration) {
	t.Helper()
	if err := e.Submit(r, now); err != nil {
		t.Fatal(err)
	}
}

func withSuffix(prefix []uint32, tag uint64, n int) []uint32 {
	return append(append([]uint32{}, prefix...), ids(tag, n)...)
}

// A prefix the GPU cache had to evict is found in the CPU tier and copied back: the next
// request computes only its suffix, and the step that admits it takes the copy's time on
// top of the compute.
func TestOffloadLoadsEvictedPrefix(t *testing.T) {
	e := newOffloadEngine(t, 64)
	prefix := ids(9, 512) // 32 blocks
	submit(t, e, &Request{Prompt: prefix, MaxTokens: 1, EOSAt: -1}, 0)
	now := runUntilIdle(t, e, 0, 100)
	// 2,048 tokens fill all 128 blocks: the 96 never used go first, then the prefix's 32,
	// which the CPU tier takes.
	submit(t, e, &Request{Prompt: ids(50, 2047), MaxTokens: 1, EOSAt: -1}, now)
	now = runUntilIdle(t, e, now, 100)
	if s := e.Stats(); s.OffloadStoredBlocks != 32 || s.OffloadBlocks != 32 || s.OffloadLoadedBlocks != 0 {
		t.Fatalf("after the eviction: %d blocks stored, %d held, %d loaded; want 32, 32, 0",
			s.OffloadStoredBlocks, s.OffloadBlocks, s.OffloadLoadedBlocks)
	}

	next := &Request{Prompt: withSuffix(prefix, 3, 10), MaxTokens: 1, EOSAt: -1}
	submit(t, e, next, now)
	st := e.Step(now)
	// 10 new tokens: linear 1 ms + 9/256 ms, attention over 522 tokens at 1 µs each, and
	// 32 blocks copied at 1 ms each.
	want := time.Millisecond + 9*time.Millisecond/256 + 522*time.Microsecond + 32*time.Millisecond
	if got := st.End - st.Start; got != want {
		t.Errorf("admitting step took %v, want %v", got, want)
	}
	if st.Batch.Tokens != 10 || next.NumCached != 512 || next.State != StateFinished {
		t.Errorf("batch of %d tokens, %d cached, %v; want 10, 512, finished", st.Batch.Tokens, next.NumCached, next.State)
	}
	s := e.Stats()
	if s.OffloadLoadedBlocks != 32 || s.OffloadLoadTime != 32*time.Millisecond {
		t.Errorf("loaded %d blocks in %v, want 32 in 32ms", s.OffloadLoadedBlocks, s.OffloadLoadTime)
	}
	// The GPU prefix cache found nothing of next; the tier found its 512 prompt tokens.
	// External queries are every admission's tokens past its GPU hit: 512 + 2,047 + 522.
	if s.PrefixHits != 0 || s.ExternalHits != 512 || s.ExternalQueries != 512+2047+522 {
		t.Errorf("GPU hits %d, external hits %d of %d queries; want 0, 512 of %d",
			s.PrefixHits, s.ExternalHits, s.ExternalQueries, 512+2047+522)
	}
	// next's 33 fresh blocks evicted 32 of the big request's cached ones into the tier,
	// filling it without pushing the prefix out.
	if s.OffloadStoredBlocks != 64 || s.OffloadBlocks != 64 || s.OffloadCapacityBlocks != 64 {
		t.Errorf("tier: %d stored, %d of %d held; want 64, 64 of 64", s.OffloadStoredBlocks, s.OffloadBlocks, s.OffloadCapacityBlocks)
	}

	// Loaded blocks are GPU blocks again: the same prefix now hits the GPU, copying nothing.
	again := &Request{Prompt: withSuffix(prefix, 4, 10), MaxTokens: 1, EOSAt: -1}
	submit(t, e, again, st.End)
	runUntilIdle(t, e, st.End, 10)
	if s := e.Stats(); again.NumCached != 512 || s.OffloadLoadedBlocks != 32 || s.PrefixHits != 512 {
		t.Errorf("second reuse: %d cached, %d loaded in all, %d GPU hits; want 512, 32, 512", again.NumCached, s.OffloadLoadedBlocks, s.PrefixHits)
	}
}

// Without the tier the same sequence recomputes the whole prompt.
func TestNoTierRecomputesEvictedPrefix(t *testing.T) {
	e := newTestEngine(t, "test", ModeVLLM, PolicyFCFS)
	prefix := ids(9, 512)
	submit(t, e, &Request{Prompt: prefix, MaxTokens: 1, EOSAt: -1}, 0)
	now := runUntilIdle(t, e, 0, 100)
	submit(t, e, &Request{Prompt: ids(50, 2047), MaxTokens: 1, EOSAt: -1}, now)
	now = runUntilIdle(t, e, now, 100)
	next := &Request{Prompt: withSuffix(prefix, 3, 10), MaxTokens: 1, EOSAt: -1}
	submit(t, e, next, now)
	if st := e.Step(now); st.Batch.Tokens != 256 {
		t.Errorf("first step ran %d tokens, want a full 256-token chunk", st.Batch.Tokens)
	}
	runUntilIdle(t, e, now, 10)
	if s := e.Stats(); next.NumCached != 0 || s.OffloadLoadedBlocks != 0 || s.OffloadLoadTime != 0 || s.ExternalQueries != 0 {
		t.Errorf("without a tier: %d cached, %+v", next.NumCached, s)
	}
}

// The tier is LRU over block hashes: a store past capacity drops the least recently
// stored or loaded, and storing what it holds already copies nothing.
func TestCPUTierLRU(t *testing.T) {
	c := newCPUTier(3)
	for _, h := range []uint64{1, 2, 3} {
		if !c.store(h) {
			t.Fatalf("store %d copied nothing", h)
		}
	}
	c.touch(1)
	if !c.store(4) { // evicts 2, the least recently used
		t.Fatal("store 4 copied nothing")
	}
	if c.store(3) {
		t.Error("storing a held hash copied it again")
	}
	if got := c.lookup([]uint64{1, 3, 4}); got != 3 {
		t.Errorf("lookup 1,3,4 found %d, want 3", got)
	}
	if got := c.lookup([]uint64{1, 2, 3}); got != 1 {
		t.Errorf("lookup 1,2,3 found %d, want 1 (2 was evicted)", got)
	}
	if c.len() != 3 {
		t.Errorf("holds %d, want 3", c.len())
	}
	// Re-storing 3 made it the most recent, so 1 is now the least: order 1, 4, 3.
	c.store(5)
	if c.lookup([]uint64{1}) != 0 || c.lookup([]uint64{4, 3, 5}) != 3 {
		t.Errorf("after storing 5: 1 held %v, 4, 3, 5 held %v; want 0, 3", c.lookup([]uint64{1}), c.lookup([]uint64{4, 3, 5}))
	}
}

// A tier smaller than the evicted prefix keeps what was evicted last: the GPU gives up a
// prefix tail first, so the tier ends up holding its head, which is what a lookup needs.
func TestSmallTierKeepsPrefixHead(t *testing.T) {
	e := newOffloadEngine(t, 16)
	prefix := ids(9, 512)
	submit(t, e, &Request{Prompt: prefix, MaxTokens: 1, EOSAt: -1}, 0)
	now := runUntilIdle(t, e, 0, 100)
	submit(t, e, &Request{Prompt: ids(50, 2047), MaxTokens: 1, EOSAt: -1}, now)
	now = runUntilIdle(t, e, now, 100)
	if s := e.Stats(); s.OffloadStoredBlocks != 32 || s.OffloadBlocks != 16 {
		t.Fatalf("%d stored, %d held; want 32 stored, 16 held", s.OffloadStoredBlocks, s.OffloadBlocks)
	}
	next := &Request{Prompt: withSuffix(prefix, 3, 10), MaxTokens: 1, EOSAt: -1}
	submit(t, e, next, now)
	runUntilIdle(t, e, now, 10)
	if s := e.Stats(); next.NumCached != 256 || s.OffloadLoadedBlocks != 16 {
		t.Errorf("%d tokens cached, %d blocks loaded; want 256, 16", next.NumCached, s.OffloadLoadedBlocks)
	}
}

// OffloadOnFinish copies the request's blocks out at once and puts them first in line
// for eviction, last block first, while they stay usable on the GPU until taken.
func TestOffloadOnFinish(t *testing.T) {
	e := newOffloadEngine(t, 64)
	prefix := ids(9, 512)
	first := &Request{Prompt: prefix, MaxTokens: 1, EOSAt: -1, OffloadOnFinish: true}
	submit(t, e, first, 0)
	now := runUntilIdle(t, e, 0, 100)
	if s := e.Stats(); s.OffloadStoredBlocks != 32 || s.OffloadBlocks != 32 || s.FreeBlocks != 128 {
		t.Fatalf("after finishing: %d stored, %d held, %d free; want 32, 32, 128", s.OffloadStoredBlocks, s.OffloadBlocks, s.FreeBlocks)
	}
	if n := e.Offload(first); n != 0 {
		t.Errorf("offloading again copied %d blocks", n)
	}
	// 250 tokens take 16 blocks: without the hint they would come from the 96 never
	// used; with it they are the prefix's last 16.
	submit(t, e, &Request{Prompt: ids(60, 250), MaxTokens: 1, EOSAt: -1}, now)
	now = runUntilIdle(t, e, now, 100)

	next := &Request{Prompt: withSuffix(prefix, 3, 10), MaxTokens: 1, EOSAt: -1}
	submit(t, e, next, now)
	st := e.Step(now)
	want := time.Millisecond + 9*time.Millisecond/256 + 522*time.Microsecond + 16*time.Millisecond
	if got := st.End - st.Start; got != want {
		t.Errorf("admitting step took %v, want %v (16 blocks loaded)", got, want)
	}
	if s := e.Stats(); next.NumCached != 512 || s.PrefixHits != 256 || s.ExternalHits != 256 || s.OffloadLoadedBlocks != 16 {
		t.Errorf("%d cached: %d from the GPU, %d from the tier (%d blocks); want 512: 256, 256 (16)",
			next.NumCached, s.PrefixHits, s.ExternalHits, s.OffloadLoadedBlocks)
	}
}

// Without a tier the hint does nothing: the prefix stays at the back of the free queue.
func TestOffloadHintWithoutTier(t *testing.T) {
	e := newTestEngine(t, "test", ModeVLLM, PolicyFCFS)
	prefix := ids(9, 512)
	first := &Request{Prompt: prefix, MaxTokens: 1, EOSAt: -1, OffloadOnFinish: true}
	submit(t, e, first, 0)
	now := runUntilIdle(t, e, 0, 100)
	if n := e.Offload(first); n != 0 {
		t.Errorf("Offload with no tier copied %d blocks", n)
	}
	submit(t, e, &Request{Prompt: ids(60, 250), MaxTokens: 1, EOSAt: -1}, now)
	now = runUntilIdle(t, e, now, 100)
	next := &Request{Prompt: withSuffix(prefix, 3, 10), MaxTokens: 1, EOSAt: -1}
	submit(t, e, next, now)
	runUntilIdle(t, e, now, 10)
	if next.NumCached != 512 {
		t.Errorf("%d of 512 tokens cached", next.NumCached)
	}
}

// With the tier off the engine behaves as it did before the tier existed: this scenario
// (preempting, sharing prefixes) gives the figures recorded from the engine without it.
func TestNoTierUnchanged(t *testing.T) {
	e := newTestEngine(t, "test", ModeVLLM, PolicyFCFS)
	var last time.Duration
	for i := range 60 {
		r := &Request{ID: uint64(i), Prompt: append(ids(uint64(i%4), 200), ids(uint64(100+i), 40+i*5)...), MaxTokens: 40 + i%50, EOSAt: -1}
		submit(t, e, r, time.Duration(i)*3*time.Millisecond)
		for range 3 {
			if !e.Idle() {
				last = e.Step(last).End
			}
		}
	}
	last = runUntilIdle(t, e, last, 100000)
	s := e.Stats()
	if last != 2451124146 || s.Preemptions != 37 || s.PrefixQueries != 39425 || s.PrefixHits != 21280 ||
		s.PromptTokens != 23250 || s.GenerationTokens != 3670 || s.Steps != 807 {
		t.Errorf("end %d, %+v; want end 2451124146, 37 preemptions, 21280 of 39425 hits, 23250 prompt, 3670 generated, 807 steps", last, s)
	}
	if s.OffloadStoredBlocks != 0 || s.OffloadCapacityBlocks != 0 || s.ExternalQueries != 0 {
		t.Errorf("offload counters moved with no tier: %+v", s)
	}
}

// Random workloads with the tier, small and large, and swap-out hints drain with every
// block returned and never hold more than the tier's capacity.
func TestOffloadRandomWorkloadsDrain(t *testing.T) {
	var loaded int64
	for _, tier := range []int{4, 64, 4096} {
		for seed := range uint64(4) {
			rng := rand.New(rand.NewPCG(seed, 7))
			e := newOffloadEngine(t, tier)
			var live []*Request
			now := time.Duration(0)
			for i := range 200 {
				r := &Request{
					ID:              uint64(i),
					Prompt:          append(ids(uint64(rng.IntN(4)), rng.IntN(400)), ids(uint64(1000+i), 1+rng.IntN(300))...),
					MaxTokens:       1 + rng.IntN(200),
					EOSAt:           rng.IntN(200) - 20,
					KVTTL:           time.Duration(rng.IntN(3)) * 50 * time.Millisecond,
					OffloadOnFinish: rng.IntN(2) == 0,
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
				if rng.IntN(10) == 0 && len(live) > 0 {
					e.Offload(live[rng.IntN(len(live))])
				}
				if s := e.Stats(); s.OffloadBlocks > tier {
					t.Fatalf("tier holds %d of %d blocks", s.OffloadBlocks, tier)
				}
			}
			runUntilIdle(t, e, now, 1_000_000)
			for _, r := range live {
				if r.State != StateFinished && r.State != StateCancelled {
					t.Fatalf("tier %d seed %d: request %d left %v", tier, seed, r.ID, r.State)
				}
			}
			e.ExpirePins(now + time.Hour)
			s := e.Stats()
			if s.FreeBlocks != s.NumBlocks {
				t.Fatalf("tier %d seed %d: %d of %d blocks free after draining", tier, seed, s.FreeBlocks, s.NumBlocks)
			}
			if s.OffloadLoadTime != time.Duration(s.OffloadLoadedBlocks)*time.Millisecond {
				t.Errorf("tier %d seed %d: %v for %d blocks loaded", tier, seed, s.OffloadLoadTime, s.OffloadLoadedBlocks)
			}
			loaded += s.OffloadLoadedBlocks
		}
	}
	if loaded == 0 {
		t.Error("no run loaded anything back: the workloads do not exercise the tier")
	}
}

func TestOffloadConfig(t *testing.T) {
	p := mustProfile(t, "test")
	for _, c := range []struct {
		cfg  EngineConfig
		want string
	}{
		{EngineConfig{Profile: p, OffloadBytes: -1}, "must not be negative"},
		{EngineConfig{Profile: p, Mode: ModeNaive, OffloadBytes: gib}, "naive"},
		{EngineConfig{Profile: func() Profile { q := p; q.OffloadBandwidth = 0; return q }(), OffloadBytes: gib}, "no offload bandwidth"},
	} {
		if _, err := NewEngine(c.cfg); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: error %v, want one saying %q", c.cfg.OffloadBytes, err, c.want)
		}
	}
	// Less than a block of memory is no tier.
	e, err := NewEngine(EngineConfig{Profile: p, OffloadBytes: blockBytes - 1})
	if err != nil || e.cpu != nil {
		t.Errorf("a sub-block tier: %v, tier %v", err, e.cpu)
	}
	// 64 GiB holds 32,768 of Llama-3-8B's 2 MiB blocks.
	if n := mustProfile(t, "llama3-8b-h100").OffloadBlocks(64 * gib); n != 32768 {
		t.Errorf("64 GiB holds %d blocks, want 32768", n)
	}
	// One 2 MiB block over a 50 GB/s link: 41.94 µs.
	if d := mustProfile(t, "llama3-8b-h100").LoadTime(1); d != 41943*time.Nanosecond {
		t.Errorf("H100 block load %v, want 41.943µs", d)
	}
}

// Over HTTP, a prompt pushed out of the GPU cache by a bigger one comes back from the
// CPU tier: usage counts the loaded tokens as cached, and /metrics splits them between
// the GPU prefix cache and the connector's counters.
func TestOffloadOverHTTP(t *testing.T) {
	_, ts := newTestServer(t, Config{Profile: "test", Speed: 1000, KVOffloadGiB: 1})
	ask := func(words string, n int) usage {
		body, _ := json.Marshal(map[string]any{
			"messages":   []map[string]string{{"role": "user", "content": strings.TrimSpace(strings.Repeat(words, n))}},
			"max_tokens": 1,
		})
		var got struct{ Usage usage }
		decodeJSON(t, post(t, ts.URL+"/v1/chat/completions", string(body)).Body, &got)
		return got.Usage
	}
	m := scrape(t, ts.URL)
	if m["sim:kv_offload_cpu_capacity_blocks"] != 512 { // 1 GiB of 2 MiB blocks
		t.Errorf("tier capacity %v blocks, want 512", m["sim:kv_offload_cpu_capacity_blocks"])
	}
	ask("alpha beta ", 300)
	ask("gamma delta ", 950) // with the first, more than the 128-block cache
	before := scrape(t, ts.URL)
	again := ask("alpha beta ", 300)
	after := scrape(t, ts.URL)
	gpu := after["vllm:prefix_cache_hits_total"] - before["vllm:prefix_cache_hits_total"]
	ext := after["vllm:external_prefix_cache_hits_total"] - before["vllm:external_prefix_cache_hits_total"]
	if ext <= 0 || gpu+ext != float64(again.PromptTokensDetails.CachedTokens) || again.PromptTokensDetails.CachedTokens < again.PromptTokens-16 {
		t.Errorf("repeat of %d tokens: %d cached, %v from the GPU and %v from the tier", again.PromptTokens, again.PromptTokensDetails.CachedTokens, gpu, ext)
	}
	if after["sim:kv_offload_loaded_blocks_total"] != ext/16 || after["sim:kv_offload_load_seconds_total"] <= 0 {
		t.Errorf("loaded %v blocks in %vs", after["sim:kv_offload_loaded_blocks_total"], after["sim:kv_offload_load_seconds_total"])
	}
	if _, err := NewLive(Config{Profile: "test", KVOffloadGiB: -1}); err == nil || !strings.Contains(err.Error(), "offload") {
		t.Errorf("negative offload size: %v", err)
	}
}
