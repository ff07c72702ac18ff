package memory

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"unicode"

	"github.com/aios-go/aios/internal/sqldb"
)

// textIndex is the full-text half of retrieval, the one part SQL dialects do not share.
type textIndex interface {
	// put indexes body as note rid's text (replacing what was there) inside t.
	put(ctx context.Context, t sqldb.Tx, rid int64, scope, body string) error
	drop(ctx context.Context, t sqldb.Tx, rid int64) error
	// search ranks the notes that pass f and contain any of terms, best first, at most
	// limit: BM25 in SQLite, ts_rank_cd in PostgreSQL.
	search(ctx context.Context, q sqldb.Querier, terms []string, f filter, limit int) ([]int64, error)
}

// maxTerms bounds the words taken from a query: past a few dozen, more words only make
// the keyword search slower, not better.
const maxTerms = 32

// words splits text into lower-case runs of letters and digits: the only characters
// either full-text engine indexes, and the only ones that need no escaping in a query.
func words(text string) []string {
	w := strings.FieldsFunc(strings.ToLower(text), func(r rune) bool {
		return !unicode.IsLetter(r) && !unicode.IsDigit(r)
	})
	return w[:min(len(w), maxTerms)]
}

// sqliteText is FTS5. Its bm25() costs a few microseconds per matching row in the pure
// Go SQLite, and a query word used in most notes ("the", or a name the agent mentions
// constantly) matches nearly all of them: 100k notes took 170 ms to rank. So terms are
// pruned before searching: a term in more than half the notes has a BM25 weight of
// about zero (FTS5 floors its IDF), and past maxPostings matches in all, the commonest
// remaining terms go first. This is query pruning in the usual inverted-index sense:
// notes matching only the dropped terms would have ranked below the pool anyway unless
// they matched several of them.
type sqliteText struct{ df *dfCache }

// maxPostings bounds the rows a keyword search ranks.
const maxPostings = 5000

// scopeToken is a scope as one token of letters and digits, which no tokenizer splits.
func scopeToken(scope string) string {
	h := sha256.Sum256([]byte(scope))
	return "s" + hex.EncodeToString(h[:12])
}

func (sqliteText) put(ctx context.Context, t sqldb.Tx, rid int64, scope, body string) error {
	if _, err := t.Exec(ctx, `DELETE FROM mem_fts WHERE rowid = $1`, rid); err != nil {
		return err
	}
	_, err := t.Exec(ctx, `INSERT INTO mem_fts (rowid, scope, body) VALUES ($1, $2, $3)`, rid, scopeToken(scope), body)
	return err
}

func (sqliteText) drop(ctx context.Context, t sqldb.Tx, rid int64) error {
	_, err := t.Exec(ctx, `DELETE FROM mem_fts WHERE rowid = $1`, rid)
	return err
}

// search weighs the scope column 0 in BM25: every note of a scope holds its token, so
// it says nothing about relevance. The scope tokens in the match restrict it to the
// actor's notes; only metadata filters need the join to mem_notes (CROSS JOIN makes the
// full-text match the outer loop).
func (x sqliteText) search(ctx context.Context, q sqldb.Querier, terms []string, f filter, limit int) ([]int64, error) {
	if len(terms) == 0 || len(f.scopes) == 0 {
		return nil, nil
	}
	terms, err := x.df.prune(ctx, q, terms)
	if err != nil || len(terms) == 0 {
		return nil, err
	}
	scopes := make([]string, len(f.scopes))
	for i, s := range f.scopes {
		scopes[i] = `"` + scopeToken(s) + `"`
	}
	body := make([]string, len(terms))
	for i, t := range terms {
		body[i] = `"` + t + `"`
	}
	match := "scope : (" + strings.Join(scopes, " OR ") + ") AND body : (" + strings.Join(body, " OR ") + ")"
	if !f.narrow() {
		return scanRIDs(q.Query(ctx, `SELECT rowid FROM mem_fts WHERE mem_fts MATCH $1
			ORDER BY bm25(mem_fts, 0.0, 1.0) LIMIT $2`, match, int64(limit)))
	}
	args := []any{match, int64(limit)}
	where, args := f.sql(args)
	return scanRIDs(q.Query(ctx, `SELECT n.rid FROM mem_fts CROSS JOIN mem_notes n ON n.rid = mem_fts.rowid
		WHERE mem_fts MATCH $1 AND `+where+` ORDER BY bm25(mem_fts, 0.0, 1.0) LIMIT $2`, args...))
}

// dfCache remembers how many notes contain each query term (over every scope, as
// BM25's IDF counts them). Counts are estimates for pruning, so a cache entry lives
// until the table has grown by a quarter since it was counted.
type dfCache struct {
	mu    sync.Mutex
	total int64 // notes when the cache was started
	df    map[string]int64
}

func (c *dfCache) prune(ctx context.Context, q sqldb.Querier, terms []string) ([]string, error) {
	var total int64
	if err := q.QueryRow(ctx, `SELECT COALESCE(MAX(rid), 0) FROM mem_notes`).Scan(&total); err != nil {
		return nil, err
	}
	c.mu.Lock()
	if c.df == nil || total > c.total+c.total/4 {
		c.df, c.total = map[string]int64{}, total
	}
	c.mu.Unlock()
	type tdf struct {
		term string
		df   int64
	}
	var all []tdf
	for _, t := range terms {
		if slices.ContainsFunc(all, func(x tdf) bool { return x.term == t }) {
			continue
		}
		c.mu.Lock()
		df, ok := c.df[t]
		c.mu.Unlock()
		if !ok {
			if err := q.QueryRow(ctx, `SELECT COUNT(*) FROM mem_fts WHERE mem_fts MATCH $1`, `body : "`+t+`"`).Scan(&df); err != nil {
				return nil, err
			}
			c.mu.Lock()
			c.df[t] = df
			c.mu.Unlock()
		}
		all = append(all, tdf{t, df})
	}
	sort.SliceStable(all, func(i, j int) bool { return all[i].df < all[j].df })
	var out []string
	var sum int64
	for i, t := range all {
		if t.df == 0 {
			continue
		}
		// Keep the rarest term whatever its count: the query must still match something.
		if i > 0 && len(out) > 0 && (2*t.df > total || sum+t.df > maxPostings) {
			break
		}
		out = append(out, t.term)
		sum += t.df
	}
	return out, nil
}

type postgresText struct{}

func (postgresText) put(ctx context.Context, t sqldb.Tx, rid int64, _, body string) error {
	_, err := t.Exec(ctx, `UPDATE mem_notes SET body = $2 WHERE rid = $1`, rid, body)
	return err
}

func (postgresText) drop(context.Context, sqldb.Tx, int64) error { return nil } // the row goes with the note

func (postgresText) search(ctx context.Context, q sqldb.Querier, terms []string, f filter, limit int) ([]int64, error) {
	if len(terms) == 0 || len(f.scopes) == 0 {
		return nil, nil
	}
	args := []any{strings.Join(terms, " | "), int64(limit)}
	where, args := f.sql(args)
	return scanRIDs(q.Query(ctx, `SELECT n.rid FROM mem_notes n, (SELECT to_tsquery('english', $1) AS q) qq
		WHERE n.tsv @@ qq.q AND `+where+` ORDER BY ts_rank_cd(n.tsv, qq.q) DESC, n.rid LIMIT $2`, args...))
}

func scanRIDs(rs sqldb.Rows, err error) ([]int64, error) {
	if err != nil {
		return nil, err
	}
	defer rs.Close()
	var out []int64
	for rs.Next() {
		var rid int64
		if err := rs.Scan(&rid); err != nil {
			return nil, err
		}
		out = append(out, rid)
	}
	return out, rs.Err()
}

// filter is the set of notes a retrieval may return: the actor's scopes and the query's
// metadata filters.
type filter struct {
	scopes       []string
	tags         []string // all must be present
	category     string
	since, until int64 // created in [since, until); 0 means open
}

// narrow reports whether the filter does more than pick scopes.
func (f filter) narrow() bool {
	return len(f.tags) > 0 || f.category != "" || f.since != 0 || f.until != 0
}

// sql renders f as a condition on mem_notes n, appending its arguments to args.
func (f filter) sql(args []any) (string, []any) {
	arg := func(v any) string {
		args = append(args, v)
		return fmt.Sprintf("$%d", len(args))
	}
	ph := make([]string, len(f.scopes))
	for i, s := range f.scopes {
		ph[i] = arg(s)
	}
	conds := []string{"n.scope IN (" + strings.Join(ph, ", ") + ")"}
	if f.category != "" {
		conds = append(conds, "n.category = "+arg(f.category))
	}
	if f.since != 0 {
		conds = append(conds, "n.created >= "+arg(f.since))
	}
	if f.until != 0 {
		conds = append(conds, "n.created < "+arg(f.until))
	}
	if len(f.tags) > 0 {
		tp := make([]string, len(f.tags))
		for i, t := range f.tags {
			tp[i] = arg(t)
		}
		conds = append(conds, "n.rid IN (SELECT rid FROM mem_tags WHERE tag IN ("+strings.Join(tp, ", ")+
			") GROUP BY rid HAVING COUNT(*) = "+arg(int64(len(f.tags)))+")")
	}
	return strings.Join(conds, " AND "), args
}
