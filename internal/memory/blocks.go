package memory

import (
	"context"
	"errors"
	"sync"

	"github.com/aios-go/aios/api"
	"github.com/aios-go/aios/internal/sqldb"
)

// blockCache holds which blocks each agent is attached to, read from the database on
// the agent's first call: every memory call needs the actor's scopes.
type blockCache struct {
	mu       sync.Mutex
	attached map[string][]string // agent -> blocks
	// gen counts attachment changes, so a read that raced with one is not cached.
	gen uint64
}

func (b *blockCache) init() { b.attached = map[string][]string{} }

// scopes are the scopes actor reads and writes: its own and its blocks'.
func (m *Manager) scopes(ctx context.Context, actor string) ([]string, error) {
	blocks, err := m.attachedBlocks(ctx, actor)
	if err != nil {
		return nil, err
	}
	out := make([]string, 0, 1+len(blocks))
	out = append(out, agentScope(actor))
	for _, b := range blocks {
		out = append(out, blockScope(b))
	}
	return out, nil
}

func (m *Manager) attachedBlocks(ctx context.Context, agent string) ([]string, error) {
	c := &m.blocks
	c.mu.Lock()
	blocks, ok := c.attached[agent]
	gen := c.gen
	c.mu.Unlock()
	if ok {
		return blocks, nil
	}
	rs, err := m.db.Read().Query(ctx, `SELECT block FROM mem_attach WHERE agent = $1 ORDER BY block`, agent)
	if err != nil {
		return nil, internal(err, "read attached blocks")
	}
	defer rs.Close()
	blocks = []string{}
	for rs.Next() {
		var b string
		if err := rs.Scan(&b); err != nil {
			return nil, internal(err, "read attached blocks")
		}
		blocks = append(blocks, b)
	}
	if err := rs.Err(); err != nil {
		return nil, internal(err, "read attached blocks")
	}
	c.mu.Lock()
	if c.gen == gen {
		c.attached[agent] = blocks
	}
	c.mu.Unlock()
	return blocks, nil
}

func (m *Manager) checkAttached(ctx context.Context, agent, block string) error {
	blocks, err := m.attachedBlocks(ctx, agent)
	if err != nil {
		return err
	}
	for _, b := range blocks {
		if b == block {
			return nil
		}
	}
	return api.Errorf(api.PolicyDenied, "agent %q is not attached to memory block %q; attach it first", agent, block)
}

// CreateBlock creates a shared block owned by owner, who is attached to it. Block names
// are global: two agents cannot own blocks of the same name.
func (m *Manager) CreateBlock(ctx context.Context, owner, name string) (Block, error) {
	if err := m.checkName("agent", owner); err != nil {
		return Block{}, err
	}
	if err := m.checkName("block", name); err != nil {
		return Block{}, err
	}
	if err := m.allow(ctx, owner, OpCreateBlock, Note{Agent: owner, Block: name}); err != nil {
		return Block{}, err
	}
	b := Block{Name: name, Owner: owner, Created: m.now().UTC()}
	m.wmu.Lock()
	defer m.wmu.Unlock()
	t, err := m.db.Begin(ctx)
	if err != nil {
		return Block{}, internal(err, "create block")
	}
	defer t.Rollback()
	n, err := t.Exec(ctx, `INSERT INTO mem_blocks (name, owner, created) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING`,
		name, owner, b.Created.UnixNano())
	if err != nil {
		return Block{}, internal(err, "create block")
	}
	if n == 0 {
		return Block{}, api.Errorf(api.CallerBadRequest, "memory block %q already exists; attach to it, or choose another name", name)
	}
	if err := m.attachTx(ctx, t, owner, name, true); err != nil {
		return Block{}, err
	}
	return b, nil
}

// AttachBlock lets agent read and write the notes of block.
func (m *Manager) AttachBlock(ctx context.Context, agent, block string) error {
	return m.setAttached(ctx, agent, block, true)
}

// DetachBlock ends agent's access to block. Its owner cannot detach: the block would be
// left with nobody answerable for it.
func (m *Manager) DetachBlock(ctx context.Context, agent, block string) error {
	return m.setAttached(ctx, agent, block, false)
}

func (m *Manager) setAttached(ctx context.Context, agent, block string, on bool) error {
	if err := m.checkName("agent", agent); err != nil {
		return err
	}
	if err := m.checkName("block", block); err != nil {
		return err
	}
	op := OpAttach
	if !on {
		op = OpDetach
	}
	var owner string
	err := m.db.Read().QueryRow(ctx, `SELECT owner FROM mem_blocks WHERE name = $1`, block).Scan(&owner)
	if err != nil {
		if errors.Is(err, sqldb.ErrNoRows) {
			return api.Errorf(api.CallerNotFound, "no memory block %q; create it first", block)
		}
		return internal(err, op)
	}
	if !on && owner == agent {
		return api.Errorf(api.CallerBadRequest, "agent %q owns memory block %q and cannot detach from it", agent, block)
	}
	if err := m.allow(ctx, agent, op, Note{Agent: owner, Block: block}); err != nil {
		return err
	}
	m.wmu.Lock()
	defer m.wmu.Unlock()
	t, err := m.db.Begin(ctx)
	if err != nil {
		return internal(err, op)
	}
	defer t.Rollback()
	return m.attachTx(ctx, t, agent, block, on)
}

// attachTx records the attachment, commits t, and updates the cache.
func (m *Manager) attachTx(ctx context.Context, t sqldb.Tx, agent, block string, on bool) error {
	q := `INSERT INTO mem_attach (agent, block) VALUES ($1, $2) ON CONFLICT DO NOTHING`
	if !on {
		q = `DELETE FROM mem_attach WHERE agent = $1 AND block = $2`
	}
	if _, err := t.Exec(ctx, q, agent, block); err != nil {
		return internal(err, "attach")
	}
	if err := t.Commit(); err != nil {
		return internal(err, "attach")
	}
	m.blocks.mu.Lock()
	delete(m.blocks.attached, agent) // reread on next use: simpler than editing the list
	m.blocks.gen++
	m.blocks.mu.Unlock()
	return nil
}
