package sim

import (
	"fmt"
	"slices"
	"time"
)

// cpuTier is a second KV store in host memory behind the GPU cache, as vLLM's native CPU
// offloading (--kv-offloading-size) and LMCache keep one: a fixed number of block-sized
// slots holding content by block hash, least recently used evicted first.
//
// Only hashes are kept: the simulator never holds KV values, so a slot is the fact that
// the content named by a hash could be copied back instead of recomputed.
type cpuTier struct {
	capacity   int
	index      map[uint64]int32
	slots      []cpuSlot
	head, tail int32 // head is the least recently used; noBlock when empty
}

type cpuSlot struct {
	hash       uint64
	prev, next int32
}

func newCPUTier(capacity int) *cpuTier {
	return &cpuTier{capacity: capacity, index: make(map[uint64]int32), head: noBlock, tail: noBlock}
}

func (t *cpuTier) len() int { return len(t.index) }

// lookup counts the leading hashes the tier holds. It changes nothing: admission may
// still find that the request does not fit.
func (t *cpuTier) lookup(hashes []uint64) int {
	n := 0
	for _, h := range hashes {
		if _, ok := t.index[h]; !ok {
			break
		}
		n++
	}
	return n
}

// touch marks a held hash as just used.
func (t *cpuTier) touch(h uint64) {
	if id, ok := t.index[h]; ok {
		t.unlink(id)
		t.pushTail(id)
	}
}

// store copies the content named by h into the tier, evicting the least recently used
// slot when full, and reports whether a copy was made (false: it was there already, as
// it is when a block loaded back is evicted again, so no transfer is needed).
func (t *cpuTier) store(h uint64) bool {
	if id, ok := t.index[h]; ok {
		t.unlink(id)
		t.pushTail(id)
		return false
	}
	var id int32
	if len(t.slots) < t.capacity {
		id = int32(len(t.slots))
		t.slots = append(t.slots, cpuSlot{})
	} else {
		id = t.head
		t.unlink(id)
		delete(t.index, t.slots[id].hash)
	}
	t.slots[id].hash = h
	t.index[h] = id
	t.pushTail(id)
	return true
}

func (t *cpuTier) pushTail(id int32) {
	s := &t.slots[id]
	s.prev, s.next = t.tail, noBlock
	if t.tail == noBlock {
		t.head = id
	} else {
		t.slots[t.tail].next = id
	}
	t.tail = id
}

func (t *cpuTier) unlink(id int32) {
	s := &t.slots[id]
	if s.prev == noBlock {
		t.head = s.next
	} else {
		t.slots[s.prev].next = s.next
	}
	if s.next == noBlock {
		t.tail = s.prev
	} else {
		t.slots[s.next].prev = s.prev
	}
	s.prev, s.next = noBlock, noBlock
}

// checkOffload refuses a CPU tier that cannot work.
func checkOffload(p Profile, cfg EngineConfig) error {
	switch {
	case cfg.OffloadBytes < 0:
		return fmt.Errorf("sim: the KV offload size must not be negative, got %d bytes", cfg.OffloadBytes)
	case cfg.OffloadBytes == 0:
		return nil
	case cfg.Mode == ModeNaive:
		return fmt.Errorf("sim: KV offload needs the vllm mode's paged cache; naive mode has none to offload")
	case p.OffloadBandwidth <= 0:
		return fmt.Errorf("sim: profile %q has no offload bandwidth, so KV offload cannot be priced", p.Name)
	}
	return nil
}

// GiBBytes converts a size in GiB, as vLLM's --kv-offloading-size takes it, to bytes.
func GiBBytes(g float64) int64 { return int64(g * gib) }

// OffloadBlocks is how many KV blocks bytes of host memory hold.
func (p Profile) OffloadBlocks(bytes int64) int {
	if bytes <= 0 || p.KVBytesPerToken <= 0 || p.BlockSize <= 0 {
		return 0
	}
	return int(bytes / (p.KVBytesPerToken * int64(p.BlockSize)))
}

// LoadTime is how long copying blocks KV blocks from host memory to the GPUs takes at
// the profile's offload bandwidth.
func (p Profile) LoadTime(blocks int) time.Duration {
	if blocks <= 0 || p.OffloadBandwidth <= 0 {
		return 0
	}
	bytes := float64(blocks) * float64(p.BlockSize) * float64(p.KVBytesPerToken)
	return time.Duration(bytes/p.OffloadBandwidth*1e9 + 0.5)
}

// evicted hears that the GPU cache dropped the content named by h: it goes to the CPU
// tier, as vLLM's offloading connector keeps a copy of what the GPU can no longer hold.
func (e *Engine) evicted(h uint64) {
	if e.cpu.store(h) {
		e.stats.OffloadStoredBlocks++
	}
}

// load takes blocks found in the CPU tier for a request being admitted: they are copied
// back this step, and the step pays for the copy.
func (e *Engine) load(hashes []uint64) {
	for _, h := range hashes {
		e.cpu.touch(h)
	}
	e.stepLoad += len(hashes)
	e.stats.OffloadLoadedBlocks += int64(len(hashes))
}

// Offload swaps r's KV out now: each of its full blocks still cached on the GPU is copied
// to the CPU tier, and those nobody holds go to the front of the GPU's eviction order, so
// memory pressure takes a suspended program's context (which can come back at PCIe
// speed) before anything that would have to be recomputed. The GPU copy stays findable
// until then, as any cached free block does. It returns the blocks copied; with no CPU
// tier it does nothing. The copy is not charged to any step: device-to-host copies run
// on their own DMA engine while the GPU computes, as vLLM's and LMCache's stores do.
func (e *Engine) Offload(r *Request) int {
	return e.copyOut(r, true)
}

// Store copies r's full blocks still cached on the GPU to the CPU tier, as Offload
// does, but leaves the GPU's eviction order alone: the context stays as likely to be
// kept as any other, and if evicted it is already in the tier, marked recently used
// there. It returns the blocks copied.
func (e *Engine) Store(r *Request) int {
	return e.copyOut(r, false)
}

func (e *Engine) copyOut(r *Request, evictFirst bool) int {
	if e.cpu == nil {
		return 0
	}
	stored := 0
	var demote []int32
	// Last block first, so that the CPU tier too drops the tail of the prefix before its
	// head.
	for k := len(r.hashes) - 1; k >= 0; k-- {
		id, ok := e.kv.cached[r.hashes[k]]
		if !ok {
			continue
		}
		if e.cpu.store(r.hashes[k]) {
			stored++
		}
		if evictFirst && e.kv.blocks[id].ref == 0 {
			demote = append(demote, id)
		}
	}
	slices.Reverse(demote)
	e.kv.demote(demote)
	e.stats.OffloadStoredBlocks += int64(stored)
	return stored
}
