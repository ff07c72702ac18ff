package memory

import (
	"context"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/aios-go/aios/api"
	"github.com/aios-go/aios/internal/embed"
	"github.com/aios-go/aios/internal/rank"
)

// Query asks Retrieve for the K notes (default 5, at most 100) that best match Text
// among those the actor sees. Filters narrow the notes considered: every tag in Tags,
// Category, and creation time in [Since, Until) (zero times are open). Hits scoring
// below MinScore are dropped. With no words in Text, the newest notes passing the
// filters are returned.
type Query struct {
	Text         string
	K            int
	Tags         []string
	Category     string
	Since, Until time.Time
	MinScore     float64
	// Mode picks the rankers: "" (hybrid: keywords, vectors and recency fused), "keyword"
	// (BM25 alone) or "vector" (cosine alone). The single rankers serve evaluation and
	// debugging; agents use the default.
	Mode string
}

// Hit is one retrieved note. Score is the fused reciprocal-rank score divided by the
// best score possible (first in every ranking), so it lies in (0, 1] and 1 means the
// best match by every measure. Cosine is the embedding similarity to the query (0 if
// the note has no vector).
type Hit struct {
	Note
	Score  float64
	Cosine float64
}

const (
	defaultTopK = 5
	maxTopK     = 100
	// rerankPool is how many SimHash candidates are re-ranked by exact cosine, per
	// requested hit (at least minRerank): enough that the exact top 10 are found 94% of
	// the time (TestVectorRecall). In hybrid mode, where the vector ranking weighs
	// DefaultFusion.Vector, hybridRerank candidates suffice and save reading hundreds of
	// cold vectors from the database.
	rerankPool   = 40
	minRerank    = 500
	hybridRerank = 150
)

// Fusion weighs the rankings in reciprocal rank fusion (Cormack et al. 2009, k = 60).
type Fusion struct{ Keyword, Vector, Recency float64 }

// DefaultFusion was chosen on the dev half of the retrieval-quality set (see
// docs/memory.md and TestFusionSweep): with the default hashed embedder, vectors carry
// the same lexical signal as BM25 but weigh common words more, so at equal weight they
// pull chit-chat above the evidence. The vector ranking stays as a small weight, which
// orders notes BM25 does not find (no shared word) and breaks its near-ties; recency
// reorders candidates so that a newer statement of a fact edges out an older one.
// Deployments with a semantic embedding model should raise Vector (Config.Fusion).
var DefaultFusion = Fusion{Keyword: 1, Vector: 0.05, Recency: 0.1}

// Retrieve ranks the notes the actor sees by q. Ranking covers every note in the
// database, whatever the RAM manager holds; returned notes count as accesses and their
// retrieval counts grow by one.
func (m *Manager) Retrieve(ctx context.Context, actor string, q Query) ([]Hit, error) {
	if err := m.checkName("agent", actor); err != nil {
		return nil, err
	}
	k := q.K
	if k <= 0 {
		k = defaultTopK
	}
	k = min(k, maxTopK)
	scopes, err := m.scopes(ctx, actor)
	if err != nil {
		return nil, err
	}
	f := filter{scopes: scopes, tags: cleanList(q.Tags), category: q.Category}
	if !q.Since.IsZero() {
		f.since = q.Since.UnixNano()
	}
	if !q.Until.IsZero() {
		f.until = q.Until.UnixNano()
	}
	terms := words(q.Text)
	var scored []rank.Scored
	var cosines map[int64]float64
	switch {
	case len(terms) == 0:
		scored, err = m.newest(ctx, f, k)
	case q.Mode == "" || q.Mode == "keyword" || q.Mode == "vector":
		scored, cosines, err = m.rank(ctx, q, f, terms, k)
	default:
		return nil, api.Errorf(api.CallerBadRequest, "unknown retrieval mode %q; use \"\" (hybrid), \"keyword\" or \"vector\"", q.Mode)
	}
	if err != nil {
		return nil, err
	}
	return m.hits(ctx, actor, scored, cosines, k, q.MinScore)
}

// rank runs the rankers q.Mode asks for and fuses them. Keys of the returned list are
// rids in decimal; scores are normalised to the best possible.
func (m *Manager) rank(ctx context.Context, q Query, f filter, terms []string, k int) ([]rank.Scored, map[int64]float64, error) {
	pool := max(4*k, 50) // each ranking offers more than is returned, so second-in-both can win
	var kw []int64
	var vec []candidate
	var cosines map[int64]float64
	var err error
	if q.Mode != "vector" {
		if kw, err = m.fts.search(ctx, m.db.Read(), terms, f, pool); err != nil {
			return nil, nil, internal(err, "keyword search")
		}
	}
	if q.Mode != "keyword" {
		rerank := minRerank
		if q.Mode == "" && m.fusion.Vector < m.fusion.Keyword/2 {
			rerank = hybridRerank
		}
		if vec, cosines, err = m.vectorSearch(ctx, q.Text, f, pool, rerank); err != nil {
			return nil, nil, err
		}
	}
	lists := [3][]string{}
	weights := [3]float64{m.fusion.Keyword, m.fusion.Vector, m.fusion.Recency}
	for _, rid := range kw {
		lists[0] = append(lists[0], ridKey(rid))
	}
	for _, c := range vec {
		lists[1] = append(lists[1], ridKey(c.rid))
	}
	if q.Mode == "" {
		lists[2], err = m.recency(ctx, kw, vec)
		if err != nil {
			return nil, nil, err
		}
	}
	best := 0.0
	for i, l := range lists {
		if len(l) > 0 {
			best += weights[i] / (rank.DefaultK + 1)
		}
	}
	if best == 0 {
		best = 1
	}
	fused := rank.Fuse(rank.DefaultK, weights[:], lists[0], lists[1], lists[2])
	for i := range fused {
		fused[i].Score /= best
	}
	return fused, cosines, nil
}

// recency orders the candidates both rankers found, newest update first.
func (m *Manager) recency(ctx context.Context, kw []int64, vec []candidate) ([]string, error) {
	when := make(map[int64]int64, len(kw)+len(vec))
	for _, c := range vec {
		when[c.rid] = c.updated
	}
	var missing []int64
	for _, rid := range kw {
		if _, ok := when[rid]; ok {
			continue
		}
		if hn, ok := m.hot.peek(rid); ok {
			when[rid] = hn.note.Updated.UnixNano()
		} else {
			missing = append(missing, rid)
		}
	}
	if len(missing) > 0 {
		hns, err := m.loadRIDs(ctx, missing)
		if err != nil {
			return nil, internal(err, "read candidates")
		}
		for _, hn := range hns {
			when[hn.rid] = hn.note.Updated.UnixNano()
		}
	}
	rids := make([]int64, 0, len(when))
	for rid := range when {
		rids = append(rids, rid)
	}
	sort.Slice(rids, func(i, j int) bool {
		if when[rids[i]] != when[rids[j]] {
			return when[rids[i]] > when[rids[j]]
		}
		return rids[i] > rids[j]
	})
	out := make([]string, len(rids))
	for i, rid := range rids {
		out[i] = ridKey(rid)
	}
	return out, nil
}

// vectorSearch ranks the notes passing f by cosine to text: sign-code candidates from
// the index, re-ranked exactly.
func (m *Manager) vectorSearch(ctx context.Context, text string, f filter, pool, rerank int) ([]candidate, map[int64]float64, error) {
	qv, err := m.emb.Embed(ctx, []string{text})
	if err != nil || len(qv) != 1 {
		m.log.Warn("embedding the query failed; ranking by keywords only", "err", err)
		return nil, nil, nil
	}
	return m.nearestTo(ctx, qv[0], f, pool, 0, rerank)
}

// nearestTo returns up to n notes passing f, most similar to v first, leaving out
// exclude (a rid; 0 excludes nothing), with their cosines; at least minPool SimHash
// candidates are re-ranked exactly.
func (m *Manager) nearestTo(ctx context.Context, v []float32, f filter, n int, exclude int64, minPool int) ([]candidate, map[int64]float64, error) {
	var keep func(int64) bool
	if f.narrow() {
		allowed, err := m.filterRIDs(ctx, f)
		if err != nil {
			return nil, nil, err
		}
		if len(allowed) == 0 {
			return nil, nil, nil
		}
		keep = func(rid int64) bool { return allowed[rid] }
	}
	if exclude != 0 {
		inner := keep
		keep = func(rid int64) bool { return rid != exclude && (inner == nil || inner(rid)) }
	}
	code := simHash(v)
	want := max(rerankPool*n/4, minPool) // n is already 4x the hits asked for
	var cands []candidate
	name := m.emb.Name()
	for _, s := range f.scopes {
		si := m.vecs.scope(s)
		skipped, err := si.load(ctx, m.db.Read(), s, name)
		if err != nil {
			return nil, nil, internal(err, "load vectors")
		}
		if skipped > 0 {
			m.log.Warn("memories embedded by another model (or not at all) are found by keywords only until re-added", "scope", s, "notes", skipped, "embedder", name)
		}
		cands = si.nearest(code, want, keep, cands)
	}
	sort.Slice(cands, func(i, j int) bool { return cands[i].dist < cands[j].dist })
	cands = cands[:min(len(cands), want)]
	cos, err := m.cosines(ctx, v, cands)
	if err != nil {
		return nil, nil, err
	}
	cands = slices.DeleteFunc(cands, func(c candidate) bool { _, ok := cos[c.rid]; return !ok })
	sort.SliceStable(cands, func(i, j int) bool {
		if cos[cands[i].rid] != cos[cands[j].rid] {
			return cos[cands[i].rid] > cos[cands[j].rid]
		}
		return cands[i].rid > cands[j].rid
	})
	return cands[:min(len(cands), n)], cos, nil
}

// cosines computes exact similarities for candidates, reading vectors from RAM where the
// note is hot and from the database (one query) where it is not. Reading them does not
// count as an access: candidates are not results.
func (m *Manager) cosines(ctx context.Context, v []float32, cands []candidate) (map[int64]float64, error) {
	out := make(map[int64]float64, len(cands))
	name := m.emb.Name()
	var cold []int64
	for _, c := range cands {
		if hn, ok := m.hot.peek(c.rid); ok && hn.embedder == name {
			out[c.rid] = embed.Cosine(v, hn.vec)
		} else {
			cold = append(cold, c.rid)
		}
	}
	if len(cold) == 0 {
		return out, nil
	}
	vecs, err := m.loadVecs(ctx, cold, name)
	if err != nil {
		return nil, internal(err, "read vectors")
	}
	for rid, vec := range vecs {
		out[rid] = embed.Cosine(v, vec)
	}
	return out, nil
}

// hits turns fused keys into notes: the first k above minScore that the actor may read,
// counted as accesses and retrievals.
func (m *Manager) hits(ctx context.Context, actor string, scored []rank.Scored, cosines map[int64]float64, k int, minScore float64) ([]Hit, error) {
	for i, s := range scored {
		if s.Score < minScore {
			scored = scored[:i]
			break
		}
	}
	out := make([]Hit, 0, k)
	for len(scored) > 0 && len(out) < k {
		// Take what is still needed; notes the Allow hook refuses make room for the next.
		batch := scored[:min(len(scored), k-len(out))]
		scored = scored[len(batch):]
		rids := make([]int64, len(batch))
		for i, s := range batch {
			rids[i] = keyRID(s.Key)
		}
		notes, err := m.notesFor(ctx, rids)
		if err != nil {
			return nil, err
		}
		for i, rid := range rids {
			hn := notes[rid]
			if hn == nil {
				continue // removed since it was ranked
			}
			if err := m.allow(ctx, actor, OpRetrieve, hn.note); err != nil {
				continue
			}
			if m.retrievals.add(rid) >= maxPending {
				m.wmu.Lock()
				err := m.flushRetrievals(ctx)
				m.wmu.Unlock()
				if err != nil {
					m.log.Warn("retrieval counts not saved", "err", err)
				}
			}
			m.hot.bump(rid, 1)
			n := clone(hn.note)
			n.Retrievals++
			out = append(out, Hit{Note: n, Score: batch[i].Score, Cosine: cosines[rid]})
		}
	}
	return out, nil
}

// notesFor returns the notes rids name, faulting cold ones in and counting an access
// for each.
func (m *Manager) notesFor(ctx context.Context, rids []int64) (map[int64]*hotNote, error) {
	out := make(map[int64]*hotNote, len(rids))
	var cold []int64
	for _, rid := range rids {
		if hn, ok := m.hot.touch(rid); ok {
			out[rid] = hn
		} else {
			cold = append(cold, rid)
		}
	}
	if len(cold) > 0 {
		hns, err := m.loadRIDs(ctx, cold)
		if err != nil {
			return nil, internal(err, "read notes")
		}
		for _, hn := range hns {
			m.hot.put(hn, true)
			out[hn.rid] = hn
		}
	}
	return out, nil
}

func ridKey(rid int64) string { return strconv.FormatInt(rid, 10) }

func keyRID(key string) int64 {
	rid, _ := strconv.ParseInt(key, 10, 64) // keys are made by ridKey
	return rid
}

// loadVecs reads the vectors of rids that are in the space embedder.
func (m *Manager) loadVecs(ctx context.Context, rids []int64, embedder string) (map[int64][]float32, error) {
	out := make(map[int64][]float32, len(rids))
	ph := make([]string, len(rids))
	args := make([]any, len(rids)+1)
	args[0] = embedder
	for i, r := range rids {
		ph[i], args[i+1] = "$"+strconv.Itoa(i+2), r
	}
	rs, err := m.db.Read().Query(ctx, `SELECT rid, vec FROM mem_notes WHERE embedder = $1 AND rid IN (`+strings.Join(ph, ",")+`)`, args...)
	if err != nil {
		return nil, err
	}
	defer rs.Close()
	for rs.Next() {
		var rid int64
		var raw []byte
		if err := rs.Scan(&rid, &raw); err != nil {
			return nil, err
		}
		if len(raw) > 0 {
			out[rid] = decodeVec(raw)
		}
	}
	return out, rs.Err()
}

// newest lists the newest notes passing f, for a query with no words.
func (m *Manager) newest(ctx context.Context, f filter, k int) ([]rank.Scored, error) {
	where, args := f.sql([]any{int64(k)})
	rids, err := scanRIDs(m.db.Read().Query(ctx, `SELECT n.rid FROM mem_notes n WHERE `+where+
		` ORDER BY n.created DESC, n.rid DESC LIMIT $1`, args...))
	if err != nil {
		return nil, internal(err, "list newest")
	}
	out := make([]rank.Scored, len(rids))
	for i, rid := range rids {
		out[i] = rank.Scored{Key: ridKey(rid), Score: 1 / float64(i+1)}
	}
	return out, nil
}

// filterRIDs is every note passing f: the vector scan's filter when the query narrows
// by metadata.
func (m *Manager) filterRIDs(ctx context.Context, f filter) (map[int64]bool, error) {
	where, args := f.sql(nil)
	rids, err := scanRIDs(m.db.Read().Query(ctx, `SELECT n.rid FROM mem_notes n WHERE `+where, args...))
	if err != nil {
		return nil, internal(err, "filter")
	}
	out := make(map[int64]bool, len(rids))
	for _, rid := range rids {
		out[rid] = true
	}
	return out, nil
}

// Neighbours returns the k notes (default 5) most similar by embedding to note id among
// those the actor sees, for A-MEM's linking and evolution. Score and Cosine are the
// cosine similarity. It counts no access or retrieval: linking is the kernel's work, not
// the agent reading.
func (m *Manager) Neighbours(ctx context.Context, actor, id string, k int) ([]Hit, error) {
	hn, err := m.visible(ctx, actor, id)
	if err != nil {
		return nil, err
	}
	if k <= 0 {
		k = defaultTopK
	}
	k = min(k, maxTopK)
	if hn.embedder != m.emb.Name() || len(hn.vec) == 0 {
		return nil, nil
	}
	scopes, err := m.scopes(ctx, actor)
	if err != nil {
		return nil, err
	}
	cands, cos, err := m.nearestTo(ctx, hn.vec, filter{scopes: scopes}, k, hn.rid, minRerank)
	if err != nil {
		return nil, err
	}
	rids := make([]int64, len(cands))
	for i, c := range cands {
		rids[i] = c.rid
	}
	hns, err := m.loadRIDs(ctx, rids)
	if err != nil {
		return nil, internal(err, "read neighbours")
	}
	byRID := map[int64]*hotNote{}
	for _, h := range hns {
		byRID[h.rid] = h
	}
	var out []Hit
	for _, rid := range rids {
		if h := byRID[rid]; h != nil && m.allow(ctx, actor, OpRetrieve, h.note) == nil {
			out = append(out, Hit{Note: clone(h.note), Score: cos[rid], Cosine: cos[rid]})
		}
	}
	return out, nil
}
