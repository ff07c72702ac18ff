package memory

import (
	"context"
	"encoding/binary"
	"math"
	"math/bits"
	"math/rand/v2"
	"sync"

	"github.com/aios-go/aios/internal/sqldb"
)

// vectorIndex finds vector candidates among all of a scope's notes, hot or not, so
// retrieval never depends on what the RAM manager happens to hold. Keeping every float
// vector in RAM would cost 1 KiB per note (256 dimensions) and // ~25M multiply-adds, too slow for a 10 ms p99 on one core. Instead each note keeps a
// SimHash code (Charikar 2002): one bit per random hyperplane, the side of it the vector
// lies on. Two vectors' codes differ in a fraction θ/π of bits, θ their angle, so the
// Hamming distance ranks by cosine without the floats; a scan of 100k codes is ~800k
// popcounts, and the best few hundred are re-ranked by exact cosine with the float
// vectors from the hot set or the database. (Plain sign bits of the vector itself do
// not work: hashed embeddings are sparse, most coordinates are zero, and TestVectorRecall
// measured recall@10 of 0.29 with them.) Codes are stored with the note, so loading a
// scope reads 64 bytes a note, not its vector.
type vectorIndex struct {
	mu     sync.Mutex
	scopes map[string]*scopeIndex
}

// scopeIndex is one scope's codes, loaded from the database on first search.
type scopeIndex struct {
	mu      sync.RWMutex
	loaded  bool
	words   int // uint64 words per code; fixed by the first vector seen
	rids    []int64
	updated []int64 // for recency, without a database round trip
	codes   []uint64
	pos     map[int64]int
}

func (x *vectorIndex) init() { x.scopes = map[string]*scopeIndex{} }

func (x *vectorIndex) scope(s string) *scopeIndex {
	x.mu.Lock()
	defer x.mu.Unlock()
	si := x.scopes[s]
	if si == nil {
		si = &scopeIndex{pos: map[int64]int{}}
		x.scopes[s] = si
	}
	return si
}

// bytes is the RAM the loaded codes take.
func (x *vectorIndex) bytes() int64 {
	x.mu.Lock()
	all := make([]*scopeIndex, 0, len(x.scopes))
	for _, si := range x.scopes {
		all = append(all, si)
	}
	x.mu.Unlock()
	var n int64
	for _, si := range all {
		si.mu.RLock()
		// rid, updated, code words and the position map's entry (about 3 words).
		n += int64(len(si.rids)) * int64(8+8+8*si.words+24)
		si.mu.RUnlock()
	}
	return n
}

// codeBits is the SimHash length: 512 bits separate cosines of 0.3 from 0.05 by about
// five standard deviations of the Hamming distance, which is what the re-rank pool
// needs; 256 bits gave visibly lower recall in TestVectorRecall.
const codeBits = 512

// planeSeed fixes the hyperplanes: stored codes are only comparable with codes made
// from the same planes, so changing it (or codeBits) requires recomputing every code.
const planeSeed = 0x61696f73

var planes struct {
	mu    sync.Mutex
	byDim map[int][]float32 // codeBits rows of dim Gaussian entries
}

func planesFor(dim int) []float32 {
	planes.mu.Lock()
	defer planes.mu.Unlock()
	if p, ok := planes.byDim[dim]; ok {
		return p
	}
	if planes.byDim == nil {
		planes.byDim = map[int][]float32{}
	}
	r := rand.New(rand.NewPCG(planeSeed, uint64(dim)))
	p := make([]float32, codeBits*dim)
	for i := range p {
		p[i] = float32(r.NormFloat64())
	}
	planes.byDim[dim] = p
	return p
}

// simHash is v's code: bit i is set when v lies on the positive side of plane i.
func simHash(v []float32) []uint64 {
	c := make([]uint64, codeBits/64)
	if len(v) == 0 {
		return c
	}
	p := planesFor(len(v))
	for i := range codeBits {
		row := p[i*len(v) : (i+1)*len(v)]
		var dot float32
		for j, x := range v {
			dot += x * row[j]
		}
		if dot > 0 {
			c[i/64] |= 1 << (i % 64)
		}
	}
	return c
}

func encodeCode(c []uint64) []byte {
	b := make([]byte, 8*len(c))
	for i, w := range c {
		binary.LittleEndian.PutUint64(b[8*i:], w)
	}
	return b
}

func decodeCode(b []byte) []uint64 {
	c := make([]uint64, len(b)/8)
	for i := range c {
		c[i] = binary.LittleEndian.Uint64(b[8*i:])
	}
	return c
}

// set records rid's code (nil: not searchable by vector) after a committed write. An
// index not loaded yet ignores it: its load will read the committed row.
func (si *scopeIndex) set(rid int64, updated int64, code []uint64) {
	si.mu.Lock()
	defer si.mu.Unlock()
	if !si.loaded {
		return
	}
	si.setLocked(rid, updated, code)
}

func (si *scopeIndex) setLocked(rid int64, updated int64, code []uint64) {
	if len(code) == 0 {
		si.dropLocked(rid)
		return
	}
	if si.words == 0 {
		si.words = len(code)
	}
	if len(code) != si.words {
		si.dropLocked(rid) // another embedding space; see Manager.indexScope
		return
	}
	if i, ok := si.pos[rid]; ok {
		si.updated[i] = updated
		copy(si.codes[i*si.words:], code)
		return
	}
	si.pos[rid] = len(si.rids)
	si.rids = append(si.rids, rid)
	si.updated = append(si.updated, updated)
	si.codes = append(si.codes, code...)
}

func (si *scopeIndex) drop(rid int64) {
	si.mu.Lock()
	defer si.mu.Unlock()
	si.dropLocked(rid)
}

// dropLocked moves the last entry into rid's place, keeping the arrays dense.
func (si *scopeIndex) dropLocked(rid int64) {
	i, ok := si.pos[rid]
	if !ok {
		return
	}
	last := len(si.rids) - 1
	if i != last {
		si.rids[i], si.updated[i] = si.rids[last], si.updated[last]
		copy(si.codes[i*si.words:(i+1)*si.words], si.codes[last*si.words:])
		si.pos[si.rids[i]] = i
	}
	si.rids, si.updated = si.rids[:last], si.updated[:last]
	si.codes = si.codes[:last*si.words]
	delete(si.pos, rid)
}

// load reads the scope's vectors once. Writers apply their changes under si.mu after
// committing, so a change either committed before the load's read (and is in it) or is
// applied after the load (set is idempotent): nothing is missed.
func (si *scopeIndex) load(ctx context.Context, q sqldb.Querier, scope, embedder string) (skipped int, err error) {
	si.mu.Lock()
	defer si.mu.Unlock()
	if si.loaded {
		return 0, nil
	}
	rs, err := q.Query(ctx, `SELECT rid, updated, embedder, code FROM mem_notes WHERE scope = $1`, scope)
	if err != nil {
		return 0, err
	}
	defer rs.Close()
	for rs.Next() {
		var rid, updated int64
		var name string
		var raw []byte
		if err := rs.Scan(&rid, &updated, &name, &raw); err != nil {
			return 0, err
		}
		if name != embedder || len(raw) == 0 {
			skipped++
			continue
		}
		si.setLocked(rid, updated, decodeCode(raw))
	}
	if err := rs.Err(); err != nil {
		si.rids, si.updated, si.codes, si.pos, si.words = nil, nil, nil, map[int64]int{}, 0
		return 0, err
	}
	si.loaded = true
	return skipped, nil
}

// candidate is one vector match before re-ranking.
type candidate struct {
	rid     int64
	updated int64
	dist    int
}

// nearest returns up to n entries with the smallest Hamming distance to code that pass
// keep (nil keeps all). Distances are small integers, so a histogram finds the cut-off
// in one pass instead of a sort or heap over every entry.
func (si *scopeIndex) nearest(code []uint64, n int, keep func(rid int64) bool, out []candidate) []candidate {
	si.mu.RLock()
	defer si.mu.RUnlock()
	if si.words == 0 || len(code) != si.words || n <= 0 {
		return out
	}
	w := si.words
	dist := make([]uint16, len(si.rids))
	hist := make([]int, 64*w+1)
	for i := range si.rids {
		if keep != nil && !keep(si.rids[i]) {
			dist[i] = math.MaxUint16
			continue
		}
		d := 0
		c := si.codes[i*w : (i+1)*w]
		for j, x := range code {
			d += bits.OnesCount64(x ^ c[j])
		}
		dist[i] = uint16(d)
		hist[d]++
	}
	cut, total := 0, 0
	for cut = range hist {
		total += hist[cut]
		if total >= n {
			break
		}
	}
	for i, d := range dist {
		if int(d) <= cut {
			out = append(out, candidate{si.rids[i], si.updated[i], int(d)})
		}
	}
	return out
}

func encodeVec(v []float32) []byte {
	b := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(x))
	}
	return b
}

func decodeVec(b []byte) []float32 {
	v := make([]float32, len(b)/4)
	for i := range v {
		v[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
	}
	return v
}
