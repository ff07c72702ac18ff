package memory

import (
	"context"
	"sync"

	"github.com/aios-go/aios/internal/sqldb"
)

// retrievalCounts holds the retrieval counts Retrieve has not written yet. Writing them
// at every Retrieve would put a disk sync on the read path; instead they ride on the
// next write transaction, or on Close. A kill -9 can lose counts accumulated since the
// last write: they are statistics, not acknowledged data.
type retrievalCounts struct {
	mu       sync.Mutex
	pending  map[int64]int
	inFlight map[int64]int // taken by a transaction not yet committed
}

// maxPending bounds the counts held: past it, Retrieve writes them itself.
const maxPending = 4096

func (r *retrievalCounts) add(rid int64) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.pending == nil {
		r.pending = map[int64]int{}
	}
	r.pending[rid]++
	return len(r.pending)
}

func (r *retrievalCounts) pendingFor(rid int64) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.pending[rid] + r.inFlight[rid]
}

func (r *retrievalCounts) forget(rid int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.pending, rid)
}

// write adds the pending counts to the database inside t. The caller holds the write
// lock, so only one transaction carries counts at a time.
func (r *retrievalCounts) write(ctx context.Context, t sqldb.Tx) error {
	r.mu.Lock()
	r.inFlight, r.pending = r.pending, nil
	batch := r.inFlight
	r.mu.Unlock()
	for rid, n := range batch {
		if _, err := t.Exec(ctx, `UPDATE mem_notes SET retrievals = retrievals + $2 WHERE rid = $1`, rid, int64(n)); err != nil {
			return err
		}
	}
	return nil
}

// done forgets counts a committed transaction wrote.
func (r *retrievalCounts) done() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.inFlight = nil
}

// restore puts back counts whose transaction failed.
func (r *retrievalCounts) restore() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.pending == nil {
		r.pending = map[int64]int{}
	}
	for rid, n := range r.inFlight {
		r.pending[rid] += n
	}
	r.inFlight = nil
}

// flushRetrievals writes pending counts in a transaction of their own. The caller holds
// the write lock.
func (m *Manager) flushRetrievals(ctx context.Context) error {
	t, err := m.db.Begin(ctx)
	if err != nil {
		return err
	}
	defer t.Rollback()
	return m.commit(ctx, t)
}
