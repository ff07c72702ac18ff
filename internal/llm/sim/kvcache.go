package sim

import (
	"container/heap"
	"time"
)

// kvCache is vLLM V1's block pool: a fixed array of KV blocks, a reference count per
// block, a map from block hash to the block holding that content, and a free queue.
//
// Freed blocks keep their hash and stay findable until the free queue hands them out
// again, so a finished request's prefix is reusable until memory pressure evicts it. The
// free queue is LRU: blocks are taken from the head and returned to the tail, and a
// request returns its blocks last-first, so under pressure the tail of a prefix goes
// before its head (which other requests are likelier to share).
type kvCache struct {
	blocks     []kvBlock
	head, tail int32 // free queue ends; -1 when empty
	numFree    int
	cached     map[uint64]int32
	caching    bool
	// evicted, when set, hears each hash the cache forgets to make room.
	evicted func(hash uint64)
	// furthest and staleness hold the free blocks whose owners said when they expect
	// to reuse them (Request.ReuseAfter), handed out after the LRU queue's (kvhint.go).
	furthest, staleness hintHeap
	seq                 uint64
	now                 int64 // virtual ns of the step allocating
}

type kvBlock struct {
	ref        int32
	prev, next int32 // free-queue links
	hash       uint64
	hashed     bool
	// reuse is the earliest expected reuse its hinted holders gave since it was last
	// free (virtual ns; 0: no hint), stale when the last of them is presumed gone;
	// hidx its places in the hinted heaps, or -1.
	reuse, stale int64
	hseq         uint64
	hidx         [2]int32
}

const noBlock = -1

func newKVCache(n int, caching bool) *kvCache {
	c := &kvCache{
		blocks:  make([]kvBlock, n),
		head:    noBlock,
		tail:    noBlock,
		cached:  make(map[uint64]int32),
		caching: caching,
	}
	c.furthest = hintHeap{c: c, k: 0}
	c.staleness = hintHeap{c: c, k: 1}
	for i := range c.blocks {
		c.blocks[i].hidx = [2]int32{noBlock, noBlock}
		c.pushTail(int32(i))
	}
	return c
}

func (c *kvCache) pushTail(id int32) {
	b := &c.blocks[id]
	b.prev, b.next = c.tail, noBlock
	if c.tail == noBlock {
		c.head = id
	} else {
		c.blocks[c.tail].next = id
	}
	c.tail = id
	c.numFree++
}

func (c *kvCache) pushHead(id int32) {
	b := &c.blocks[id]
	b.prev, b.next = noBlock, c.head
	if c.head == noBlock {
		c.tail = id
	} else {
		c.blocks[c.head].prev = id
	}
	c.head = id
	c.numFree++
}

func (c *kvCache) unlink(id int32) {
	if c.unhint(id) {
		return
	}
	b := &c.blocks[id]
	if b.prev == noBlock {
		c.head = b.next
	} else {
		c.blocks[b.prev].next = b.next
	}
	if b.next == noBlock {
		c.tail = b.prev
	} else {
		c.blocks[b.next].prev = b.prev
	}
	b.prev, b.next = noBlock, noBlock
	c.numFree--
}

// lookup appends to dst the cached blocks holding the longest prefix of hashes.
func (c *kvCache) lookup(dst []int32, hashes []uint64) []int32 {
	if !c.caching {
		return dst
	}
	for _, h := range hashes {
		id, ok := c.cached[h]
		if !ok {
			break
		}
		dst = append(dst, id)
	}
	return dst
}

// touch takes a reference on a block found by lookup, pulling it off the free queue if
// nobody held it.
func (c *kvCache) touch(id int32) {
	b := &c.blocks[id]
	if b.ref == 0 {
		c.unlink(id)
	}
	b.ref++
}

// alloc appends n fresh blocks to dst, evicting whatever content they cached. The
// caller has checked numFree.
func (c *kvCache) alloc(dst []int32, n int) []int32 {
	for ; n > 0; n-- {
		id := c.head
		if id == noBlock {
			id = c.victim() // the LRU queue is empty
		}
		c.unlink(id)
		b := &c.blocks[id]
		if b.hashed {
			if c.cached[b.hash] == id {
				delete(c.cached, b.hash)
				if c.evicted != nil {
					c.evicted(b.hash)
				}
			}
			b.hashed = false
		}
		b.ref = 1
		dst = append(dst, id)
	}
	return dst
}

// release drops one reference on each block, last block first.
func (c *kvCache) release(ids []int32) {
	for i := len(ids) - 1; i >= 0; i-- {
		id := ids[i]
		b := &c.blocks[id]
		b.ref--
		if b.ref == 0 {
			c.free(id)
		}
	}
}

// demote moves free blocks, given in prefix order, to the front of the free queue so
// they are handed out first, the prefix's last block before its first.
func (c *kvCache) demote(ids []int32) {
	for _, id := range ids {
		c.unlink(id)
		c.pushHead(id)
	}
}

// commit records that a full block holds the content named by hash. When another block
// already holds it (two requests prefilled the same prefix at once), the first stays the
// one found; this one is evicted like any uncached block.
func (c *kvCache) commit(id int32, hash uint64) {
	if !c.caching {
		return
	}
	b := &c.blocks[id]
	if b.hashed {
		return
	}
	if _, dup := c.cached[hash]; dup {
		return
	}
	b.hash, b.hashed = hash, true
	c.cached[hash] = id
}

// pin holds references on a finished request's full blocks until expiry: the retention
// hint (kv_ttl_ms) that keeps a session's context resident across a tool call. A request
// that also said when it expects to be back (ReuseAfter) keeps that hint past the pin:
// its blocks, when the pin goes, are freed as hinted blocks (kvhint.go), not to the LRU
// queue, whose blocks are handed out before any hinted one. Freed plainly, a context
// whose tool outlasted its pin went first, before the contexts its own hint placed it
// among, and in aios bench pins with hints together did worse than either alone.
type pin struct {
	expiry int64 // virtual nanoseconds
	seq    uint64
	blocks []int32
	// end and after are the request's end and ReuseAfter (0: no hint).
	end, after time.Duration
}

// pinHeap orders pins by expiry, then by creation, so the soonest to expire is dropped
// first both when time passes and when the engine must reclaim memory to make progress.
type pinHeap []*pin

func (h pinHeap) Len() int { return len(h) }
func (h pinHeap) Less(i, j int) bool {
	if h[i].expiry != h[j].expiry {
		return h[i].expiry < h[j].expiry
	}
	return h[i].seq < h[j].seq
}
func (h pinHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *pinHeap) Push(x any)   { *h = append(*h, x.(*pin)) }
func (h *pinHeap) Pop() any {
	old := *h
	p := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	return p
}

var _ heap.Interface = (*pinHeap)(nil)
