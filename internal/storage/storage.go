// Package storage is the kernel's storage manager: AIOS's semantic file system.
//
// Every agent has a namespace of its own: a tree of folders and versioned files that no
// other agent sees. File contents are content-addressed blobs (sha256), shared between
// files and agents and freed when no kept version refers to them; each file keeps its
// last MaxVersions versions, and a rollback is itself a new version. Text files are
// indexed twice, by keywords (SQLite FTS5 BM25, or PostgreSQL full-text search) and by an
// embedding, and Retrieve fuses both rankings. An agent may mount a sub-folder of its
// namespace, or a host folder the operator allowed, in place of its namespace root; host
// folders are watched and re-indexed as they change.
//
// One Manager serves both backends (SQLite, the default, and PostgreSQL): the logic lives
// here once, and a backend supplies transactions, locking and full-text search.
package storage

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/aios-go/aios/api"
	"github.com/aios-go/aios/internal/embed"
)

// Config configures a Manager. The zero value of every field but Path (or DSN) is a
// working default.
type Config struct {
	Backend      string // "sqlite" (default) or "postgres"
	Path         string // SQLite file, e.g. <data-dir>/storage.db
	DSN          string // PostgreSQL connection string (pgx)
	MaxVersions  int    // versions kept per file; 0 means 20
	MaxFileBytes int64  // largest file; 0 means 16 MiB
	// QuotaBytes bounds the sum of the current sizes of an agent's files (old versions
	// and host folders are not counted); 0 means 1 GiB, negative means unlimited.
	QuotaBytes int64
	HostRoots  []string       // absolute host folders agents may mount; empty means none
	Embedder   embed.Embedder // nil means embed.Hashed{}
	Guard      Guard          // nil allows everything
	Logger     *slog.Logger   // nil means slog.Default()
	// Now is the clock for version times and share expiry; nil means time.Now. Tests
	// replace it.
	Now func() time.Time
}

// Guard is the one hook every destructive operation passes (delete, overwrite of a
// non-empty file, rollback): the access manager uses it for approvals. An error refuses
// the operation and reaches the caller unchanged. It runs with no lock held, so it may
// block while a person decides.
type Guard func(ctx context.Context, a Action) error

// Action is what a Guard is asked to allow. Path is the path as the agent sent it,
// normalised (for a host mount, relative to the mounted folder).
type Action struct {
	Agent, Op, Path string // Op: "delete", "overwrite", "rollback"
}

// FileInfo describes a file or folder as the agent sees it.
type FileInfo struct {
	Path     string
	Dir      bool
	Size     int64
	Modified time.Time
	// Version is the file's current version number (0 for folders, and for host files
	// never written through the kernel).
	Version int
	SHA256  string // hex; empty for folders and for files in host folders
}

// Version is one entry of a file's history.
type Version struct {
	N      int // monotonic per file, from 1
	Time   time.Time
	Size   int64
	SHA256 string
	Change string // "create", "write", "rollback" or "delete"
}

// Mount is an agent's current root: its namespace (Root ""), a folder inside it (Root
// relative, e.g. "projects/a") or a host folder (Root absolute, Host true).
type Mount struct {
	Agent, Root string
	Host        bool
}

// RollbackTarget picks the version to restore: N versions back (1 is the one before the
// current), or, when N is 0, the version that was current at Time.
type RollbackTarget struct {
	N    int
	Time time.Time
}

// Query asks Retrieve for the K files (default 5) that best match Text. Every keyword in
// Keywords must occur in a file for it to be returned (a filter, matched as words or
// phrases, case-insensitively, with English stemming); Text may be empty when Keywords
// is not, and then files are ranked by the keywords alone.
type Query struct {
	Text     string
	K        int
	Keywords []string
}

// Hit is one retrieved file: its path as the agent sees it, the fused score (higher is
// better; comparable only within one result) and a short excerpt.
type Hit struct {
	Path    string
	Score   float64
	Snippet string
}

// Share is a link to one file. Whoever holds Token can read the file's current content
// until Expires or until its owner revokes it.
type Share struct {
	Token, Path, Agent string
	Expires            time.Time
}

// Stats counts what the store holds, for metrics and tests.
type Stats struct {
	Blobs     int64 // distinct contents stored
	BlobBytes int64
	Files     int64 // current files in every namespace (folders and host files excluded)
}

const (
	defaultMaxVersions  = 20
	defaultMaxFileBytes = 16 << 20
	defaultQuotaBytes   = 1 << 30
	defaultShareTTL     = 24 * time.Hour
	maxShareTTL         = 366 * 24 * time.Hour
	maxAgentBytes       = 256
)

// Manager is the storage manager. It is safe for concurrent use.
type Manager struct {
	cfg   Config
	db    backend
	log   *slog.Logger
	emb   embed.Embedder
	now   func() time.Time
	roots []string // HostRoots, cleaned and with symbolic links resolved
	vecs  vectorCache
	host  *watcher // nil when no host folder may be mounted

	mu     sync.Mutex
	views  map[string]view // agent -> current root; loaded from the mounts table on first use
	closed atomic.Bool
}

// Open opens (creating if needed) the store cfg names and resumes watching the host
// folders agents had mounted.
func Open(ctx context.Context, cfg Config) (*Manager, error) {
	if cfg.MaxVersions <= 0 {
		cfg.MaxVersions = defaultMaxVersions
	}
	if cfg.MaxFileBytes <= 0 {
		cfg.MaxFileBytes = defaultMaxFileBytes
	}
	if cfg.QuotaBytes == 0 {
		cfg.QuotaBytes = defaultQuotaBytes
	}
	m := &Manager{cfg: cfg, log: cfg.Logger, emb: cfg.Embedder, now: cfg.Now, views: map[string]view{}}
	if m.log == nil {
		m.log = slog.Default()
	}
	m.log = m.log.With("module", "storage")
	if m.emb == nil {
		m.emb = embed.Hashed{}
	}
	if m.now == nil {
		m.now = time.Now
	}
	for _, r := range cfg.HostRoots {
		if !filepath.IsAbs(r) {
			return nil, api.Errorf(api.CallerBadRequest, "storage host root %q is not an absolute path; give host_roots as absolute folders", r)
		}
		real, err := filepath.EvalSymlinks(filepath.Clean(r))
		if err != nil {
			return nil, api.Wrap(api.CallerBadRequest, err, "storage host root %q cannot be resolved; create it or remove it from host_roots", r)
		}
		m.roots = append(m.roots, real)
	}
	var err error
	switch cfg.Backend {
	case "", "sqlite":
		if cfg.Path == "" {
			return nil, api.Errorf(api.CallerBadRequest, "storage: no SQLite file given; set the storage path (e.g. <data-dir>/storage.db)")
		}
		m.db, err = openSQLite(ctx, cfg.Path)
	case "postgres", "postgresql":
		if cfg.DSN == "" {
			return nil, api.Errorf(api.CallerBadRequest, "storage: the postgres backend needs a DSN (postgres://user@host:port/db)")
		}
		m.db, err = openPostgres(ctx, cfg.DSN)
	default:
		return nil, api.Errorf(api.CallerBadRequest, "storage: unknown backend %q; use \"sqlite\" or \"postgres\"", cfg.Backend)
	}
	if err != nil {
		return nil, err
	}
	if len(m.roots) > 0 {
		if m.host, err = newWatcher(m); err != nil {
			m.db.close()
			return nil, err
		}
		m.host.resume(ctx)
	}
	return m, nil
}

// Close stops the watchers of host folders and closes the database. Calls after Close
// fail with KernelShuttingDown.
func (m *Manager) Close() error {
	if m.closed.Swap(true) {
		return nil
	}
	if m.host != nil {
		m.host.close()
	}
	return m.db.close()
}

// Stats counts blobs and files in the whole store.
func (m *Manager) Stats(ctx context.Context) (Stats, error) {
	var s Stats
	if err := m.live(); err != nil {
		return s, err
	}
	q := m.db.read()
	if err := q.QueryRow(ctx, `SELECT COUNT(*), COALESCE(SUM(size), 0) FROM blobs`).Scan(&s.Blobs, &s.BlobBytes); err != nil {
		return s, internal(err, "count blobs")
	}
	if err := q.QueryRow(ctx, `SELECT COUNT(*) FROM files WHERE dir = 0`).Scan(&s.Files); err != nil {
		return s, internal(err, "count files")
	}
	return s, nil
}

// Usage is the sum of the current sizes of the agent's files: what QuotaBytes bounds.
func (m *Manager) Usage(ctx context.Context, agent string) (int64, error) {
	if err := m.checkAgent(agent); err != nil {
		return 0, err
	}
	var used int64
	err := m.db.read().QueryRow(ctx, `SELECT bytes FROM usage WHERE ns = $1`, agentNS(agent)).Scan(&used)
	if errors.Is(err, errNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, internal(err, "read usage")
	}
	return used, nil
}

func (m *Manager) live() error {
	if m.closed.Load() {
		return api.Errorf(api.KernelShuttingDown, "the storage manager is closed")
	}
	return nil
}

func (m *Manager) checkAgent(agent string) error {
	if err := m.live(); err != nil {
		return err
	}
	if agent == "" {
		return api.Errorf(api.CallerBadRequest, "no agent name given; every storage call acts for one agent")
	}
	if len(agent) > maxAgentBytes || !utf8.ValidString(agent) || strings.ContainsFunc(agent, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		return api.Errorf(api.CallerBadRequest, "agent name %q is not usable: give at most %d bytes of printable UTF-8", agent, maxAgentBytes)
	}
	return nil
}

func (m *Manager) guard(ctx context.Context, agent, op, path string) error {
	if m.cfg.Guard == nil {
		return nil
	}
	return m.cfg.Guard(ctx, Action{Agent: agent, Op: op, Path: path})
}

// Namespaces in the database: one per agent, and one for every host folder, keyed by
// real path, so two agents mounting overlapping folders share one index and history.
const hostNS = "host:"

func agentNS(agent string) string { return "agent:" + agent }

// internal classifies a database or system error for the caller; nil stays nil.
func internal(err error, what string) error {
	if err == nil {
		return nil
	}
	var e *api.Error
	if errors.As(err, &e) {
		return err
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return api.Wrap(api.CallerCancelled, err, "storage: %s: cancelled", what)
	}
	return api.Wrap(api.KernelInternal, err, "storage: %s failed", what)
}

func notFound(path string) error {
	return api.Errorf(api.CallerNotFound, "no file or folder %s; List its folder to see what exists", strqt(path))
}

func strqt(s string) string { return fmt.Sprintf("%q", s) }
