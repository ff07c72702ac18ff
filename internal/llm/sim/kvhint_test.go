package sim

import (
	"slices"
	"testing"
	"time"
)

// A tiny cache of 6 blocks: A holds two (hinted back at 100), B two (back at 50), a
// shared block S held by both (hints 100 and 30: it keeps 30), one never used. Blocks
// are handed out LRU queue first (the unused one), then furthest reuse first: A's tail,
// A's head (equal hints: the first freed first), B's, then S.
func TestKVHintEvictsFurthestReuseLast(t *testing.T) {
	c := newKVCache(6, true)
	var order []uint64
	c.evicted = func(h uint64) { order = append(order, h) }
	take := func(hashes ...uint64) []int32 {
		ids := c.alloc(nil, len(hashes))
		for i, h := range hashes {
			c.commit(ids[i], h)
		}
		return ids
	}
	s := take(0x5)
	a := append(slices.Clone(s), take(0xa1, 0xa2)...)
	c.touch(s[0])
	b := append(slices.Clone(s), take(0xb1, 0xb2)...)
	c.releaseHinted(a, 0, 100*time.Second)
	c.releaseHinted(b, 0, 30*time.Second)
	if c.numFree != 6 || len(c.furthest.ids) != 5 {
		t.Fatalf("free %d, hinted %d: want 6 and 5", c.numFree, len(c.furthest.ids))
	}
	if got := c.blocks[s[0]].reuse; got != int64(30*time.Second) {
		t.Errorf("shared block's hint %d, want the soonest, 30", got)
	}
	c.alloc(nil, 6)
	if want := []uint64{0xa2, 0xa1, 0xb2, 0xb1, 0x5}; !slices.Equal(order, want) {
		t.Errorf("eviction order %x, want %x", order, want)
	}
}

// Without hints the free queue is LRU: released blocks go last-first to the tail, and
// a hit takes a hinted block back out of the heap.
func TestKVHintAbsentKeepsLRU(t *testing.T) {
	c := newKVCache(4, true)
	var order []uint64
	c.evicted = func(h uint64) { order = append(order, h) }
	ids := c.alloc(nil, 3)
	for i, h := range []uint64{1, 2, 3} {
		c.commit(ids[i], h)
	}
	c.release(ids[:2])
	c.releaseHinted(ids[2:], 0, 7)
	c.touch(ids[2]) // a hit: off the heap
	if len(c.furthest.ids) != 0 || c.numFree != 3 || c.blocks[ids[2]].reuse != 0 {
		t.Fatalf("hinted %d free %d reuse %d", len(c.furthest.ids), c.numFree, c.blocks[ids[2]].reuse)
	}
	c.alloc(nil, 3)
	if want := []uint64{2, 1}; !slices.Equal(order, want) {
		t.Errorf("eviction order %v, want %v", order, want)
	}
}

// A hint goes stale hintStale after twice its horizon: the program was presumed back
// and is not, so it likely ended. A is hinted back at 10 s (stale at 30 s), B at 40 s
// (stale at 100 s). At 20 s B, expected back later, goes first; at 60 s A does.
func TestKVHintStaleGoesFirst(t *testing.T) {
	for _, tc := range []struct {
		now  time.Duration
		want uint64
	}{{20 * time.Second, 0xb}, {60 * time.Second, 0xa}} {
		c := newKVCache(2, true)
		var order []uint64
		c.evicted = func(h uint64) { order = append(order, h) }
		ids := c.alloc(nil, 2)
		c.commit(ids[0], 0xa)
		c.commit(ids[1], 0xb)
		c.releaseHinted(ids[:1], 0, 10*time.Second)
		c.releaseHinted(ids[1:], 0, 40*time.Second)
		c.now = int64(tc.now)
		c.alloc(nil, 1)
		if len(order) != 1 || order[0] != tc.want {
			t.Errorf("at %v: evicted %x, want %x", tc.now, order, tc.want)
		}
	}
}

// Forget hands out an ended program's blocks past the shared prefix first, even before
// older free blocks; the shared prefix keeps its place.
func TestEngineForgetEvictsEndedProgramFirst(t *testing.T) {
	e := newTestEngine(t, "test", ModeVLLM, PolicyFCFS)
	bs := e.p.BlockSize
	sys := ids(1, 2*bs)
	old := &Request{ID: 1, Prompt: ids(2, 3*bs), MaxTokens: 1, EOSAt: -1}
	ended := &Request{ID: 2, Prompt: append(append([]uint32(nil), sys...), ids(3, 2*bs)...), MaxTokens: 1, EOSAt: -1}
	now := time.Duration(0)
	for _, r := range []*Request{old, ended} {
		if err := e.Submit(r, now); err != nil {
			t.Fatal(err)
		}
		now = runUntilIdle(t, e, now, 100)
	}
	if n := e.Forget(ended.Prompt, len(sys)); n != 2 {
		t.Fatalf("forgot %d blocks, want the 2 past the system prompt", n)
	}
	var order []uint64
	e.kv.evicted = func(h uint64) { order = append(order, h) }
	e.kv.alloc(nil, e.kv.numFree)
	ended.ensureHashes(4, bs)
	old.ensureHashes(3, bs)
	if len(order) < 3 || order[0] != ended.hashes[3] || order[1] != ended.hashes[2] || order[2] != old.hashes[2] {
		t.Errorf("eviction order starts %x, want the ended program's tail, then the old request's", order[:min(3, len(order))])
	}
}

// A request pinned for a TTL that also hinted its reuse keeps the hint past the pin: when
// the pin expires its blocks join the hinted heaps, not the LRU queue handed out first.
func TestPinExpiryKeepsReuseHint(t *testing.T) {
	e := newTestEngine(t, "test", ModeVLLM, PolicyFCFS)
	bs := e.p.BlockSize
	r := &Request{ID: 1, Prompt: ids(7, 3*bs), MaxTokens: 1, EOSAt: -1, KVTTL: time.Second, ReuseAfter: time.Minute}
	if err := e.Submit(r, 0); err != nil {
		t.Fatal(err)
	}
	now := runUntilIdle(t, e, 0, 100)
	if e.Stats().PinnedBlocks != 3 {
		t.Fatalf("pinned %d blocks, want the prompt's 3", e.Stats().PinnedBlocks)
	}
	e.ExpirePins(now + 2*time.Second)
	r.ensureHashes(3, bs)
	for k, h := range r.hashes[:3] {
		id := e.kv.cached[h]
		if b := e.kv.blocks[id]; b.ref != 0 || b.hidx[0] == noBlock || b.reuse == 0 {
			t.Errorf("block %d after its pin: ref %d, hinted %v, reuse %d; want free in the hinted heap", k, b.ref, b.hidx[0] != noBlock, b.reuse)
		}
	}
}

// A program's end releases its context's pins at once, and its blocks are demoted as if
// they had never been pinned.
func TestForgetDropsPins(t *testing.T) {
	e := newTestEngine(t, "test", ModeVLLM, PolicyFCFS)
	bs := e.p.BlockSize
	other := &Request{ID: 1, Prompt: ids(8, 2*bs), MaxTokens: 1, EOSAt: -1, KVTTL: time.Hour}
	ended := &Request{ID: 2, Prompt: ids(9, 3*bs), MaxTokens: 1, EOSAt: -1, KVTTL: time.Hour, ReuseAfter: time.Minute}
	now := time.Duration(0)
	for _, r := range []*Request{other, ended} {
		if err := e.Submit(r, now); err != nil {
			t.Fatal(err)
		}
		now = runUntilIdle(t, e, now, 100)
	}
	if n := e.Forget(ended.Prompt, 0); n != 3 {
		t.Fatalf("forgot %d blocks, want the ended program's 3", n)
	}
	if s := e.Stats(); s.PinnedBlocks != 2 || len(e.pins) != 1 {
		t.Fatalf("pinned %d blocks in %d pins, want the other request's 2 in 1", s.PinnedBlocks, len(e.pins))
	}
}
