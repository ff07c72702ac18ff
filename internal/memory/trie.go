package memory

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"

	"github.com/aios-go/aios/api"
	"github.com/aios-go/aios/internal/sqldb"
)

// Conversation histories are stored as a prefix trie of messages. A node is one message
// and names its parent; its key hashes the parent's key with the message, so equal
// prefixes (a system prompt every session of an agent starts with, or a history that
// only grew by a turn) have equal keys and are stored once. A session points at its
// last node. Each node counts its references (child nodes and sessions pointing at it);
// a node nobody references is deleted, and its parent loses a reference.

// SaveConversation replaces session's stored history with msgs, committed before it
// returns. Appending turns, the common case, stores only the new messages. An empty
// msgs forgets the session. Session names are global: the caller qualifies them (for
// example by agent).
func (m *Manager) SaveConversation(ctx context.Context, session string, msgs []api.Message) error {
	if err := m.checkName("session", session); err != nil {
		return err
	}
	keys := make([]string, len(msgs))
	bodies := make([]string, len(msgs))
	var logical int64
	parent := ""
	for i, msg := range msgs {
		b, err := json.Marshal(msg)
		if err != nil {
			return api.Wrap(api.CallerBadRequest, err, "message %d of session %q cannot be stored", i, session)
		}
		h := sha256.New()
		h.Write([]byte(parent))
		h.Write([]byte{0})
		h.Write(b)
		keys[i], bodies[i] = hex.EncodeToString(h.Sum(nil)), string(b)
		logical += int64(len(b))
		parent = keys[i]
	}
	m.wmu.Lock()
	defer m.wmu.Unlock()
	t, err := m.db.Begin(ctx)
	if err != nil {
		return internal(err, "save conversation")
	}
	defer t.Rollback()
	if err := saveChain(ctx, t, session, keys, bodies, logical); err != nil {
		return internal(err, "save conversation")
	}
	return internal(m.commit(ctx, t), "save conversation")
}

func saveChain(ctx context.Context, t sqldb.Tx, session string, keys, bodies []string, logical int64) error {
	var old string
	err := t.QueryRow(ctx, `SELECT head FROM mem_conv_sessions WHERE session = $1`, session).Scan(&old)
	if err != nil && !errors.Is(err, sqldb.ErrNoRows) {
		return err
	}
	head := ""
	if len(keys) > 0 {
		head = keys[len(keys)-1]
	}
	if head == old && head != "" {
		return nil
	}
	// Find the longest stored prefix from the end: when a session grows by a turn or
	// two, this is one or two lookups, not one per message.
	have := len(keys)
	for have > 0 {
		var one int64
		err := t.QueryRow(ctx, `SELECT 1 FROM mem_conv_nodes WHERE hash = $1`, keys[have-1]).Scan(&one)
		if err == nil {
			break
		}
		if !errors.Is(err, sqldb.ErrNoRows) {
			return err
		}
		have--
	}
	for i := have; i < len(keys); i++ {
		parent := ""
		if i > 0 {
			parent = keys[i-1]
			if _, err := t.Exec(ctx, `UPDATE mem_conv_nodes SET refs = refs + 1 WHERE hash = $1`, parent); err != nil {
				return err
			}
		}
		if _, err := t.Exec(ctx, `INSERT INTO mem_conv_nodes (hash, parent, msg, size, refs) VALUES ($1, $2, $3, $4, 0)`,
			keys[i], parent, bodies[i], int64(len(bodies[i]))); err != nil {
			return err
		}
	}
	if head != "" {
		if _, err := t.Exec(ctx, `UPDATE mem_conv_nodes SET refs = refs + 1 WHERE hash = $1`, head); err != nil {
			return err
		}
		if _, err := t.Exec(ctx, `INSERT INTO mem_conv_sessions (session, head, n, logical) VALUES ($1, $2, $3, $4)
			ON CONFLICT (session) DO UPDATE SET head = excluded.head, n = excluded.n, logical = excluded.logical`,
			session, head, int64(len(keys)), logical); err != nil {
			return err
		}
	} else if _, err := t.Exec(ctx, `DELETE FROM mem_conv_sessions WHERE session = $1`, session); err != nil {
		return err
	}
	return release(ctx, t, old)
}

// release drops one reference to node key and deletes the nodes left unreferenced,
// walking up the chain.
func release(ctx context.Context, t sqldb.Tx, key string) error {
	for key != "" {
		var refs int64
		var parent string
		err := t.QueryRow(ctx, `UPDATE mem_conv_nodes SET refs = refs - 1 WHERE hash = $1 RETURNING refs, parent`, key).Scan(&refs, &parent)
		if err != nil {
			return err
		}
		if refs > 0 {
			return nil
		}
		if _, err := t.Exec(ctx, `DELETE FROM mem_conv_nodes WHERE hash = $1`, key); err != nil {
			return err
		}
		key = parent
	}
	return nil
}

// Conversation returns session's stored history, oldest message first; empty for a
// session never saved.
func (m *Manager) Conversation(ctx context.Context, session string) ([]api.Message, error) {
	if err := m.checkName("session", session); err != nil {
		return nil, err
	}
	rs, err := m.db.Read().Query(ctx, `WITH RECURSIVE chain (hash, parent, msg, depth) AS (
			SELECT n.hash, n.parent, n.msg, 0 FROM mem_conv_nodes n
				WHERE n.hash = (SELECT head FROM mem_conv_sessions WHERE session = $1)
			UNION ALL
			SELECT n.hash, n.parent, n.msg, c.depth + 1 FROM mem_conv_nodes n JOIN chain c ON n.hash = c.parent
		) SELECT msg FROM chain ORDER BY depth DESC`, session)
	if err != nil {
		return nil, internal(err, "read conversation")
	}
	defer rs.Close()
	var out []api.Message
	for rs.Next() {
		var body string
		if err := rs.Scan(&body); err != nil {
			return nil, internal(err, "read conversation")
		}
		var msg api.Message
		if err := json.Unmarshal([]byte(body), &msg); err != nil {
			return nil, internal(err, "read conversation")
		}
		out = append(out, msg)
	}
	return out, internal(rs.Err(), "read conversation")
}

// Stats reports the RAM manager, the note count and the trie's compression.
func (m *Manager) Stats(ctx context.Context) (Stats, error) {
	var s Stats
	if err := m.live(); err != nil {
		return s, err
	}
	s.HotNotes, s.HotBytes, s.Evictions, s.Faults = m.hot.stats()
	s.Budget = m.cfg.HotBytes
	s.IndexBytes = m.vecs.bytes()
	q := m.db.Read()
	if err := q.QueryRow(ctx, `SELECT COUNT(*) FROM mem_notes`).Scan(&s.Notes); err != nil {
		return s, internal(err, "count notes")
	}
	if err := q.QueryRow(ctx, `SELECT CAST(COALESCE(SUM(logical), 0) AS BIGINT) FROM mem_conv_sessions`).Scan(&s.TrieLogicalBytes); err != nil {
		return s, internal(err, "measure conversations")
	}
	if err := q.QueryRow(ctx, `SELECT CAST(COALESCE(SUM(size), 0) AS BIGINT) FROM mem_conv_nodes`).Scan(&s.TrieStoredBytes); err != nil {
		return s, internal(err, "measure conversations")
	}
	s.CompressionRatio = 1
	if s.TrieStoredBytes > 0 {
		s.CompressionRatio = float64(s.TrieLogicalBytes) / float64(s.TrieStoredBytes)
	}
	return s, nil
}
