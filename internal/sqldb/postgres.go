package sqldb

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Postgres is a PostgreSQL database reached through a pgx pool.
type Postgres struct{ pool *pgxpool.Pool }

// ErrBadDSN marks an OpenPostgres failure caused by the DSN itself, not the server, so
// callers can tell the operator which to fix.
var ErrBadDSN = errors.New("the PostgreSQL DSN is not usable")

// OpenPostgres connects to dsn and runs schema in one transaction under the advisory
// lock lockKey: two processes running CREATE ... IF NOT EXISTS at once can otherwise
// collide, and each store passes its own key so they do not wait on each other.
func OpenPostgres(ctx context.Context, dsn string, schema []string, lockKey int64) (*Postgres, error) {
	pool, err := pgxpool.New(ctx, dsn)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadDSN, err)
	}
	p := &Postgres{pool: pool}
	if err := p.apply(ctx, schema, lockKey); err != nil {
		pool.Close()
		return nil, err
	}
	return p, nil
}

func (p *Postgres) apply(ctx context.Context, schema []string, lockKey int64) error {
	t, err := p.Begin(ctx)
	if err != nil {
		return err
	}
	defer t.Rollback()
	if _, err := t.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, lockKey); err != nil {
		return err
	}
	for _, q := range schema {
		if _, err := t.Exec(ctx, q); err != nil {
			return fmt.Errorf("%s: %w", strings.Fields(q)[:min(6, len(strings.Fields(q)))], err)
		}
	}
	return t.Commit()
}

func (p *Postgres) Read() Querier { return pgQ{p.pool} }

func (p *Postgres) Begin(ctx context.Context) (Tx, error) {
	t, err := p.pool.Begin(ctx)
	if err != nil {
		return nil, err
	}
	return &pgTx{pgQ: pgQ{t}, tx: t}, nil
}

func (p *Postgres) Close() error {
	p.pool.Close()
	return nil
}

// pgQ adapts a pool or a transaction to Querier.
type pgQ struct {
	r interface {
		Exec(ctx context.Context, q string, args ...any) (pgconn.CommandTag, error)
		QueryRow(ctx context.Context, q string, args ...any) pgx.Row
		Query(ctx context.Context, q string, args ...any) (pgx.Rows, error)
	}
}

func (q pgQ) Exec(ctx context.Context, s string, args ...any) (int64, error) {
	tag, err := q.r.Exec(ctx, s, args...)
	return tag.RowsAffected(), err
}

func (q pgQ) QueryRow(ctx context.Context, s string, args ...any) Row {
	return pgRow{q.r.QueryRow(ctx, s, args...)}
}

func (q pgQ) Query(ctx context.Context, s string, args ...any) (Rows, error) {
	return q.r.Query(ctx, s, args...)
}

type pgRow struct{ r pgx.Row }

func (r pgRow) Scan(dest ...any) error {
	if err := r.r.Scan(dest...); errors.Is(err, pgx.ErrNoRows) {
		return ErrNoRows
	} else {
		return err
	}
}

type pgTx struct {
	pgQ
	tx   pgx.Tx
	done bool
}

func (t *pgTx) Commit() error {
	t.done = true
	return t.tx.Commit(context.Background())
}

// Rollback uses a fresh context: the caller's may be what was cancelled, and the
// connection must go back to the pool clean either way.
func (t *pgTx) Rollback() {
	if !t.done {
		t.done = true
		t.tx.Rollback(context.Background())
	}
}
