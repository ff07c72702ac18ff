package sim

// MINResult is what Bélády's optimal replacement does on a reference string.
type MINResult struct {
	Misses int
	// Compulsory misses are first references: no policy avoids them, so Misses -
	// Compulsory is what MIN has to recompute after evicting.
	Compulsory int
}

// MIN replays refs through a cache of capacity blocks under Bélády's optimal replacement
// (L. A. Bélády, "A study of replacement algorithms for a virtual-storage computer", IBM
// Systems Journal 5(2), 1966): on a miss with the cache full, evict the resident block
// whose next reference is furthest away, blocks never referenced again first. No policy
// that loads a block only when it is referenced misses less on the same string and
// capacity.
//
// It runs in O(n log n): next uses are found in one backward pass, and residents sit in a
// max-heap keyed by next use. A hit leaves the block's old heap entry behind rather than
// fixing it in place; an entry is stale when its key is no longer its block's, and is
// skipped when it surfaces.
func MIN(refs []uint64, capacity int) MINResult {
	n := len(refs)
	var res MINResult
	if n == 0 {
		return res
	}
	// Dense ids let the rest run on slices instead of maps.
	ids := make([]int32, n)
	dense := make(map[uint64]int32, n/4)
	for i, h := range refs {
		d, ok := dense[h]
		if !ok {
			d = int32(len(dense))
			dense[h] = d
		}
		ids[i] = d
	}
	distinct := len(dense)
	dense = nil
	res.Compulsory = distinct
	if capacity <= 0 {
		res.Misses = n
		return res
	}
	if capacity >= distinct {
		res.Misses = distinct
		return res
	}

	// next[i] is the index of the next reference to refs[i]'s block; a block never
	// referenced again gets n+i, past every real index and unique, so that keys identify
	// heap entries and never-again blocks go first.
	next := make([]int, n)
	last := make([]int, distinct)
	for d := range last {
		last[d] = -1
	}
	for i := n - 1; i >= 0; i-- {
		d := ids[i]
		if last[d] < 0 {
			next[i] = n + i
		} else {
			next[i] = last[d]
		}
		last[d] = i
	}
	key := last // reused: a resident block's current next use, or -1 when not resident
	for d := range key {
		key[d] = -1
	}

	h := make(useHeap, 0, capacity+1)
	resident := 0
	for i, d := range ids {
		if key[d] >= 0 {
			key[d] = next[i]
			h.push(use{next[i], d})
			continue
		}
		res.Misses++
		if resident == capacity {
			for {
				e := h.pop()
				if key[e.block] == e.next {
					key[e.block] = -1
					break
				}
			}
			resident--
		}
		key[d] = next[i]
		h.push(use{next[i], d})
		resident++
	}
	return res
}

type use struct {
	next  int
	block int32
}

// useHeap is a max-heap on next. Hand-rolled rather than container/heap: it is the inner
// loop of a replay of millions of references, and the interface boxing shows.
type useHeap []use

func (h *useHeap) push(u use) {
	*h = append(*h, u)
	s := *h
	i := len(s) - 1
	for i > 0 {
		p := (i - 1) / 2
		if s[p].next >= s[i].next {
			break
		}
		s[p], s[i] = s[i], s[p]
		i = p
	}
}

func (h *useHeap) pop() use {
	s := *h
	top := s[0]
	last := len(s) - 1
	s[0] = s[last]
	s = s[:last]
	for i := 0; ; {
		l, big := 2*i+1, i
		if l < len(s) && s[l].next > s[big].next {
			big = l
		}
		if r := l + 1; r < len(s) && s[r].next > s[big].next {
			big = r
		}
		if big == i {
			break
		}
		s[i], s[big] = s[big], s[i]
		i = big
	}
	*h = s
	return top
}
