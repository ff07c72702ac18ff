package storage

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"math"
	"sync"
	"unicode/utf8"
)

const (
	// indexMaxBytes bounds the text files indexed: larger files are stored but not
	// searchable. PostgreSQL's tsvector holds at most 1 MiB, and a file this size is
	// already more than any agent reads as one retrieval result.
	indexMaxBytes = 256 << 10
	// embedMaxBytes is how much of a file is embedded: embedding models read a few
	// thousand tokens at most, and the opening of a file says most of what it is about.
	embedMaxBytes = 8 << 10
	// maxCachedNamespaces bounds the vector cache; beyond it, an arbitrary namespace is
	// dropped and reloaded from the database when next searched.
	maxCachedNamespaces = 256
)

// textOf returns b as text when it should be indexed: a non-empty UTF-8 file without NUL
// bytes, small enough to index.
func textOf(b []byte, size int64) (string, bool) {
	if size == 0 || size > indexMaxBytes || int64(len(b)) != size {
		return "", false
	}
	if !utf8.Valid(b) || bytes.IndexByte(b, 0) >= 0 {
		return "", false
	}
	return string(b), true
}

// prepareDoc embeds text before any transaction opens: the embedder may be a remote
// model, and a write must not hold the database while it answers. If it fails the file
// is still indexed by keywords and embedded again at the next Retrieve.
func (m *Manager) prepareDoc(ctx context.Context, ns, path, stamp, text string) *docRow {
	d := &docRow{ns: ns, path: path, stamp: stamp, body: text}
	vs, err := m.emb.Embed(ctx, []string{clip(text, embedMaxBytes)})
	if err != nil || len(vs) != 1 {
		m.log.Warn("embedding failed; the file is searchable by keywords until it is embedded again", "path", path, "err", err)
		return d
	}
	d.vec, d.embedder = encodeVec(vs[0]), m.emb.Name()
	return d
}

// index replaces path's document (or drops it, for content that is not indexed) inside
// the write's transaction, so the index never disagrees with the files.
func (m *Manager) index(ctx context.Context, t tx, ns, path string, d *docRow) error {
	var err error
	if d != nil {
		err = m.db.putDoc(ctx, t, *d)
	} else {
		err = m.db.dropDocs(ctx, t, ns, path, false)
	}
	if err != nil {
		return err
	}
	return bumpGen(ctx, t, ns)
}

// clip cuts s to at most n bytes without splitting a character.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

func encodeVec(v []float32) []byte {
	b := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(x))
	}
	return b
}

// vecSet is one namespace's vectors, immutable once built so searches scan it unlocked.
type vecSet struct {
	gen   int64
	name  string
	dim   int
	ids   []int64
	paths []string
	flat  []float32 // len(ids) * dim
}

type vecEntry struct {
	mu  sync.Mutex // held while (re)loading, so concurrent searches load once
	cur *vecSet
}

// vectorCache keeps each searched namespace's vectors in memory: scanning 10k vectors
// takes about a millisecond, reading them from the database each time far longer. A
// per-namespace generation counter, bumped in every transaction that changes documents,
// tells when a set is stale; that also keeps kernels sharing one PostgreSQL correct.
type vectorCache struct {
	mu sync.Mutex
	ns map[string]*vecEntry
}

func (m *Manager) vectors(ctx context.Context, ns string) (*vecSet, error) {
	var gen int64
	err := m.db.read().QueryRow(ctx, `SELECT gen FROM docgen WHERE ns = $1`, ns).Scan(&gen)
	if err != nil && !errors.Is(err, errNoRows) {
		return nil, err
	}
	c := &m.vecs
	c.mu.Lock()
	if c.ns == nil {
		c.ns = map[string]*vecEntry{}
	}
	e := c.ns[ns]
	if e == nil {
		if len(c.ns) >= maxCachedNamespaces {
			for k := range c.ns {
				delete(c.ns, k)
				break
			}
		}
		e = &vecEntry{}
		c.ns[ns] = e
	}
	c.mu.Unlock()

	e.mu.Lock()
	defer e.mu.Unlock()
	name := m.emb.Name()
	if e.cur != nil && e.cur.gen == gen && e.cur.name == name {
		return e.cur, nil
	}
	// gen was read before the rows: a write in between makes the set look older than it
	// is, which costs one extra reload, never a stale answer.
	set, err := m.loadVectors(ctx, ns, gen, name)
	if err != nil {
		return nil, err
	}
	e.cur = set
	return set, nil
}

func (m *Manager) loadVectors(ctx context.Context, ns string, gen int64, name string) (*vecSet, error) {
	rs, err := m.db.read().Query(ctx, `SELECT id, path, stamp, embedder, vec FROM docs WHERE ns = $1`, ns)
	if err != nil {
		return nil, err
	}
	set := &vecSet{gen: gen, name: name}
	type stale struct {
		id          int64
		path, stamp string
	}
	var todo []stale
	add := func(id int64, path string, v []float32) {
		if set.dim == 0 {
			set.dim = len(v)
		}
		if len(v) != set.dim || len(v) == 0 {
			return
		}
		set.ids = append(set.ids, id)
		set.paths = append(set.paths, path)
		set.flat = append(set.flat, v...)
	}
	for rs.Next() {
		var id int64
		var path, stamp, emb string
		var raw []byte
		if err := rs.Scan(&id, &path, &stamp, &emb, &raw); err != nil {
			rs.Close()
			return nil, err
		}
		if emb != name || len(raw) == 0 {
			todo = append(todo, stale{id, path, stamp})
			continue
		}
		add(id, path, decodeVec(raw))
	}
	rs.Close()
	if err := rs.Err(); err != nil {
		return nil, err
	}
	// Documents embedded by another embedder (the configuration changed) or not at all
	// (it failed) are embedded now, once, and stored.
	const batch = 32
	for i := 0; i < len(todo); i += batch {
		part := todo[i:min(i+batch, len(todo))]
		texts := make([]string, len(part))
		for j, s := range part {
			body, err := m.db.docText(ctx, s.id)
			if err != nil && !errors.Is(err, errNoRows) {
				return nil, err
			}
			texts[j] = clip(body, embedMaxBytes)
		}
		vs, err := m.emb.Embed(ctx, texts)
		if err != nil || len(vs) != len(part) {
			m.log.Warn("re-embedding failed; those files are searchable by keywords only for now", "files", len(part), "err", err)
			continue
		}
		t, err := m.db.begin(ctx)
		if err != nil {
			return nil, err
		}
		for j, s := range part {
			// Only if the document is unchanged since: a write may have replaced it.
			if _, err = t.Exec(ctx, `UPDATE docs SET vec = $1, embedder = $2 WHERE id = $3 AND stamp = $4`,
				encodeVec(vs[j]), name, s.id, s.stamp); err != nil {
				break
			}
		}
		if err == nil {
			err = t.Commit()
		}
		t.Rollback()
		if err != nil {
			return nil, err
		}
		for j, s := range part {
			add(s.id, s.path, vs[j])
		}
	}
	return set, nil
}

func decodeVec(b []byte) []float32 {
	v := make([]float32, len(b)/4)
	for i := range v {
		v[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
	}
	return v
}

type vecHit struct {
	id   int64
	path string
	sim  float64
}

// search returns the limit documents in [lo, hi) most similar to q (and in allow, when
// it is not nil), most similar first. Documents with no positive similarity are left out.
func (s *vecSet) search(q []float32, lo, hi string, allow map[int64]bool, limit int) []vecHit {
	if len(q) != s.dim || limit <= 0 {
		return nil
	}
	top := make([]vecHit, 0, limit)
	for i, id := range s.ids {
		p := s.paths[i]
		if p < lo || p >= hi || (allow != nil && !allow[id]) {
			continue
		}
		row := s.flat[i*s.dim : (i+1)*s.dim]
		var dot float32
		for j, x := range row {
			dot += x * q[j]
		}
		sim := float64(dot)
		if sim <= 0 || (len(top) == limit && sim <= top[limit-1].sim) {
			continue
		}
		// Insertion into a short sorted list: limit is tens, the scan is thousands.
		k := len(top)
		if k < limit {
			top = append(top, vecHit{})
		} else {
			k = limit - 1
		}
		for k > 0 && top[k-1].sim < sim {
			top[k] = top[k-1]
			k--
		}
		top[k] = vecHit{id: id, path: p, sim: sim}
	}
	return top
}
