package sim

import (
	"slices"
	"testing"
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
	c.releaseHinted(a, 100)
	c.releaseHinted(b, 30)
	if c.numFree != 6 || len(c.hinted.ids) != 5 {
		t.Fatalf("free %d, hinted %d: want 6 and 5", c.numFree, len(c.hinted.ids))
	}
	if got := c.blocks[s[0]].reuse; got != 30 {
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
	c.releaseHinted(ids[2:], 7)
	c.touch(ids[2]) // a hit: off the heap
	if len(c.hinted.ids) != 0 || c.numFree != 3 || c.blocks[ids[2]].reuse != 0 {
		t.Fatalf("hinted %d free %d reuse %d", len(c.hinted.ids), c.numFree, c.blocks[ids[2]].reuse)
	}
	c.alloc(nil, 3)
	if want := []uint64{2, 1}; !slices.Equal(order, want) {
		t.Errorf("eviction order %v, want %v", order, want)
	}
}
