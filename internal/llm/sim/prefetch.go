package sim

// Prefetch swaps r's KV back in ahead of its next use, as Tokencake and KVFlow do
// before a program's tool call returns: the leading full blocks of r's context that
// the GPU cache lost and the CPU tier holds are copied into free GPU blocks and
// registered in the prefix cache, so the program's next request finds them there. Those
// still on the GPU and free are moved to the back of the eviction order, where they
// are safest.
//
// Only free blocks are taken, least recently used first (what admission would take),
// never one a running request or a pin holds, and never one of r's own; the copy stops
// at the first block neither tier holds, since a prefix hit ends there. The copy time,
// at the profile's offload bandwidth, is added to the engine's next step, as a load at
// admission is. It returns the blocks copied; with no CPU tier it does nothing.
func (e *Engine) Prefetch(r *Request) int {
	if e.cpu == nil {
		return 0
	}
	// The prefix both tiers hold between them, and r's blocks among the free ones.
	n, own := 0, 0
	for _, h := range r.hashes {
		if id, ok := e.kv.cached[h]; ok {
			if e.kv.blocks[id].ref == 0 {
				own++
			}
		} else if _, ok := e.cpu.index[h]; !ok {
			break
		}
		n++
	}
	// First refresh what is on the GPU, so the copies below take other blocks.
	for _, h := range r.hashes[:n] {
		if id, ok := e.kv.cached[h]; ok && e.kv.blocks[id].ref == 0 {
			e.kv.unlink(id)
			e.kv.pushTail(id)
		}
	}
	// Then mark what is to be copied as just used in the CPU tier, so that the blocks
	// the copies evict, stored there, do not push it out first.
	for _, h := range r.hashes[:n] {
		if _, ok := e.kv.cached[h]; !ok {
			e.cpu.touch(h)
		}
	}
	spare := e.kv.numFree - own
	copied := 0
	var one [1]int32
	for _, h := range r.hashes[:n] {
		if _, ok := e.kv.cached[h]; ok {
			continue
		}
		if _, ok := e.cpu.index[h]; !ok || copied == spare {
			break // a tier too small for the prefix lost it after all, or no room
		}
		e.kv.alloc(one[:0], 1)
		e.kv.commit(one[0], h)
		e.kv.release(one[:])
		copied++
	}
	e.prefetched += copied
	e.stats.OffloadLoadedBlocks += int64(copied)
	e.stats.PrefetchedBlocks += int64(copied)
	return copied
}
