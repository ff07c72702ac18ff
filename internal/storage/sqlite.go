package storage

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strings"

	"github.com/aios-go/aios/api"
	"github.com/aios-go/aios/internal/sqldb"
)

// sqldb opens the file with WAL and synchronous=FULL: Write returns only after its
// commit is on disk.

var sqliteSchema = []string{
	`CREATE TABLE IF NOT EXISTS blobs (sha TEXT PRIMARY KEY, size INTEGER NOT NULL, refs INTEGER NOT NULL)`,
	`CREATE TABLE IF NOT EXISTS chunks (sha TEXT NOT NULL, seq INTEGER NOT NULL, data BLOB NOT NULL, PRIMARY KEY (sha, seq))`,
	`CREATE TABLE IF NOT EXISTS files (ns TEXT NOT NULL, path TEXT NOT NULL, parent TEXT NOT NULL, dir INTEGER NOT NULL,
		version INTEGER NOT NULL, size INTEGER NOT NULL, sha TEXT NOT NULL, modified INTEGER NOT NULL, PRIMARY KEY (ns, path))`,
	`CREATE INDEX IF NOT EXISTS files_parent ON files (ns, parent, path)`,
	`CREATE TABLE IF NOT EXISTS versions (ns TEXT NOT NULL, path TEXT NOT NULL, n INTEGER NOT NULL, at INTEGER NOT NULL,
		size INTEGER NOT NULL, sha TEXT NOT NULL, change TEXT NOT NULL, PRIMARY KEY (ns, path, n))`,
	`CREATE TABLE IF NOT EXISTS usage (ns TEXT PRIMARY KEY, bytes INTEGER NOT NULL)`,
	`CREATE TABLE IF NOT EXISTS mounts (agent TEXT PRIMARY KEY, root TEXT NOT NULL, host INTEGER NOT NULL)`,
	`CREATE TABLE IF NOT EXISTS shares (token_hash TEXT PRIMARY KEY, ns TEXT NOT NULL, path TEXT NOT NULL,
		agent TEXT NOT NULL, expires INTEGER NOT NULL)`,
	`CREATE INDEX IF NOT EXISTS shares_expires ON shares (expires)`,
	`CREATE TABLE IF NOT EXISTS docs (id INTEGER PRIMARY KEY, ns TEXT NOT NULL, path TEXT NOT NULL, stamp TEXT NOT NULL,
		embedder TEXT NOT NULL, vec BLOB, UNIQUE (ns, path))`,
	// The FTS table keeps the text (for snippets and re-embedding); its rowid is docs.id.
	// scope holds one token naming the namespace, so a search intersects posting lists
	// inside the index instead of matching every agent's files and filtering after.
	`CREATE VIRTUAL TABLE IF NOT EXISTS docs_fts USING fts5(scope, body, tokenize = 'porter unicode61')`,
	`CREATE TABLE IF NOT EXISTS docgen (ns TEXT PRIMARY KEY, gen INTEGER NOT NULL)`,
}

// sqliteDB has one writer at a time (sqldb queues them in order), which also makes
// lockNamespace free.
type sqliteDB struct{ db *sqldb.SQLite }

func openSQLite(ctx context.Context, path string) (*sqliteDB, error) {
	db, err := sqldb.OpenSQLite(ctx, path, sqliteSchema)
	if err != nil {
		return nil, api.Wrap(api.KernelInternal, err, "storage: open %s", path)
	}
	return &sqliteDB{db: db}, nil
}

func (s *sqliteDB) read() querier { return s.db.Read() }

func (s *sqliteDB) begin(ctx context.Context) (tx, error) { return s.db.Begin(ctx) }

func (s *sqliteDB) lockNamespace(ctx context.Context, t tx, ns string) (int64, error) {
	var used int64
	err := t.QueryRow(ctx, `SELECT bytes FROM usage WHERE ns = $1`, ns).Scan(&used)
	if errors.Is(err, errNoRows) {
		return 0, nil
	}
	return used, err
}

func (s *sqliteDB) putDoc(ctx context.Context, t tx, d docRow) error {
	var id int64
	err := t.QueryRow(ctx, `INSERT INTO docs (ns, path, stamp, embedder, vec) VALUES ($1, $2, $3, $4, $5)
		ON CONFLICT (ns, path) DO UPDATE SET stamp = excluded.stamp, embedder = excluded.embedder, vec = excluded.vec
		RETURNING id`, d.ns, d.path, d.stamp, d.embedder, d.vec).Scan(&id)
	if err != nil {
		return err
	}
	if _, err := t.Exec(ctx, `DELETE FROM docs_fts WHERE rowid = $1`, id); err != nil {
		return err
	}
	_, err = t.Exec(ctx, `INSERT INTO docs_fts (rowid, scope, body) VALUES ($1, $2, $3)`, id, scopeToken(d.ns), d.body)
	return err
}

func (s *sqliteDB) dropDocs(ctx context.Context, t tx, ns, path string, subtree bool) error {
	where, args := docsWhere(ns, path, subtree)
	if _, err := t.Exec(ctx, `DELETE FROM docs_fts WHERE rowid IN (SELECT id FROM docs WHERE `+where+`)`, args...); err != nil {
		return err
	}
	_, err := t.Exec(ctx, `DELETE FROM docs WHERE `+where, args...)
	return err
}

// ftsMatch builds an FTS5 query on the body: any of terms, and every phrase. Terms and
// phrases are made of letters and digits only (see words), so quoting them is all the
// escaping needed.
func ftsMatch(terms, phrases []string) string {
	var match []string
	if len(terms) > 0 {
		q := make([]string, len(terms))
		for i, t := range terms {
			q[i] = `"` + t + `"`
		}
		match = append(match, "("+strings.Join(q, " OR ")+")")
	}
	for _, p := range phrases {
		match = append(match, `"`+p+`"`)
	}
	if len(match) == 0 {
		return ""
	}
	return "body : (" + strings.Join(match, " AND ") + ")"
}

// scopeToken is ns as one token of letters and digits, which no tokenizer splits.
func scopeToken(ns string) string {
	h := sha256.Sum256([]byte(ns))
	return "ns" + hex.EncodeToString(h[:12])
}

func scoped(ns, match string) string { return `scope : "` + scopeToken(ns) + `" AND ` + match }

// textSearch weighs the scope column 0 in BM25: every document of the namespace holds
// its token, so it says nothing about relevance. CROSS JOIN fixes the full-text match as
// the outer loop; left to itself the planner may walk docs by (ns, path) and run the
// whole match once per document.
func (s *sqliteDB) textSearch(ctx context.Context, ns, lo, hi string, terms, phrases []string, limit int) ([]textHit, error) {
	match := ftsMatch(terms, phrases)
	if match == "" {
		return nil, nil
	}
	rs, err := s.read().Query(ctx, `SELECT d.id, d.path FROM docs_fts CROSS JOIN docs d ON d.id = docs_fts.rowid
		WHERE docs_fts MATCH $1 AND d.ns = $2 AND d.path >= $3 AND d.path < $4
		ORDER BY bm25(docs_fts, 0.0, 1.0) LIMIT $5`, scoped(ns, match), ns, lo, hi, int64(limit))
	if err != nil {
		return nil, err
	}
	return scanTextHits(rs)
}

func (s *sqliteDB) matchIDs(ctx context.Context, ns, lo, hi string, phrases []string) (map[int64]bool, error) {
	rs, err := s.read().Query(ctx, `SELECT d.id FROM docs_fts CROSS JOIN docs d ON d.id = docs_fts.rowid
		WHERE docs_fts MATCH $1 AND d.ns = $2 AND d.path >= $3 AND d.path < $4`, scoped(ns, ftsMatch(nil, phrases)), ns, lo, hi)
	if err != nil {
		return nil, err
	}
	return scanIDs(rs)
}

func scanIDs(rs rows) (map[int64]bool, error) {
	defer rs.Close()
	out := map[int64]bool{}
	for rs.Next() {
		var id int64
		if err := rs.Scan(&id); err != nil {
			return nil, err
		}
		out[id] = true
	}
	return out, rs.Err()
}

func (s *sqliteDB) snippet(ctx context.Context, id int64, terms, phrases []string) (string, error) {
	match := ftsMatch(terms, phrases)
	if match == "" {
		return "", nil
	}
	var snip string
	err := s.read().QueryRow(ctx, `SELECT snippet(docs_fts, 1, '', '', '…', 24) FROM docs_fts
		WHERE docs_fts MATCH $1 AND rowid = $2`, match, id).Scan(&snip)
	if errors.Is(err, errNoRows) {
		return "", nil
	}
	return snip, err
}

func (s *sqliteDB) docText(ctx context.Context, id int64) (string, error) {
	var body string
	err := s.read().QueryRow(ctx, `SELECT body FROM docs_fts WHERE rowid = $1`, id).Scan(&body)
	return body, err
}

func (s *sqliteDB) close() error { return s.db.Close() }

// docsWhere selects one document, or it and every document below it.
func docsWhere(ns, path string, subtree bool) (string, []any) {
	if !subtree {
		return `ns = $1 AND path = $2`, []any{ns, path}
	}
	lo, hi := below(path)
	return `ns = $1 AND (path = $2 OR (path >= $3 AND path < $4))`, []any{ns, path, lo, hi}
}
