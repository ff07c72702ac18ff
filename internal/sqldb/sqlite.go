package sqldb

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"

	_ "modernc.org/sqlite" // registers the "sqlite" driver: pure Go, FTS5 built in
)

// WAL lets readers run beside the one writer. synchronous=FULL syncs the WAL at every
// commit, so an acknowledged write survives not just kill -9 of the kernel but a power
// cut too. _txlock=immediate takes the write lock at BEGIN, so a transaction never fails
// halfway for want of it.
const sqliteParams = "?_pragma=journal_mode(WAL)&_pragma=synchronous(FULL)&_pragma=busy_timeout(10000)&_txlock=immediate"

// SQLite is a SQLite database file.
type SQLite struct {
	db *sql.DB
	// SQLite has one writer at a time. Queueing writers here, in order, is cheaper and
	// fairer than letting them spin on SQLITE_BUSY.
	wmu sync.Mutex
}

// OpenSQLite opens (creating it and its folder if needed) the SQLite file at path and
// runs schema, statements that must be idempotent (CREATE ... IF NOT EXISTS), in one
// transaction. Errors are plain; the caller says which store failed.
func OpenSQLite(ctx context.Context, path string, schema []string) (*SQLite, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("cannot create the folder for %s: %w", path, err)
	}
	db, err := sql.Open("sqlite", "file:"+path+sqliteParams)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	db.SetMaxOpenConns(8)
	s := &SQLite{db: db}
	if err := s.apply(ctx, schema); err != nil {
		db.Close()
		return nil, fmt.Errorf("create the schema in %s (is it a SQLite file, and writable?): %w", path, err)
	}
	return s, nil
}

func (s *SQLite) apply(ctx context.Context, schema []string) error {
	t, err := s.Begin(ctx)
	if err != nil {
		return err
	}
	defer t.Rollback()
	for _, q := range schema {
		if _, err := t.Exec(ctx, q); err != nil {
			return err
		}
	}
	return t.Commit()
}

func (s *SQLite) Read() Querier { return sqlQ{s.db} }

func (s *SQLite) Begin(ctx context.Context) (Tx, error) {
	s.wmu.Lock()
	t, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		s.wmu.Unlock()
		return nil, err
	}
	return &sqliteTx{sqlQ: sqlQ{t}, tx: t, unlock: s.wmu.Unlock}, nil
}

func (s *SQLite) Close() error { return s.db.Close() }

// sqlQ adapts database/sql (a *sql.DB or *sql.Tx) to Querier.
type sqlQ struct {
	r interface {
		ExecContext(ctx context.Context, q string, args ...any) (sql.Result, error)
		QueryRowContext(ctx context.Context, q string, args ...any) *sql.Row
		QueryContext(ctx context.Context, q string, args ...any) (*sql.Rows, error)
	}
}

func (q sqlQ) Exec(ctx context.Context, s string, args ...any) (int64, error) {
	res, err := q.r.ExecContext(ctx, s, args...)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

func (q sqlQ) QueryRow(ctx context.Context, s string, args ...any) Row {
	return sqlRow{q.r.QueryRowContext(ctx, s, args...)}
}

func (q sqlQ) Query(ctx context.Context, s string, args ...any) (Rows, error) {
	rs, err := q.r.QueryContext(ctx, s, args...)
	if err != nil {
		return nil, err
	}
	return sqlRows{rs}, nil
}

type sqlRow struct{ r *sql.Row }

func (r sqlRow) Scan(dest ...any) error {
	if err := r.r.Scan(dest...); errors.Is(err, sql.ErrNoRows) {
		return ErrNoRows
	} else {
		return err
	}
}

type sqlRows struct{ *sql.Rows }

func (r sqlRows) Close() { r.Rows.Close() }

type sqliteTx struct {
	sqlQ
	tx     *sql.Tx
	unlock func()
	done   bool
}

func (t *sqliteTx) Commit() error {
	if t.done {
		return errors.New("sqldb: transaction already ended")
	}
	t.done = true
	defer t.unlock()
	return t.tx.Commit()
}

func (t *sqliteTx) Rollback() {
	if t.done {
		return
	}
	t.done = true
	t.tx.Rollback()
	t.unlock()
}
