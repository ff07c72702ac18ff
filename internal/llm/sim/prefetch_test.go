package sim

import (
	"testing"
	"time"
)

// Prefetch copies back the part of a context the GPU lost, so the next request finds
// all of it on the GPU, and the next step pays for the copy.
func TestPrefetchRestoresEvictedBlocks(t *testing.T) {
	e := newOffloadEngine(t, 64)
	prefix := ids(9, 512) // 32 blocks
	first := &Request{Prompt: prefix, MaxTokens: 1, EOSAt: -1, OffloadOnFinish: true}
	submit(t, e, first, 0)
	now := runUntilIdle(t, e, 0, 100)
	// The hint put the prefix first in line: 250 tokens take its last 16 blocks.
	submit(t, e, &Request{Prompt: ids(60, 250), MaxTokens: 1, EOSAt: -1}, now)
	now = runUntilIdle(t, e, now, 100)

	if n := e.Prefetch(first); n != 16 {
		t.Fatalf("Prefetch copied %d blocks, want the 16 evicted", n)
	}
	if n := e.Prefetch(first); n != 0 {
		t.Errorf("a second Prefetch copied %d blocks, want 0: all are on the GPU", n)
	}
	next := &Request{Prompt: withSuffix(prefix, 3, 10), MaxTokens: 1, EOSAt: -1}
	submit(t, e, next, now)
	st := e.Step(now)
	// The same compute as with a full GPU hit, plus the 16 copied blocks at 1 ms each.
	want := time.Millisecond + 9*time.Millisecond/256 + 522*time.Microsecond + 16*time.Millisecond
	if got := st.End - st.Start; got != want {
		t.Errorf("step after the prefetch took %v, want %v", got, want)
	}
	s := e.Stats()
	if next.NumCached != 512 || s.PrefixHits != 512 || s.ExternalHits != 0 {
		t.Errorf("%d cached, %d GPU hits, %d from the tier at admission; want 512, 512, 0", next.NumCached, s.PrefixHits, s.ExternalHits)
	}
	if s.PrefetchedBlocks != 16 || s.OffloadLoadedBlocks != 16 || s.OffloadLoadTime != 16*time.Millisecond {
		t.Errorf("prefetched %d, loaded %d in %v; want 16, 16 in 16ms", s.PrefetchedBlocks, s.OffloadLoadedBlocks, s.OffloadLoadTime)
	}
	// Charged once: the following step has no copy in it.
	st = e.Step(st.End)
	if st.NumSeqs != 0 && st.End-st.Start >= 16*time.Millisecond {
		t.Errorf("the copy was charged twice: %v", st.End-st.Start)
	}
}

// Prefetch takes only free blocks: a running request's are left alone, and it copies
// what fits.
func TestPrefetchNeverTakesHeldBlocks(t *testing.T) {
	e := newOffloadEngine(t, 64)
	prefix := ids(9, 512)
	first := &Request{Prompt: prefix, MaxTokens: 1, EOSAt: -1, OffloadOnFinish: true}
	submit(t, e, first, 0)
	now := runUntilIdle(t, e, 0, 100)
	// 1,600 tokens (100 blocks) prefill in 7 steps of up to 256, taking the offloaded
	// prefix's 32 blocks first, and then decode for a long time.
	big := &Request{Prompt: ids(70, 1600), MaxTokens: 400, EOSAt: -1}
	submit(t, e, big, now)
	for range 7 {
		now = e.Step(now).End
	}
	if big.State != StateRunning || big.NumOutput != 1 || e.Stats().FreeBlocks != 28 {
		t.Fatalf("big request %v with %d tokens out, %d blocks free; want running, 1, 28", big.State, big.NumOutput, e.Stats().FreeBlocks)
	}
	if n := e.Prefetch(first); n != 28 {
		t.Errorf("Prefetch copied %d blocks, want the 28 free", n)
	}
	if s := e.Stats(); s.FreeBlocks != 28 || big.State != StateRunning || len(big.blocks) != 100 {
		t.Errorf("after the prefetch: %d free, big %v holding %d blocks; want 28 free (cached), running, 100",
			s.FreeBlocks, big.State, len(big.blocks))
	}
	// The copied blocks are the prefix's head: a request extending it finds 28 blocks
	// on the GPU and the other 4 in the tier.
	e.Cancel(big, now)
	next := &Request{Prompt: withSuffix(prefix, 3, 10), MaxTokens: 1, EOSAt: -1}
	submit(t, e, next, now)
	before := e.Stats()
	runUntilIdle(t, e, now, 10)
	s := e.Stats()
	if hits, ext := s.PrefixHits-before.PrefixHits, s.ExternalHits-before.ExternalHits; hits != 28*16 || ext != 4*16 {
		t.Errorf("next found %d tokens on the GPU and %d in the tier; want %d and %d", hits, ext, 28*16, 4*16)
	}
}

// With no tier there is nothing to copy back.
func TestPrefetchWithoutTier(t *testing.T) {
	e := newTestEngine(t, "test", ModeVLLM, PolicyFCFS)
	first := &Request{Prompt: ids(9, 512), MaxTokens: 1, EOSAt: -1}
	submit(t, e, first, 0)
	runUntilIdle(t, e, 0, 100)
	if n := e.Prefetch(first); n != 0 {
		t.Errorf("Prefetch without a tier copied %d blocks", n)
	}
}

// Store copies a context to the tier without moving it up the GPU's eviction order:
// the blocks a new request takes are the never-used ones, not the stored prefix.
func TestStoreKeepsEvictionOrder(t *testing.T) {
	e := newOffloadEngine(t, 64)
	prefix := ids(9, 512)
	first := &Request{Prompt: prefix, MaxTokens: 1, EOSAt: -1}
	submit(t, e, first, 0)
	now := runUntilIdle(t, e, 0, 100)
	if n := e.Store(first); n != 32 {
		t.Fatalf("Store copied %d blocks, want 32", n)
	}
	// 250 tokens take 16 of the 96 blocks never used; the prefix stays on the GPU.
	submit(t, e, &Request{Prompt: ids(60, 250), MaxTokens: 1, EOSAt: -1}, now)
	now = runUntilIdle(t, e, now, 100)
	next := &Request{Prompt: withSuffix(prefix, 3, 10), MaxTokens: 1, EOSAt: -1}
	submit(t, e, next, now)
	runUntilIdle(t, e, now, 10)
	if s := e.Stats(); next.NumCached != 512 || s.PrefixHits != 512 || s.OffloadLoadedBlocks != 0 || s.OffloadStoredBlocks != 32 {
		t.Errorf("%d cached, %d from the GPU, %d blocks loaded, %d stored; want 512, 512, 0, 32",
			next.NumCached, s.PrefixHits, s.OffloadLoadedBlocks, s.OffloadStoredBlocks)
	}
}
