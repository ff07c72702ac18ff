package access

import (
	"context"
	"errors"

	"github.com/aios-go/aios/api"
	"github.com/aios-go/aios/internal/sqldb"
)

// StoreConfig says where the access manager's tables live.
type StoreConfig struct {
	Backend string // sqlite (default) or postgres
	Path    string // the SQLite file
	DSN     string // PostgreSQL
}

// The schema is SQL both dialects accept. Times are Unix nanoseconds in BIGINT, flags
// are 0/1 BIGINT and "never" is 0, so no column is NULL and both drivers scan the same
// Go types. Tables are prefixed access_ because on PostgreSQL they may share a database
// with the other stores.
var schema = []string{
	`CREATE TABLE IF NOT EXISTS access_tenants (name TEXT PRIMARY KEY, created BIGINT NOT NULL)`,
	`CREATE TABLE IF NOT EXISTS access_agents (name TEXT PRIMARY KEY, tenant TEXT NOT NULL,
		groups_json TEXT NOT NULL, created BIGINT NOT NULL, disabled BIGINT NOT NULL DEFAULT 0)`,
	`CREATE INDEX IF NOT EXISTS access_agents_tenant ON access_agents (tenant, name)`,
	`CREATE TABLE IF NOT EXISTS access_keys (id TEXT PRIMARY KEY, kind TEXT NOT NULL, owner TEXT NOT NULL,
		hash TEXT NOT NULL, created BIGINT NOT NULL, revoked BIGINT NOT NULL DEFAULT 0,
		last_used BIGINT NOT NULL DEFAULT 0, replaced_by TEXT NOT NULL DEFAULT '')`,
	`CREATE INDEX IF NOT EXISTS access_keys_owner ON access_keys (kind, owner)`,
	// The keys of agent runs the kernel started, while the run lasts (runkeys.go).
	`CREATE TABLE IF NOT EXISTS access_run_keys (id TEXT PRIMARY KEY, program TEXT NOT NULL, created BIGINT NOT NULL)`,
	`CREATE TABLE IF NOT EXISTS access_quotas (scope TEXT NOT NULL, name TEXT NOT NULL, limits TEXT NOT NULL,
		PRIMARY KEY (scope, name))`,
	`CREATE TABLE IF NOT EXISTS access_quota_usage (scope TEXT NOT NULL, name TEXT NOT NULL, period TEXT NOT NULL,
		window_start BIGINT NOT NULL, used BIGINT NOT NULL, PRIMARY KEY (scope, name, period))`,
	`CREATE TABLE IF NOT EXISTS access_approvals (id TEXT PRIMARY KEY, principal TEXT NOT NULL, tenant TEXT NOT NULL,
		action TEXT NOT NULL, resource TEXT NOT NULL, path TEXT NOT NULL, reason TEXT NOT NULL,
		created BIGINT NOT NULL, deadline BIGINT NOT NULL, status TEXT NOT NULL,
		decided_by TEXT NOT NULL DEFAULT '', decided_reason TEXT NOT NULL DEFAULT '', decided_at BIGINT NOT NULL DEFAULT 0)`,
	`CREATE INDEX IF NOT EXISTS access_approvals_status ON access_approvals (status, deadline)`,
	`CREATE TABLE IF NOT EXISTS access_audit (seq BIGINT PRIMARY KEY, at BIGINT NOT NULL, who TEXT NOT NULL,
		action TEXT NOT NULL, resource TEXT NOT NULL, decision TEXT NOT NULL, details TEXT NOT NULL,
		prev_hash TEXT NOT NULL, hash TEXT NOT NULL)`,
	`CREATE INDEX IF NOT EXISTS access_audit_who ON access_audit (who, seq)`,
	`CREATE INDEX IF NOT EXISTS access_audit_action ON access_audit (action, seq)`,
	`CREATE INDEX IF NOT EXISTS access_audit_at ON access_audit (at)`,
}

// schemaLock is the advisory lock key under which kernels create the schema on
// PostgreSQL; each store has its own.
const schemaLock = 0x61696f73616363 // "aiosacc"

// Store is the access manager's open database.
type Store struct {
	db sqldb.DB
	// exclusive is true for SQLite, whose file one kernel owns: what it finds pending
	// at start-up was left by its own previous run.
	exclusive bool
}

// OpenStore opens (creating them if needed) the access manager's tables.
func OpenStore(ctx context.Context, cfg StoreConfig) (*Store, error) {
	switch cfg.Backend {
	case "", "sqlite":
		if cfg.Path == "" {
			return nil, api.Errorf(api.CallerBadRequest, "access: no SQLite file given")
		}
		db, err := sqldb.OpenSQLite(ctx, cfg.Path, schema)
		if err != nil {
			return nil, api.Wrap(api.KernelInternal, err, "access: open %s", cfg.Path)
		}
		return &Store{db: db, exclusive: true}, nil
	case "postgres", "postgresql":
		if cfg.DSN == "" {
			return nil, api.Errorf(api.CallerBadRequest, "access: the postgres backend needs a DSN (postgres://user@host:port/db)")
		}
		db, err := sqldb.OpenPostgres(ctx, cfg.DSN, schema, schemaLock)
		if errors.Is(err, sqldb.ErrBadDSN) {
			return nil, api.Wrap(api.CallerBadRequest, err, "access: the PostgreSQL DSN is not usable; give postgres://user:password@host:port/database")
		}
		if err != nil {
			return nil, api.Wrap(api.BackendUnavailable, err, "access: cannot prepare the PostgreSQL database; check that it runs and the DSN's user may create tables")
		}
		return &Store{db: db}, nil
	}
	return nil, api.Errorf(api.CallerBadRequest, "access: unknown backend %q; use \"sqlite\" or \"postgres\"", cfg.Backend)
}

// Close closes the database.
func (s *Store) Close() error { return s.db.Close() }

// write runs f in one write transaction and commits it.
func (s *Store) write(ctx context.Context, f func(tx sqldb.Tx) error) error {
	tx, err := s.db.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if err := f(tx); err != nil {
		return err
	}
	return tx.Commit()
}

// internal wraps a database failure: the caller did nothing wrong. A nil err stays nil.
func internal(err error, format string, args ...any) error {
	if err == nil {
		return nil
	}
	var ae *api.Error
	if errors.As(err, &ae) {
		return err
	}
	return api.Wrap(api.KernelInternal, err, "access: "+format, args...)
}
