// Package memory is the kernel's memory manager: durable agent memory with hybrid
// retrieval, a hot set bounded in bytes and evicted by LRU-K, shared blocks, and
// conversation histories stored through a prefix trie.
//
// Notes have A-MEM's shape (Xu et al. 2025): content, keywords, tags, category,
// context, links, timestamps and a retrieval count, with every change recorded with its
// actor. A note belongs to an agent, or to a named block that several agents attach to
// (Letta/MemGPT's shared blocks, Packer et al. 2023). Every acknowledged write is
// committed to the database (SQLite by default, PostgreSQL when configured) before it
// returns. Retrieval fuses BM25, embedding cosine and recency by reciprocal rank fusion
// over all of an agent's notes, whatever is in RAM. See docs/memory.md.
package memory

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/aios-go/aios/api"
	"github.com/aios-go/aios/internal/embed"
	"github.com/aios-go/aios/internal/sqldb"
)

// Config configures a Manager. The zero value of every field but Path (or DSN) is a
// working default.
type Config struct {
	Backend string // "sqlite" (default) or "postgres"
	Path    string // SQLite file, e.g. <data-dir>/memory.db
	DSN     string // PostgreSQL connection string (pgx)
	// Embedder embeds notes and queries; nil means embed.Hashed{}.
	Embedder embed.Embedder
	// HotBytes is the hot set's budget; 0 means 64 MiB. Past 80% of it notes are evicted
	// by LRU-K down to 70%.
	HotBytes int64
	K        int // LRU-K's K; 0 means 2
	// Fusion weighs keyword, vector and recency rankings; nil means DefaultFusion.
	Fusion *Fusion
	// Allow, when set, is asked before every operation the scoping rules permit and may
	// refuse it with an error that reaches the caller unchanged (the access manager's
	// hook). op is one of the Op* constants; n is the note concerned (for block
	// operations, only n.Block is set). For OpRetrieve it filters hits one by one.
	Allow  func(ctx context.Context, actor, op string, n Note) error
	Logger *slog.Logger     // nil means slog.Default()
	Now    func() time.Time // nil means time.Now; tests replace it
}

// Operations passed to Config.Allow.
const (
	OpAdd, OpGet, OpUpdate, OpRemove, OpHistory = "add", "get", "update", "remove", "history"
	OpRetrieve, OpPin                           = "retrieve", "pin"
	OpCreateBlock, OpAttach, OpDetach           = "create_block", "attach", "detach"
)

// Note is one memory. Agent owns it; when Block is set it lives in that shared block
// and every agent attached to the block sees it.
type Note struct {
	ID, Agent, Block string
	Content          string
	Keywords, Tags   []string
	Category         string
	Context          string
	Links            []string // ids of related notes (A-MEM's links)
	Metadata         map[string]any
	Created, Updated time.Time
	Retrievals       int // times the note was returned by Retrieve
	Pinned           bool
}

// Patch changes a note: nil fields stay as they are (AIOS's SDK sends content: null to
// mean "unchanged").
type Patch struct {
	Content           *string
	Keywords, Tags    *[]string
	Category, Context *string
	Links             *[]string
	Metadata          *map[string]any
	Pinned            *bool
}

// Change is one entry of a note's history. Before is nil for "add", After for "remove".
type Change struct {
	Seq    int64
	Actor  string
	Time   time.Time
	Op     string // "add", "update", "pin", "remove"
	Before *Note
	After  *Note
}

// Block is a shared memory block.
type Block struct {
	Name, Owner string
	Created     time.Time
}

// Stats is what the admin API shows of the memory manager.
type Stats struct {
	HotNotes   int
	HotBytes   int64
	Budget     int64
	Evictions  int64 // notes evicted from the hot set since Open
	Faults     int64 // accesses that had to load a note from the database since Open
	Notes      int64 // notes in the database
	IndexBytes int64 // RAM held by the vector index (one sign bit per dimension per note)
	// Conversation trie: bytes of every session's messages as if each were stored
	// alone, bytes actually stored, and their ratio (1 when nothing is stored).
	TrieLogicalBytes, TrieStoredBytes int64
	CompressionRatio                  float64
}

const (
	defaultHotBytes = 64 << 20
	defaultK        = 2
	maxNameBytes    = 256
	// maxContentBytes bounds one note: a memory is a fact or an exchange, and past this
	// it would crowd every prompt it is injected into.
	maxContentBytes = 256 << 10
)

// Manager is the memory manager. It is safe for concurrent use. One kernel owns a
// memory database: the hot set and the vector index follow this Manager's own writes,
// not those of another process writing the same database.
type Manager struct {
	cfg Config
	db  sqldb.DB
	fts textIndex
	log *slog.Logger
	emb embed.Embedder
	now func() time.Time
	// fusion is Config.Fusion or DefaultFusion; in single-ranker modes each weight is 1.
	fusion Fusion

	// wmu orders writes: the database commit and the matching change to the hot set and
	// the vector index happen as one step, so RAM never disagrees with the database.
	wmu sync.Mutex

	hot    hotSet
	vecs   vectorIndex
	blocks blockCache

	retrievals retrievalCounts
	closed     atomic.Bool
}

// Open opens (creating if needed) the memory database cfg names.
func Open(ctx context.Context, cfg Config) (*Manager, error) {
	if cfg.HotBytes <= 0 {
		cfg.HotBytes = defaultHotBytes
	}
	if cfg.K <= 0 {
		cfg.K = defaultK
	}
	m := &Manager{cfg: cfg, log: cfg.Logger, emb: cfg.Embedder, now: cfg.Now}
	if m.log == nil {
		m.log = slog.Default()
	}
	m.log = m.log.With("module", "memory")
	if m.emb == nil {
		m.emb = embed.Hashed{}
	}
	if m.now == nil {
		m.now = time.Now
	}
	m.fusion = DefaultFusion
	if cfg.Fusion != nil {
		m.fusion = *cfg.Fusion
	}
	switch cfg.Backend {
	case "", "sqlite":
		if cfg.Path == "" {
			return nil, api.Errorf(api.CallerBadRequest, "memory: no SQLite file given; set the memory path (e.g. <data-dir>/memory.db)")
		}
		db, err := sqldb.OpenSQLite(ctx, cfg.Path, sqliteSchema)
		if err != nil {
			return nil, api.Wrap(api.KernelInternal, err, "memory: open %s", cfg.Path)
		}
		m.db, m.fts = db, sqliteText{df: &dfCache{}}
	case "postgres", "postgresql":
		if cfg.DSN == "" {
			return nil, api.Errorf(api.CallerBadRequest, "memory: the postgres backend needs a DSN (postgres://user@host:port/db)")
		}
		db, err := sqldb.OpenPostgres(ctx, cfg.DSN, postgresSchema, schemaLock)
		if errors.Is(err, sqldb.ErrBadDSN) {
			return nil, api.Wrap(api.CallerBadRequest, err, "memory: the PostgreSQL DSN is not usable; give postgres://user:password@host:port/database")
		}
		if err != nil {
			return nil, api.Wrap(api.BackendUnavailable, err, "memory: cannot prepare the PostgreSQL database; check that it runs and the DSN's user may create tables")
		}
		m.db, m.fts = db, postgresText{}
	default:
		return nil, api.Errorf(api.CallerBadRequest, "memory: unknown backend %q; use \"sqlite\" or \"postgres\"", cfg.Backend)
	}
	m.hot.init(cfg.HotBytes, cfg.K)
	m.vecs.init()
	m.blocks.init()
	return m, nil
}

// Close writes pending retrieval counts and closes the database. Calls after Close fail
// with KernelShuttingDown.
func (m *Manager) Close() error {
	if m.closed.Swap(true) {
		return nil
	}
	m.wmu.Lock()
	defer m.wmu.Unlock()
	if err := m.flushRetrievals(context.Background()); err != nil {
		m.log.Warn("retrieval counts not saved", "err", err)
	}
	return m.db.Close()
}

func (m *Manager) live() error {
	if m.closed.Load() {
		return api.Errorf(api.KernelShuttingDown, "the memory manager is closed")
	}
	return nil
}

// checkName validates an agent, block or session name.
func (m *Manager) checkName(what, name string) error {
	if err := m.live(); err != nil {
		return err
	}
	if name == "" {
		return api.Errorf(api.CallerBadRequest, "no %s name given; every memory call names one", what)
	}
	if len(name) > maxNameBytes || !utf8.ValidString(name) || strings.ContainsFunc(name, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		return api.Errorf(api.CallerBadRequest, "%s name %q is not usable: give at most %d bytes of printable UTF-8", what, name, maxNameBytes)
	}
	return nil
}

// actorKey marks a context whose calls act in another agent's memory (params.owner).
type actorKey struct{}

// WithActor returns ctx for calls that agent makes in another agent's memory: the
// operations run as the owner, and each change is recorded with agent as its actor.
func WithActor(ctx context.Context, agent string) context.Context {
	return context.WithValue(ctx, actorKey{}, agent)
}

// recordedActor is who a change is recorded as made by: the agent acting in another's
// memory when ctx says so, else actor.
func recordedActor(ctx context.Context, actor string) string {
	if a, ok := ctx.Value(actorKey{}).(string); ok && a != "" {
		return a
	}
	return actor
}

func (m *Manager) allow(ctx context.Context, actor, op string, n Note) error {
	if m.cfg.Allow == nil {
		return nil
	}
	return m.cfg.Allow(ctx, actor, op, n)
}

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
		return api.Wrap(api.CallerCancelled, err, "memory: %s: cancelled", what)
	}
	return api.Wrap(api.KernelInternal, err, "memory: %s failed", what)
}

func notFound(id string) error {
	return api.Errorf(api.CallerNotFound, "no memory %q visible to this agent; retrieve_memory lists the agent's memories", id)
}

// Scopes: a note lives in its agent's scope or in a block's.
func agentScope(agent string) string { return "a:" + agent }
func blockScope(block string) string { return "b:" + block }

func scopeOf(n Note) string {
	if n.Block != "" {
		return blockScope(n.Block)
	}
	return agentScope(n.Agent)
}
