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
// and is not, so it likely ended. At 60 s, A (hinted back at 10 s, stale at 30 s) goes
// before B (back at 40 s, stale at 100 s), although B is expected back later.
func TestKVHintStaleGoesFirst(t *testing.T) {
	c := newKVCache(2, true)
	var order []uint64
	c.evicted = func(h uint64) { order = append(order, h) }
	ids := c.alloc(nil, 2)
	c.commit(ids[0], 0xa)
	c.commit(ids[1], 0xb)
	c.releaseHinted(ids[:1], 0, 10*time.Second)
	c.releaseHinted(ids[1:], 0, 40*time.Second)
	c.now = int64(20 * time.Second)
	c.alloc(nil, 1)
	c.now = int64(60 * time.Second)
	c.alloc(nil, 1)
	if want := []uint64{0xb, 0xa}; !slices.Equal(order, want) {
		t.Fatalf("at 20 s then 60 s: eviction order %x, want %x (b furthest while a is fresh)", order, want)
	}
	ids = c.alloc(nil, 0)
	order = nil
	c2 := newKVCache(2, true)
	c2.evicted = func(h uint64) { order = append(order, h) }
	ids = c2.alloc(nil, 2)
	c2.commit(ids[0], 0xa)
	c2.commit(ids[1], 0xb)
	c2.releaseHinted(ids[:1], 0, 10*time.Second)
	c2.releaseHinted(ids[1:], 0, 40*time.Second)
	c2.now = int64(60 * time.Second)
	c2.alloc(nil, 1)
	if want := []uint64{0xa}; !slices.Equal(order, want) {
		t.Errorf("at 60 s: evicted %x, want a (stale at 30 s) before b", order)
	}
}
