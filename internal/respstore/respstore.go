// Package respstore keeps the Responses API's stored responses (store: true), so
// previous_response_id can continue a conversation and GET/DELETE /v1/responses/{id}
// work. Each row holds the whole conversation through its response, so continuing one
// reads one row, and deleting any response leaves the others whole.
//
// It lives in the storage module's database: a SQLite file beside storage's (its own
// file, so its writes never queue behind a large file write), or the same PostgreSQL
// database, in its own table.
package respstore

import (
	"context"
	"encoding/json"
	"errors"

	"github.com/aios-go/aios/api"
	"github.com/aios-go/aios/internal/sqldb"
)

// Record is one stored response.
type Record struct {
	ID        string
	Agent     string // the agent that created it; no other agent sees it
	CreatedAt int64  // Unix seconds
	// Messages is the conversation through this response, in the kernel's chat shape,
	// without the request's instructions (OpenAI does not carry them over either).
	Messages []api.Message
	// Input is the request's input items as GET .../input_items lists them.
	Input json.RawMessage
	// Response is the response object as it was returned.
	Response json.RawMessage
}

// Config says where the store lives.
type Config struct {
	Backend string // sqlite (default) or postgres
	Path    string // the SQLite file
	DSN     string // PostgreSQL
}

var schema = []string{
	`CREATE TABLE IF NOT EXISTS responses (id TEXT PRIMARY KEY, agent TEXT NOT NULL, created_at BIGINT NOT NULL,
		messages TEXT NOT NULL, input TEXT NOT NULL, response TEXT NOT NULL)`,
	`CREATE INDEX IF NOT EXISTS responses_agent ON responses (agent, created_at)`,
}

// schemaLock is the advisory lock key under which kernels create the schema on
// PostgreSQL; each store has its own.
const schemaLock = 0x61696f73727370 // "aiosrsp"

// Store is an open response store.
type Store struct{ db sqldb.DB }

// Open opens (creating it if needed) the store.
func Open(ctx context.Context, cfg Config) (*Store, error) {
	switch cfg.Backend {
	case "", "sqlite":
		if cfg.Path == "" {
			return nil, api.Errorf(api.CallerBadRequest, "responses: no SQLite file given")
		}
		db, err := sqldb.OpenSQLite(ctx, cfg.Path, schema)
		if err != nil {
			return nil, api.Wrap(api.KernelInternal, err, "responses: open %s", cfg.Path)
		}
		return &Store{db: db}, nil
	case "postgres", "postgresql":
		if cfg.DSN == "" {
			return nil, api.Errorf(api.CallerBadRequest, "responses: the postgres backend needs a DSN (postgres://user@host:port/db)")
		}
		db, err := sqldb.OpenPostgres(ctx, cfg.DSN, schema, schemaLock)
		if errors.Is(err, sqldb.ErrBadDSN) {
			return nil, api.Wrap(api.CallerBadRequest, err, "responses: the PostgreSQL DSN is not usable; give postgres://user:password@host:port/database")
		}
		if err != nil {
			return nil, api.Wrap(api.BackendUnavailable, err, "responses: cannot prepare the PostgreSQL database; check that it runs and the DSN's user may create tables")
		}
		return &Store{db: db}, nil
	}
	return nil, api.Errorf(api.CallerBadRequest, "responses: unknown backend %q; use \"sqlite\" or \"postgres\"", cfg.Backend)
}

// Put stores rec; it is durable when Put returns.
func (s *Store) Put(ctx context.Context, rec Record) error {
	msgs, err := json.Marshal(rec.Messages)
	if err != nil {
		return api.Wrap(api.KernelInternal, err, "responses: encode the conversation of %s", rec.ID)
	}
	input := rec.Input
	if len(input) == 0 {
		input = json.RawMessage("[]")
	}
	t, err := s.db.Begin(ctx)
	if err != nil {
		return api.Wrap(api.KernelInternal, err, "responses: store %s", rec.ID)
	}
	defer t.Rollback()
	if _, err := t.Exec(ctx, `INSERT INTO responses (id, agent, created_at, messages, input, response) VALUES ($1, $2, $3, $4, $5, $6)`,
		rec.ID, rec.Agent, rec.CreatedAt, string(msgs), string(input), string(rec.Response)); err != nil {
		return api.Wrap(api.KernelInternal, err, "responses: store %s", rec.ID)
	}
	if err := t.Commit(); err != nil {
		return api.Wrap(api.KernelInternal, err, "responses: store %s", rec.ID)
	}
	return nil
}

// Get reads the response id of agent. Another agent's response is not found, as one
// that never existed: an agent cannot learn which ids others hold.
func (s *Store) Get(ctx context.Context, agent, id string) (Record, error) {
	rec := Record{ID: id, Agent: agent}
	var msgs, input, resp string
	err := s.db.Read().QueryRow(ctx, `SELECT created_at, messages, input, response FROM responses WHERE id = $1 AND agent = $2`,
		id, agent).Scan(&rec.CreatedAt, &msgs, &input, &resp)
	if errors.Is(err, sqldb.ErrNoRows) {
		return Record{}, notFound(id)
	}
	if err != nil {
		return Record{}, api.Wrap(api.KernelInternal, err, "responses: read %s", id)
	}
	if err := json.Unmarshal([]byte(msgs), &rec.Messages); err != nil {
		return Record{}, api.Wrap(api.KernelInternal, err, "responses: the stored conversation of %s is damaged", id)
	}
	rec.Input, rec.Response = json.RawMessage(input), json.RawMessage(resp)
	return rec, nil
}

// Delete removes the response id of agent.
func (s *Store) Delete(ctx context.Context, agent, id string) error {
	t, err := s.db.Begin(ctx)
	if err != nil {
		return api.Wrap(api.KernelInternal, err, "responses: delete %s", id)
	}
	defer t.Rollback()
	n, err := t.Exec(ctx, `DELETE FROM responses WHERE id = $1 AND agent = $2`, id, agent)
	if err != nil {
		return api.Wrap(api.KernelInternal, err, "responses: delete %s", id)
	}
	if n == 0 {
		return notFound(id)
	}
	if err := t.Commit(); err != nil {
		return api.Wrap(api.KernelInternal, err, "responses: delete %s", id)
	}
	return nil
}

// Close closes the database.
func (s *Store) Close() error { return s.db.Close() }

func notFound(id string) error {
	return api.Errorf(api.CallerNotFound, "no response with id %q (responses are kept only with store: true, and only for the agent that created them)", id)
}
