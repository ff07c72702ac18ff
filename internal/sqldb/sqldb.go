// Package sqldb is the small SQL layer the kernel's stores share (storage, memory): it
// opens SQLite or PostgreSQL with the settings durability needs and adapts both drivers
// to one interface, so each store writes its logic once.
//
// Queries use $1..$n placeholders, which both drivers bind by number, and SQL both
// dialects share (ON CONFLICT, RETURNING, WITH RECURSIVE); what differs (full-text
// search, column types in the schema, locking) stays in the store that needs it.
package sqldb

import (
	"context"
	"errors"
)

// ErrNoRows is what Row.Scan returns for an empty result, whichever driver ran it.
var ErrNoRows = errors.New("sqldb: no rows")

// Querier runs statements on the database or inside a transaction.
type Querier interface {
	// Exec runs a statement and returns the number of rows it changed.
	Exec(ctx context.Context, q string, args ...any) (int64, error)
	QueryRow(ctx context.Context, q string, args ...any) Row
	Query(ctx context.Context, q string, args ...any) (Rows, error)
}

// Row is one result row; Scan returns ErrNoRows when there is none.
type Row interface{ Scan(dest ...any) error }

// Rows is a result set; Close is safe to defer.
type Rows interface {
	Next() bool
	Scan(dest ...any) error
	Err() error
	Close()
}

// Tx is a write transaction.
type Tx interface {
	Querier
	Commit() error
	// Rollback ends the transaction if Commit has not; it is safe to defer.
	Rollback()
}

// DB is an open database of either kind.
type DB interface {
	// Read runs statements outside any transaction.
	Read() Querier
	// Begin starts a write transaction. SQLite allows one writer, so there Begin waits
	// for the previous writer to finish.
	Begin(ctx context.Context) (Tx, error)
	Close() error
}
