package memory

import "sort"

// lruK orders entries for eviction by LRU-K (O'Neil, O'Neil and Weikum, SIGMOD 1993):
// the victim is the entry whose K-th most recent access is oldest. An entry accessed
// fewer than K times has an infinite backward K-distance, so all of those go first,
// oldest first access first; a note read once by a scan therefore never pushes out one
// read again and again, which plain LRU would do. Pinned entries are never chosen.
//
// It is a pure data structure: time is a counter the caller advances (one tick per
// access), nothing here reads a clock or locks, and tests drive it as a table.
type lruK struct {
	k     int
	tick  uint64
	items map[int64]*lruItem
	bytes int64 // sum of sizes, pinned included
}

type lruItem struct {
	hist   []uint64 // the last k access ticks, most recent first
	size   int64
	pinned bool
}

func newLRUK(k int) *lruK {
	return &lruK{k: max(k, 1), items: map[int64]*lruItem{}}
}

// access records one access to key, adding it with size if it is absent (a size change
// of a present key is applied too: an updated note may grow).
func (l *lruK) access(key int64, size int64) {
	l.tick++
	it := l.items[key]
	if it == nil {
		it = &lruItem{hist: make([]uint64, 0, l.k)}
		l.items[key] = it
	}
	l.bytes += size - it.size
	it.size = size
	if len(it.hist) < l.k {
		it.hist = append(it.hist, 0)
	}
	copy(it.hist[1:], it.hist)
	it.hist[0] = l.tick
}

func (l *lruK) has(key int64) bool { return l.items[key] != nil }

func (l *lruK) pin(key int64, pinned bool) {
	if it := l.items[key]; it != nil {
		it.pinned = pinned
	}
}

func (l *lruK) remove(key int64) {
	if it := l.items[key]; it != nil {
		l.bytes -= it.size
		delete(l.items, key)
	}
}

// evictTo removes unpinned entries, in LRU-K order, until the entries' bytes are at
// most target, and returns the removed keys in the order chosen. When pinned entries
// alone exceed target it stops with every unpinned entry gone.
func (l *lruK) evictTo(target int64) []int64 {
	if l.bytes <= target {
		return nil
	}
	type cand struct {
		key  int64
		full bool   // accessed at least k times
		at   uint64 // k-th most recent access if full, else the oldest access
	}
	cands := make([]cand, 0, len(l.items))
	for key, it := range l.items {
		if it.pinned {
			continue
		}
		full := len(it.hist) >= l.k
		cands = append(cands, cand{key, full, it.hist[len(it.hist)-1]})
	}
	sort.Slice(cands, func(i, j int) bool {
		a, b := cands[i], cands[j]
		if a.full != b.full {
			return !a.full
		}
		return a.at < b.at // ticks are unique, so the order is total
	})
	var out []int64
	for _, c := range cands {
		if l.bytes <= target {
			break
		}
		l.remove(c.key)
		out = append(out, c.key)
	}
	return out
}
