package memory

import "sync"

// hotSet is the RAM manager of the AIOS paper: notes held in memory with their vectors,
// within a byte budget. Past 80% of the budget it evicts by LRU-K down to 70%, so one
// eviction pass makes room for many inserts instead of running at every one. Evicting
// loses nothing: every note is in the database before it enters the hot set.
type hotSet struct {
	mu        sync.Mutex
	budget    int64
	lru       *lruK
	notes     map[int64]*hotNote
	byID      map[string]int64
	evictions int64
	faults    int64
}

// hotNote is a note as held in RAM. It is never changed once in the set (bump
// replaces it), so readers use it without the lock.
type hotNote struct {
	rid   int64
	scope string
	note  Note
	vec   []float32
	code  []uint64 // vec's SimHash, for the vector index
	// embedder names vec's space; a vector from another space is never compared.
	embedder string
}

// noteOverhead approximates the maps, slices and headers around a note's data.
const noteOverhead = 256

func (h *hotNote) size() int64 {
	n := h.note
	s := int64(noteOverhead + len(n.ID) + len(n.Agent) + len(n.Block) + len(n.Content) + len(n.Category) +
		len(n.Context) + len(h.scope) + 4*len(h.vec))
	for _, l := range [][]string{n.Keywords, n.Tags, n.Links} {
		for _, w := range l {
			s += int64(len(w)) + 16
		}
	}
	s += int64(64 * len(n.Metadata)) // a rough figure: values are small JSON scalars in practice
	return s
}

func (h *hotSet) init(budget int64, k int) {
	h.budget = budget
	h.lru = newLRUK(k)
	h.notes = map[int64]*hotNote{}
	h.byID = map[string]int64{}
}

// get returns the note with id if it is hot, recording the access.
func (h *hotSet) get(id string) (*hotNote, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	rid, ok := h.byID[id]
	if !ok {
		return nil, false
	}
	hn := h.notes[rid]
	h.lru.access(rid, hn.size())
	return hn, true
}

// touch returns the hot note rid, recording the access.
func (h *hotSet) touch(rid int64) (*hotNote, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	hn, ok := h.notes[rid]
	if ok {
		h.lru.access(rid, hn.size())
	}
	return hn, ok
}

// peek returns the hot note rid without counting an access: ranking reads candidates'
// vectors, and counting those would let every search's candidates crowd out what
// agents actually read.
func (h *hotSet) peek(rid int64) (*hotNote, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	hn, ok := h.notes[rid]
	return hn, ok
}

// put makes hn hot (replacing any older copy), records an access, counts a fault when
// it was loaded from the database, and evicts if past the high watermark.
func (h *hotSet) put(hn *hotNote, fault bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if fault {
		h.faults++
	}
	h.notes[hn.rid] = hn
	h.byID[hn.note.ID] = hn.rid
	h.lru.access(hn.rid, hn.size())
	h.lru.pin(hn.rid, hn.note.Pinned)
	if h.lru.bytes > h.budget/10*8 {
		for _, rid := range h.lru.evictTo(h.budget / 10 * 7) {
			delete(h.byID, h.notes[rid].note.ID)
			delete(h.notes, rid)
			h.evictions++
		}
	}
}

func (h *hotSet) remove(rid int64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if hn, ok := h.notes[rid]; ok {
		delete(h.byID, hn.note.ID)
		delete(h.notes, rid)
		h.lru.remove(rid)
	}
}

// bump adds n retrievals to a hot note's count, so the copy in RAM matches the database
// plus the counts not yet written.
func (h *hotSet) bump(rid int64, n int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if hn, ok := h.notes[rid]; ok {
		c := *hn
		c.note.Retrievals += n
		h.notes[rid] = &c
	}
}

func (h *hotSet) stats() (notes int, bytes, evictions, faults int64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.notes), h.lru.bytes, h.evictions, h.faults
}
