package storage

import (
	"context"

	"github.com/aios-go/aios/internal/sqldb"
)

// The Manager's logic is written once against internal/sqldb's small surface, which
// SQLite and PostgreSQL both supply; what differs between them here (locking, full-text
// search, types in the schema) lives behind backend.

// errNoRows is what row.Scan returns for an empty result, whichever driver ran it.
var errNoRows = sqldb.ErrNoRows

type (
	querier = sqldb.Querier
	row     = sqldb.Row
	rows    = sqldb.Rows
	tx      = sqldb.Tx
)

// textHit is one full-text match.
type textHit struct {
	id   int64
	path string
}

// docRow is one indexed text file.
type docRow struct {
	ns, path string
	// stamp identifies the content indexed: the sha256 for stored files, size and
	// modification time for host files (hashing a whole host folder at every start
	// would cost more than the index saves).
	stamp    string
	embedder string // name of the embedding space of vec; "" when embedding failed
	vec      []byte
	body     string
}

type backend interface {
	read() querier
	// begin starts a write transaction. SQLite allows one writer, so its begin waits for
	// the previous writer to finish.
	begin(ctx context.Context) (tx, error)
	// lockNamespace serialises writers of one namespace until the transaction ends (so
	// version numbers and quota checks see every earlier write) and returns the bytes
	// the namespace's current files use.
	lockNamespace(ctx context.Context, t tx, ns string) (int64, error)
	putDoc(ctx context.Context, t tx, d docRow) error
	// dropDocs removes path's document and, when subtree is set, those below it.
	dropDocs(ctx context.Context, t tx, ns, path string, subtree bool) error
	// textSearch ranks documents in ns with paths in [lo, hi) that contain any of terms
	// and every one of phrases (either may be empty); at most limit, best first.
	textSearch(ctx context.Context, ns, lo, hi string, terms, phrases []string, limit int) ([]textHit, error)
	// matchIDs is every document in ns with paths in [lo, hi) containing all phrases.
	matchIDs(ctx context.Context, ns, lo, hi string, phrases []string) (map[int64]bool, error)
	// snippet is an excerpt of one document around its matches of terms and phrases,
	// or "" if it has none. It is asked for the few results returned only: excerpts
	// cost a pass over the text, too much to make for every match while ranking.
	snippet(ctx context.Context, id int64, terms, phrases []string) (string, error)
	// docText is the indexed text of one document.
	docText(ctx context.Context, id int64) (string, error)
	close() error
}

// bumpGen records that ns's documents changed, so vector caches reload it.
func bumpGen(ctx context.Context, q querier, ns string) error {
	_, err := q.Exec(ctx, `INSERT INTO docgen (ns, gen) VALUES ($1, 1)
		ON CONFLICT (ns) DO UPDATE SET gen = docgen.gen + 1`, ns)
	return err
}

// scanTextHits reads a full-text search's (id, path) rows, in rank order, and closes them.
func scanTextHits(rs sqldb.Rows) ([]textHit, error) {
	defer rs.Close()
	var out []textHit
	for rs.Next() {
		var h textHit
		if err := rs.Scan(&h.id, &h.path); err != nil {
			return nil, err
		}
		out = append(out, h)
	}
	return out, rs.Err()
}
