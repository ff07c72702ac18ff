package sim

// RefString is the prefix cache's block reference string: every use of a full KV block's
// content, in the order the engine made them, and whether the content was already cached.
//
// A block is used when a request admitted to prefill (including one readmitted after a
// preemption) takes it from the prefix cache (a hit), and when the engine computes it and
// registers it in the cache (a miss): the blocks of the prompt the lookup did not find,
// and the blocks decode fills, which a later call's prompt repeats. Recording the decode
// blocks matters: the engine hits on them in the next turn, so a string without them
// would show hits on content never referenced, and no replacement policy over it, MIN
// included, would bound the engine's misses from below.
//
// It is kept compact, a hash per reference and a bit per hit, since a large run records
// millions.
type RefString struct {
	hashes []uint64
	hits   []uint64 // bit i set: reference i was a hit
}

func (s *RefString) add(hash uint64, hit bool) {
	i := len(s.hashes)
	s.hashes = append(s.hashes, hash)
	if i%64 == 0 {
		s.hits = append(s.hits, 0)
	}
	if hit {
		s.hits[i/64] |= 1 << (i % 64)
	}
}

// Len is the number of references.
func (s *RefString) Len() int {
	if s == nil {
		return 0
	}
	return len(s.hashes)
}

// Hashes are the referenced blocks' hashes, in order. The caller must not modify them.
func (s *RefString) Hashes() []uint64 {
	if s == nil {
		return nil
	}
	return s.hashes
}

// Hit reports whether reference i found its block cached.
func (s *RefString) Hit(i int) bool { return s.hits[i/64]&(1<<(i%64)) != 0 }

// Misses are the engine's own figures on its string: references whose block was not
// cached, and of those the ones whose content had been referenced before (computed,
// evicted and computed again) rather than seen for the first time.
func (s *RefString) Misses() (misses, repeated int) {
	if s.Len() == 0 {
		return 0, 0
	}
	seen := make(map[uint64]struct{}, len(s.hashes)/4)
	for i, h := range s.hashes {
		_, before := seen[h]
		if !before {
			seen[h] = struct{}{}
		}
		if !s.Hit(i) {
			misses++
			if before {
				repeated++
			}
		}
	}
	return misses, repeated
}
