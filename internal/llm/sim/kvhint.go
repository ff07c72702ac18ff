package sim

import (
	"container/heap"
	"time"
)

// Eviction hints. A request may say how long after it ends its program expects to use
// its context again (Request.ReuseAfter: the kernel predicts it from the program's
// execution graph). Its blocks then wait apart from the LRU free queue and are handed
// out only once that queue is empty, the furthest expected reuse first: Bélády's MIN
// with predicted instead of known next uses, as SAGA's and KVFlow's eviction orders by
// steps to execution. A block shared by several programs keeps the soonest of their
// hints.
//
// A prediction can be wrong the other way too: the program ended instead. Its blocks,
// expected back at a time now past, would be the last evicted and stay for ever, while
// live programs' were thrown out. So a hint goes stale hintStale after twice its
// horizon, and stale blocks go first, the longest stale first.
//
// Without hints both heaps stay empty and the cache is the LRU queue alone, unchanged.

// hintStale is how late past twice its horizon a program may still come back before
// its hinted blocks are taken for abandoned: several times the execution graphs' mean
// prediction error in aios bench (about 1.3 s, docs/scheduling.md).
const hintStale = 10 * time.Second

// releaseHinted drops one reference on each block, last first, noting that their
// holder, ending at end, expects to reuse them after, a positive duration.
func (c *kvCache) releaseHinted(ids []int32, end, after time.Duration) {
	reuse, stale := int64(end+after), int64(end+2*after+hintStale)
	for i := len(ids) - 1; i >= 0; i-- {
		id := ids[i]
		b := &c.blocks[id]
		if b.reuse == 0 || reuse < b.reuse {
			b.reuse = reuse
		}
		b.stale = max(b.stale, stale)
		b.ref--
		if b.ref == 0 {
			c.free(id)
		}
	}
}

// free returns an unreferenced block to the free queue: to the hinted heaps when some
// holder gave a hint and it holds reusable content, else to the LRU tail.
func (c *kvCache) free(id int32) {
	b := &c.blocks[id]
	if b.reuse == 0 || !b.hashed {
		b.reuse, b.stale = 0, 0
		c.pushTail(id)
		return
	}
	c.seq++
	b.hseq = c.seq
	heap.Push(&c.furthest, id)
	heap.Push(&c.staleness, id)
	c.numFree++
}

// unhint takes a free block out of the hinted heaps; false if it was not in them.
func (c *kvCache) unhint(id int32) bool {
	b := &c.blocks[id]
	b.reuse = 0
	if b.hidx[0] == noBlock {
		b.stale = 0
		return false
	}
	heap.Remove(&c.furthest, int(b.hidx[0]))
	heap.Remove(&c.staleness, int(b.hidx[1]))
	b.stale = 0
	c.numFree--
	return true
}

// victim is the hinted block to hand out when the LRU queue is empty.
func (c *kvCache) victim() int32 {
	if s := c.staleness.ids[0]; c.blocks[s].stale <= c.now {
		return s
	}
	return c.furthest.ids[0]
}

// hintHeap orders hinted free blocks: furthest expected reuse first (k = 0), or
// soonest stale first (k = 1); then the longest free first.
type hintHeap struct {
	c   *kvCache
	k   int
	ids []int32
}

func (h *hintHeap) Len() int { return len(h.ids) }
func (h *hintHeap) Less(i, j int) bool {
	a, b := &h.c.blocks[h.ids[i]], &h.c.blocks[h.ids[j]]
	if h.k == 0 && a.reuse != b.reuse {
		return a.reuse > b.reuse
	}
	if h.k == 1 && a.stale != b.stale {
		return a.stale < b.stale
	}
	return a.hseq < b.hseq
}
func (h *hintHeap) Swap(i, j int) {
	h.ids[i], h.ids[j] = h.ids[j], h.ids[i]
	h.c.blocks[h.ids[i]].hidx[h.k] = int32(i)
	h.c.blocks[h.ids[j]].hidx[h.k] = int32(j)
}
func (h *hintHeap) Push(x any) {
	id := x.(int32)
	h.c.blocks[id].hidx[h.k] = int32(len(h.ids))
	h.ids = append(h.ids, id)
}
func (h *hintHeap) Pop() any {
	id := h.ids[len(h.ids)-1]
	h.ids = h.ids[:len(h.ids)-1]
	h.c.blocks[id].hidx[h.k] = noBlock
	return id
}

// Forget is the hint that a program has ended: the cached blocks of its context tokens
// past the first keep tokens (a prefix other programs share, such as their system
// prompt) will not be used again, so they are handed out before any other free block,
// as MIN would. Blocks a running request holds are left alone. It returns the blocks
// demoted.
func (e *Engine) Forget(tokens []uint32, keep int) int {
	if e.kv == nil || !e.kv.caching {
		return 0
	}
	r := &Request{Prompt: tokens}
	n := len(tokens) / e.bs
	r.ensureHashes(n, e.bs)
	return e.forgetHashes(r.hashes[:n], keep/e.bs)
}

// forgetHashes is Forget on a context's block hashes, past its first keep blocks.
func (e *Engine) forgetHashes(hashes []uint64, keep int) int {
	if e.kv == nil || !e.kv.caching {
		return 0
	}
	ended := make(map[int32]bool, len(hashes)-min(keep, len(hashes)))
	for k := keep; k < len(hashes); k++ {
		if id, ok := e.kv.cached[hashes[k]]; ok {
			ended[id] = true
		}
	}
	e.dropPinsOf(ended)
	var ids []int32
	for k := keep; k < len(hashes); k++ {
		if id, ok := e.kv.cached[hashes[k]]; ok && e.kv.blocks[id].ref == 0 {
			ids = append(ids, id)
		}
	}
	e.kv.demote(ids)
	e.stats.ForgottenBlocks += int64(len(ids))
	return len(ids)
}

// dropPinsOf releases, before they expire, the retention pins of an ended program's
// contexts (those whose last block is among ended): the program will not come back for
// them. Kept, they held its blocks through their TTL and then freed them with the
// program's reuse hint, as if it were still expected.
func (e *Engine) dropPinsOf(ended map[int32]bool) {
	kept := e.pins[:0]
	for _, p := range e.pins {
		if n := len(p.blocks); n > 0 && ended[p.blocks[n-1]] {
			e.kv.release(p.blocks)
			e.pinned -= len(p.blocks)
			continue
		}
		kept = append(kept, p)
	}
	if len(kept) < len(e.pins) {
		clear(e.pins[len(kept):])
		e.pins = kept
		heap.Init(&e.pins)
	}
}
