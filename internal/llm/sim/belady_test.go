package sim

import (
	"math/rand/v2"
	"testing"
	"time"
)

func refsOf(xs ...uint64) []uint64 { return xs }

// Expected figures worked out by hand; the comments give the evictions.
func TestMIN(t *testing.T) {
	classic := refsOf(7, 0, 1, 2, 0, 3, 0, 4, 2, 3, 0, 3, 2)
	textbook := refsOf(7, 0, 1, 2, 0, 3, 0, 4, 2, 3, 0, 3, 2, 1, 2, 0, 1, 7, 0, 1)
	cases := []struct {
		name       string
		refs       []uint64
		capacity   int
		misses     int
		compulsory int
	}{
		{"empty", nil, 3, 0, 0},
		// 2 evicts 7 or 1 (neither comes back), 3 evicts the other, 4 evicts 0 (next at
		// 10, after 2 at 8 and 3 at 9), 0 evicts 4 (never again): 6 first references and
		// one repeat.
		{"classic, 3 blocks", classic, 3, 7, 6},
		// One block: every change of block misses, and no two neighbours are equal.
		{"classic, 1 block", classic, 1, 13, 6},
		{"classic, capacity = distinct", classic, 6, 6, 6},
		{"classic, capacity > distinct", classic, 100, 6, 6},
		{"classic, no cache", classic, 0, 13, 6},
		// The three-frame example of the operating-systems textbooks: 9 faults.
		{"textbook, 3 blocks", textbook, 3, 9, 6},
		{"one block repeated, 1 block", refsOf(5, 5, 5, 5), 1, 1, 1},
		{"one block repeated, 4 blocks", refsOf(5, 5, 5, 5), 4, 1, 1},
		// c evicts b (next at 4) rather than a (next at 3); LRU would evict a and miss
		// twice more.
		{"furthest, not least recent", refsOf(1, 2, 3, 1, 2), 2, 4, 3},
		// 3 evicts 2, which is never used again, although 1 was used longer ago.
		{"never again first", refsOf(1, 2, 1, 3, 1, 3), 2, 3, 3},
		// Cyclic a b c with 2 blocks: LRU misses every time; MIN misses every other.
		{"cycle", refsOf(1, 2, 3, 1, 2, 3, 1, 2, 3), 2, 6, 3},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := MIN(c.refs, c.capacity)
			if got.Misses != c.misses || got.Compulsory != c.compulsory {
				t.Errorf("MIN(%v, %d) = %d misses, %d compulsory; want %d, %d",
					c.refs, c.capacity, got.Misses, got.Compulsory, c.misses, c.compulsory)
			}
		})
	}
}

// lru counts misses under least-recently-used replacement: the simplest online policy,
// which MIN can never do worse than.
func lru(refs []uint64, capacity int) int {
	if capacity <= 0 {
		return len(refs)
	}
	last := map[uint64]int{} // resident block -> time of last use
	misses := 0
	for i, h := range refs {
		if _, ok := last[h]; !ok {
			misses++
			if len(last) == capacity {
				var victim uint64
				oldest := i
				for b, at := range last {
					if at < oldest {
						victim, oldest = b, at
					}
				}
				delete(last, victim)
			}
		}
		last[h] = i
	}
	return misses
}

// On random strings MIN never misses more than LRU, nor less than the distinct blocks,
// nor more than the references, and more room never hurts it.
func TestMINNoWorseThanLRU(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for trial := range 500 {
		n, alphabet := rng.IntN(200), 1+rng.IntN(20)
		refs := make([]uint64, n)
		for i := range refs {
			refs[i] = uint64(rng.IntN(alphabet)) * 0x9e3779b97f4a7c15
		}
		prev := n + 1
		for capacity := 1; capacity <= alphabet+1; capacity++ {
			m := MIN(refs, capacity)
			l := lru(refs, capacity)
			if m.Misses > l || m.Misses < m.Compulsory || m.Misses > n || m.Misses > prev {
				t.Fatalf("trial %d, capacity %d: MIN %d misses (%d compulsory, %d with one block less), LRU %d, on %v",
					trial, capacity, m.Misses, m.Compulsory, prev, l, refs)
			}
			prev = m.Misses
		}
	}
}

func FuzzMINNoWorseThanLRU(f *testing.F) {
	f.Add([]byte{7, 0, 1, 2, 0, 3, 0, 4, 2, 3, 0, 3, 2}, uint8(3))
	f.Fuzz(func(t *testing.T, b []byte, c uint8) {
		refs := make([]uint64, len(b))
		for i, x := range b {
			refs[i] = uint64(x % 32)
		}
		capacity := int(c%40) + 1
		if m, l := MIN(refs, capacity), lru(refs, capacity); m.Misses > l || m.Misses < m.Compulsory {
			t.Fatalf("capacity %d: MIN %d misses (%d compulsory), LRU %d", capacity, m.Misses, m.Compulsory, l)
		}
	})
}

func TestRefStringMisses(t *testing.T) {
	var s RefString
	// 70 references, so the hit bits span two words.
	for i := range 70 {
		s.add(uint64(i%5), i >= 5 && i%7 != 0)
	}
	misses, repeated := s.Misses()
	// Misses: the first five, then every multiple of 7 from 7 to 63 (9 of them), all
	// repeats.
	if misses != 14 || repeated != 9 || s.Len() != 70 {
		t.Errorf("%d references: %d misses, %d repeated; want 70, 14, 9", s.Len(), misses, repeated)
	}
	var none *RefString
	if m, r := none.Misses(); m != 0 || r != 0 || none.Len() != 0 {
		t.Error("a nil string has references")
	}
}

func recordingEngine(t *testing.T) *Engine {
	t.Helper()
	e, err := NewEngine(EngineConfig{Profile: mustProfile(t, "test"), RecordRefs: true})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

type ref struct {
	hash uint64
	hit  bool
}

func refList(s *RefString) []ref {
	var out []ref
	for i, h := range s.Hashes() {
		out = append(out, ref{h, s.Hit(i)})
	}
	return out
}

// Two requests share a 3-block prefix: the first computes its 4 blocks, the second takes
// the 3 shared ones from the cache and computes its own 2.
func TestEngineRecordsSharedPrefix(t *testing.T) {
	e := recordingEngine(t)
	a := &Request{ID: 1, Prompt: ids(1, 64), MaxTokens: 1, EOSAt: -1}
	if err := e.Submit(a, 0); err != nil {
		t.Fatal(err)
	}
	now := runUntilIdle(t, e, 0, 100)
	b := &Request{ID: 2, Prompt: append(append([]uint32{}, a.Prompt[:48]...), ids(2, 40)...), MaxTokens: 1, EOSAt: -1}
	if err := e.Submit(b, now); err != nil {
		t.Fatal(err)
	}
	runUntilIdle(t, e, now, 100)

	want := []ref{
		{a.hashes[0], false}, {a.hashes[1], false}, {a.hashes[2], false}, {a.hashes[3], false},
		{a.hashes[0], true}, {a.hashes[1], true}, {a.hashes[2], true},
		{b.hashes[3], false}, {b.hashes[4], false},
	}
	got := refList(e.Refs())
	if len(got) != len(want) {
		t.Fatalf("recorded %d references %v, want %d %v", len(got), got, len(want), want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("reference %d = %+v, want %+v", i, got[i], want[i])
		}
	}
	if misses, repeated := e.Refs().Misses(); misses != 6 || repeated != 0 {
		t.Errorf("%d misses, %d repeated; want 6, 0", misses, repeated)
	}
	if e.Refs().Len()-6 != int(e.Stats().PrefixHits/16) {
		t.Errorf("recorded hits disagree with the prefix-hit counter (%d tokens)", e.Stats().PrefixHits)
	}
}

// Blocks filled by decode are recorded as computed, so the next turn's hits on them are
// hits on content the string has seen.
func TestEngineRecordsDecodeBlocks(t *testing.T) {
	e := recordingEngine(t)
	a := &Request{ID: 1, Prompt: ids(3, 16), MaxTokens: 20, EOSAt: -1, Seed: 9}
	e.Submit(a, 0)
	now := runUntilIdle(t, e, 0, 100)
	next := append([]uint32{}, a.Prompt...)
	for i := range 20 {
		next = append(next, OutputToken(9, i))
	}
	b := &Request{ID: 2, Prompt: next, MaxTokens: 1, EOSAt: -1}
	e.Submit(b, now)
	runUntilIdle(t, e, now, 100)
	// a computes 16 + 19 tokens: block 0 from its prompt, block 1 during decode.
	want := []ref{{a.hashes[0], false}, {a.hashes[1], false}, {a.hashes[0], true}, {a.hashes[1], true}}
	got := refList(e.Refs())
	if len(got) != len(want) || got[0] != want[0] || got[1] != want[1] || got[2] != want[2] || got[3] != want[3] {
		t.Fatalf("recorded %+v, want %+v", got, want)
	}
}

func TestEngineRecordsNothingUnlessAsked(t *testing.T) {
	e := newTestEngine(t, "test", ModeVLLM, PolicyFCFS)
	e.Submit(&Request{Prompt: ids(1, 64), MaxTokens: 1, EOSAt: -1}, 0)
	runUntilIdle(t, e, 0, 100)
	if e.Refs() != nil {
		t.Error("an engine not asked to record has a reference string")
	}
	n, err := NewEngine(EngineConfig{Profile: mustProfile(t, "test"), Mode: ModeNaive, RecordRefs: true})
	if err != nil {
		t.Fatal(err)
	}
	if n.Refs() != nil {
		t.Error("naive mode, which has no prefix cache, has a reference string")
	}
}

// Under memory pressure, preemptions, cancellations and pins, the recorded string stays
// one the engine's cache could have served: every hit is on content referenced before,
// and the engine never misses less than MIN with the engine's capacity.
func TestEngineRefsBoundedByMIN(t *testing.T) {
	for seed := range uint64(5) {
		rng := rand.New(rand.NewPCG(seed, 7))
		e := recordingEngine(t)
		var live []*Request
		now := time.Duration(0)
		for i := range 200 {
			shared := ids(uint64(rng.IntN(3)), rng.IntN(300))
			r := &Request{ID: uint64(i), Prompt: append(shared, ids(uint64(1000+i), 1+rng.IntN(300))...),
				MaxTokens: 1 + rng.IntN(400), EOSAt: rng.IntN(300) - 50,
				KVTTL: time.Duration(rng.IntN(3)) * 50 * time.Millisecond}
			if e.Submit(r, now) == nil {
				live = append(live, r)
			}
			for range rng.IntN(4) {
				if !e.Idle() {
					now = e.Step(now).End
				}
			}
			if rng.IntN(20) == 0 && len(live) > 0 {
				e.Cancel(live[rng.IntN(len(live))], now)
			}
		}
		runUntilIdle(t, e, now, 1_000_000)
		s := e.Refs()
		seen := map[uint64]bool{}
		for i, h := range s.Hashes() {
			if s.Hit(i) && !seen[h] {
				t.Fatalf("seed %d: reference %d hits on a block never referenced before", seed, i)
			}
			seen[h] = true
		}
		misses, repeated := s.Misses()
		m := MIN(s.Hashes(), e.Stats().NumBlocks)
		if m.Misses > misses || m.Compulsory != misses-repeated {
			t.Fatalf("seed %d: engine %d misses (%d repeated), MIN %d (%d compulsory)", seed, misses, repeated, m.Misses, m.Compulsory)
		}
		if e.Stats().Preemptions == 0 || repeated == 0 {
			t.Fatalf("seed %d: no preemption or eviction; the test lost its pressure", seed)
		}
		t.Logf("seed %d: %d references, engine %d misses, MIN %d, compulsory %d, %d preemptions",
			seed, s.Len(), misses, m.Misses, m.Compulsory, e.Stats().Preemptions)
	}
}
