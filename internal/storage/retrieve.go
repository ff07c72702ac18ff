package storage

import (
	"context"
	"strings"
	"unicode"

	"github.com/aios-go/aios/api"
	"github.com/aios-go/aios/internal/rank"
)

const (
	defaultK = 5
	maxK     = 100
	// maxTerms bounds the words taken from a query: past a few dozen, more words only
	// make the keyword search slower, not better.
	maxTerms    = 32
	snippetSize = 200
)

// Retrieve ranks the files under the agent's current root by q, by keywords (BM25 in
// SQLite, ts_rank_cd in PostgreSQL) and by embedding similarity, fused by reciprocal
// rank. Only text files up to 256 KiB are indexed. See Query for what Keywords mean.
func (m *Manager) Retrieve(ctx context.Context, agent string, q Query) ([]Hit, error) {
	if err := m.checkAgent(agent); err != nil {
		return nil, err
	}
	v, err := m.viewOf(ctx, agent)
	if err != nil {
		return nil, err
	}
	k := q.K
	if k <= 0 {
		k = defaultK
	}
	k = min(k, maxK)
	terms := words(q.Text)
	var phrases []string
	for _, kw := range q.Keywords {
		if w := words(kw); len(w) > 0 {
			phrases = append(phrases, strings.Join(w, " "))
		}
	}
	if len(terms) == 0 && len(phrases) == 0 {
		return nil, api.Errorf(api.CallerBadRequest, "retrieve needs query text or keywords with letters or digits in them")
	}
	lo, hi := below(v.base)
	// Each ranking contributes more candidates than are returned, so that a file second
	// in both lists can beat one first in only one.
	pool := max(4*k, 50)
	texts, err := m.db.textSearch(ctx, v.ns, lo, hi, terms, phrases, pool)
	if err != nil {
		return nil, internal(err, "keyword search")
	}
	var vecs []vecHit
	if len(terms) > 0 {
		if vecs, err = m.vectorSearch(ctx, v, q.Text, phrases, pool); err != nil {
			return nil, err
		}
	}
	lists := [2][]string{make([]string, len(texts)), make([]string, len(vecs))}
	ids := map[string]int64{}
	for i, h := range texts {
		lists[0][i] = h.path
		ids[h.path] = h.id
	}
	for i, h := range vecs {
		lists[1][i] = h.path
		ids[h.path] = h.id
	}
	fused := rank.Fuse(rank.DefaultK, nil, lists[0], lists[1])
	out := make([]Hit, 0, min(k, len(fused)))
	for _, f := range fused[:min(k, len(fused))] {
		snip, err := m.db.snippet(ctx, ids[f.Key], terms, phrases)
		if err != nil {
			return nil, internal(err, "make snippet")
		}
		if snip == "" { // found by its embedding alone
			body, err := m.db.docText(ctx, ids[f.Key])
			if err != nil {
				return nil, internal(err, "make snippet")
			}
			snip = excerpt(body, terms)
		}
		out = append(out, Hit{Path: relPath(v.base, f.Key), Score: f.Score, Snippet: snip})
	}
	return out, nil
}

// vectorSearch ranks by similarity to text, among files holding every phrase when there
// are any (keywords filter both rankings alike).
func (m *Manager) vectorSearch(ctx context.Context, v view, text string, phrases []string, pool int) ([]vecHit, error) {
	lo, hi := below(v.base)
	var allow map[int64]bool
	if len(phrases) > 0 {
		var err error
		if allow, err = m.db.matchIDs(ctx, v.ns, lo, hi, phrases); err != nil {
			return nil, internal(err, "keyword filter")
		}
		if len(allow) == 0 {
			return nil, nil
		}
	}
	qv, err := m.emb.Embed(ctx, []string{clip(text, embedMaxBytes)})
	if err != nil || len(qv) != 1 {
		m.log.Warn("embedding the query failed; ranking by keywords only", "err", err)
		return nil, nil
	}
	set, err := m.vectors(ctx, v.ns)
	if err != nil {
		return nil, internal(err, "load vectors")
	}
	return set.search(qv[0], lo, hi, allow, pool), nil
}

// words splits text into lower-case runs of letters and digits: the only characters
// either full-text engine indexes, and the only ones that need no escaping in a query.
func words(text string) []string {
	w := strings.FieldsFunc(strings.ToLower(text), func(r rune) bool {
		return !unicode.IsLetter(r) && !unicode.IsDigit(r)
	})
	return w[:min(len(w), maxTerms)]
}

// excerpt is about snippetSize bytes of body around the first query word it contains
// (or its start), whitespace collapsed.
func excerpt(body string, terms []string) string {
	start := 0
	if lower := strings.ToLower(body); len(lower) == len(body) {
		best := -1
		for _, t := range terms {
			if i := strings.Index(lower, t); i >= 0 && (best < 0 || i < best) {
				best = i
			}
		}
		if best > snippetSize/4 {
			start = best - snippetSize/4
		}
	}
	for start > 0 && start < len(body) && !isRuneStart(body[start]) {
		start--
	}
	s := clip(body[start:], snippetSize)
	trail := len(s) < len(body)-start
	s = strings.Join(strings.Fields(s), " ")
	if start > 0 {
		s = "…" + s
	}
	if trail {
		s += "…"
	}
	return s
}

func isRuneStart(b byte) bool { return b&0xC0 != 0x80 }
