package sim

import "container/heap"

// Eviction hints. A request may say how long after it ends its program expects to use
// its context again (Request.ReuseAfter: the kernel predicts it from the program's
// execution graph). Its blocks then wait in a heap apart from the LRU free queue and
// are handed out only once that queue is empty, the furthest expected reuse first:
// Bélády's MIN with predicted instead of known next uses, as SAGA's and KVFlow's
// eviction orders by steps to execution. A block shared by several programs keeps
// the soonest of their hints. Without hints the heap stays empty and the cache is the
// LRU queue alone, unchanged.

// releaseHinted drops one reference on each block, last first, noting that their
// holder expects to reuse them at reuse (virtual ns, > 0).
func (c *kvCache) releaseHinted(ids []int32, reuse int64) {
	for i := len(ids) - 1; i >= 0; i-- {
		id := ids[i]
		b := &c.blocks[id]
		if b.reuse == 0 || reuse < b.reuse {
			b.reuse = reuse
		}
		b.ref--
		if b.ref == 0 {
			c.free(id)
		}
	}
}

// free returns an unreferenced block to the free queue: to the hinted heap when some
// holder gave a hint and it holds reusable content, else to the LRU tail.
func (c *kvCache) free(id int32) {
	b := &c.blocks[id]
	if b.reuse == 0 || !b.hashed {
		b.reuse = 0
		c.pushTail(id)
		return
	}
	c.seq++
	b.hseq = c.seq
	heap.Push(&c.hinted, id)
	c.numFree++
}

// hintHeap orders hinted free blocks furthest expected reuse first, then the longest
// free first.
type hintHeap struct {
	c   *kvCache
	ids []int32
}

func (h *hintHeap) Len() int { return len(h.ids) }
func (h *hintHeap) Less(i, j int) bool {
	a, b := &h.c.blocks[h.ids[i]], &h.c.blocks[h.ids[j]]
	if a.reuse != b.reuse {
		return a.reuse > b.reuse
	}
	return a.hseq < b.hseq
}
func (h *hintHeap) Swap(i, j int) {
	h.ids[i], h.ids[j] = h.ids[j], h.ids[i]
	h.c.blocks[h.ids[i]].hidx = int32(i)
	h.c.blocks[h.ids[j]].hidx = int32(j)
}
func (h *hintHeap) Push(x any) {
	id := x.(int32)
	h.c.blocks[id].hidx = int32(len(h.ids))
	h.ids = append(h.ids, id)
}
func (h *hintHeap) Pop() any {
	id := h.ids[len(h.ids)-1]
	h.ids = h.ids[:len(h.ids)-1]
	h.c.blocks[id].hidx = noBlock
	return id
}
