package memory

import (
	"context"
	"errors"
	"slices"
	"time"

	"github.com/aios-go/aios/api"
	"github.com/aios-go/aios/internal/sqldb"
)

// Add stores a note and returns it with its id and times. n.Agent owns it and defaults
// to actor; an agent writes only its own notes, or notes in a block it is attached to
// (n.Block). n.Created, when set, is kept (imports of older memories); otherwise both
// times are now. The note is committed before Add returns.
func (m *Manager) Add(ctx context.Context, actor string, n Note) (Note, error) {
	out, err := m.AddBatch(ctx, actor, []Note{n})
	if err != nil {
		return Note{}, err
	}
	return out[0], nil
}

// AddBatch stores notes in one transaction: all or none. Imports and bulk loads use it
// because each commit waits for the disk.
func (m *Manager) AddBatch(ctx context.Context, actor string, notes []Note) ([]Note, error) {
	if err := m.checkName("agent", actor); err != nil {
		return nil, err
	}
	now := m.now().UTC()
	hns := make([]*hotNote, len(notes))
	for i, n := range notes {
		if n.Agent == "" {
			n.Agent = actor
		}
		if err := m.checkWrite(ctx, actor, &n); err != nil {
			return nil, err
		}
		if err := m.allow(ctx, actor, OpAdd, n); err != nil {
			return nil, err
		}
		n.ID, n.Retrievals, n.Links = newID(), 0, cleanList(n.Links)
		if n.Created.IsZero() {
			n.Created = now
		}
		n.Created = n.Created.UTC()
		if n.Updated.IsZero() {
			n.Updated = n.Created
		}
		n.Updated = n.Updated.UTC()
		hns[i] = &hotNote{scope: scopeOf(n), note: n}
	}
	m.embedNotes(ctx, hns)

	m.wmu.Lock()
	defer m.wmu.Unlock()
	t, err := m.db.Begin(ctx)
	if err != nil {
		return nil, internal(err, "add")
	}
	defer t.Rollback()
	for _, hn := range hns {
		if err := m.insert(ctx, t, hn); err != nil {
			return nil, internal(err, "add")
		}
		if err := m.record(ctx, t, actor, "add", hn.scope, hn.note.ID, &hn.note); err != nil {
			return nil, internal(err, "add")
		}
	}
	if err := m.commit(ctx, t); err != nil {
		return nil, internal(err, "add")
	}
	out := make([]Note, len(hns))
	for i, hn := range hns {
		m.vecs.scope(hn.scope).set(hn.rid, hn.note.Updated.UnixNano(), hn.codeIf(m.emb.Name()))
		m.hot.put(hn, false)
		out[i] = clone(hn.note)
	}
	return out, nil
}

// checkWrite normalises n and applies the scoping rules for writing it.
func (m *Manager) checkWrite(ctx context.Context, actor string, n *Note) error {
	if n.Agent != actor {
		return api.Errorf(api.PolicyDenied, "agent %q cannot write memories for agent %q; an agent writes its own memories or those of a block it is attached to", actor, n.Agent)
	}
	if n.Content == "" {
		return api.Errorf(api.CallerBadRequest, "a memory needs content; give the text to remember")
	}
	if len(n.Content) > maxContentBytes {
		return api.Errorf(api.CallerTooLarge, "memory content is %d bytes, more than the %d allowed; store large documents with the storage manager and remember a summary", len(n.Content), maxContentBytes)
	}
	n.Keywords, n.Tags = cleanList(n.Keywords), cleanList(n.Tags)
	if n.Block != "" {
		return m.checkAttached(ctx, actor, n.Block)
	}
	return nil
}

// embedNotes fills in vectors before any transaction opens: the embedder may be a remote
// model, and a write must not hold the database while it answers. A note whose
// embedding fails is stored without one: found by keywords, not by vector.
func (m *Manager) embedNotes(ctx context.Context, hns []*hotNote) {
	const batch = 256
	name := m.emb.Name()
	for lo := 0; lo < len(hns); lo += batch {
		part := hns[lo:min(lo+batch, len(hns))]
		texts := make([]string, len(part))
		for i, hn := range part {
			texts[i] = searchText(hn.note)
		}
		vs, err := m.emb.Embed(ctx, texts)
		if err != nil || len(vs) != len(part) {
			m.log.Warn("embedding failed; the memories are searchable by keywords only", "err", err, "notes", len(part))
			for _, hn := range part {
				hn.vec, hn.embedder, hn.code = nil, "", nil
			}
			continue
		}
		for i, hn := range part {
			hn.vec, hn.embedder, hn.code = vs[i], name, simHash(vs[i])
		}
	}
}

// codeIf is the note's code if its vector is in the space named embedder.
func (hn *hotNote) codeIf(embedder string) []uint64 {
	if hn.embedder != embedder || len(hn.vec) == 0 {
		return nil
	}
	return hn.code
}

// vecBytes is the stored form of the note's vector and code (nil when it has none).
func (hn *hotNote) vecBytes() (vec, code []byte) {
	if hn.vec == nil {
		return nil, nil
	}
	return encodeVec(hn.vec), encodeCode(hn.code)
}

func (m *Manager) insert(ctx context.Context, t sqldb.Tx, hn *hotNote) error {
	n := hn.note
	vec, code := hn.vecBytes()
	err := t.QueryRow(ctx, `INSERT INTO mem_notes (id, scope, agent, block, content, keywords, tags, category, context,
		links, metadata, created, updated, retrievals, pinned, embedder, vec, code)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, 0, $14, $15, $16, $17) RETURNING rid`,
		n.ID, hn.scope, n.Agent, n.Block, n.Content, jsonText(n.Keywords), jsonText(n.Tags), n.Category, n.Context,
		jsonText(n.Links), jsonText(n.Metadata), n.Created.UnixNano(), n.Updated.UnixNano(), boolInt(n.Pinned),
		hn.embedder, vec, code).Scan(&hn.rid)
	if err != nil {
		return err
	}
	if err := m.putTags(ctx, t, hn.rid, n.Tags); err != nil {
		return err
	}
	return m.fts.put(ctx, t, hn.rid, hn.scope, searchText(n))
}

func (m *Manager) putTags(ctx context.Context, t sqldb.Tx, rid int64, tags []string) error {
	if _, err := t.Exec(ctx, `DELETE FROM mem_tags WHERE rid = $1`, rid); err != nil {
		return err
	}
	for _, tag := range tags {
		if _, err := t.Exec(ctx, `INSERT INTO mem_tags (tag, rid) VALUES ($1, $2)`, tag, rid); err != nil {
			return err
		}
	}
	return nil
}

// commit writes pending retrieval counts in the same transaction, then commits.
func (m *Manager) commit(ctx context.Context, t sqldb.Tx) error {
	if err := m.retrievals.write(ctx, t); err != nil {
		m.retrievals.restore()
		return err
	}
	if err := t.Commit(); err != nil {
		m.retrievals.restore()
		return err
	}
	m.retrievals.done()
	return nil
}

func boolInt(b bool) int64 {
	if b {
		return 1
	}
	return 0
}

// Get returns a note the actor may see, counting an access for the RAM manager (a note
// not in RAM is faulted in from the database).
func (m *Manager) Get(ctx context.Context, actor, id string) (Note, error) {
	hn, err := m.visible(ctx, actor, id)
	if err != nil {
		return Note{}, err
	}
	if err := m.allow(ctx, actor, OpGet, hn.note); err != nil {
		return Note{}, err
	}
	return clone(hn.note), nil
}

// visible finds note id in RAM or the database and checks that actor may see it. A note
// the actor may not see is reported missing, so ids of others' notes reveal nothing.
func (m *Manager) visible(ctx context.Context, actor, id string) (*hotNote, error) {
	if err := m.checkName("agent", actor); err != nil {
		return nil, err
	}
	if id == "" {
		return nil, api.Errorf(api.CallerBadRequest, "no memory_id given; add_memory returns one")
	}
	hn, ok := m.hot.get(id)
	if !ok {
		var err error
		hn, err = m.loadByID(ctx, m.db.Read(), id)
		if errors.Is(err, sqldb.ErrNoRows) {
			return nil, notFound(id)
		}
		if err != nil {
			return nil, internal(err, "get")
		}
		m.hot.put(hn, true)
	}
	scopes, err := m.scopes(ctx, actor)
	if err != nil {
		return nil, err
	}
	if !slices.Contains(scopes, hn.scope) {
		return nil, notFound(id)
	}
	return hn, nil
}

// Update applies p to a note the actor may see and returns the result.
func (m *Manager) Update(ctx context.Context, actor, id string, p Patch) (Note, error) {
	return m.update(ctx, actor, id, "update", p)
}

// Pin marks a note so the RAM manager never evicts it (or clears the mark).
func (m *Manager) Pin(ctx context.Context, actor, id string, pinned bool) error {
	_, err := m.update(ctx, actor, id, "pin", Patch{Pinned: &pinned})
	return err
}

func (m *Manager) update(ctx context.Context, actor, id, op string, p Patch) (Note, error) {
	// Embedding happens outside the write lock; if the note changed meanwhile the patch
	// is applied again to the newer version, so no concurrent update is lost.
	for attempt := 0; ; attempt++ {
		cur, err := m.visible(ctx, actor, id)
		if err != nil {
			return Note{}, err
		}
		allowOp := OpUpdate
		if op == "pin" {
			allowOp = OpPin
		}
		if err := m.allow(ctx, actor, allowOp, cur.note); err != nil {
			return Note{}, err
		}
		next, textChanged, err := apply(cur.note, p)
		if err != nil {
			return Note{}, err
		}
		next.Updated = m.now().UTC()
		hn := &hotNote{rid: cur.rid, scope: cur.scope, note: next, vec: cur.vec, code: cur.code, embedder: cur.embedder}
		if textChanged {
			m.embedNotes(ctx, []*hotNote{hn})
		}
		done, err := m.writeUpdate(ctx, actor, op, cur, hn, attempt >= 3)
		if done || err != nil {
			if err != nil {
				return Note{}, err
			}
			return clone(hn.note), nil
		}
	}
}

// writeUpdate commits hn over cur unless the stored note is no longer cur (then it
// reports not done, and the caller retries), or force is set.
func (m *Manager) writeUpdate(ctx context.Context, actor, op string, cur, hn *hotNote, force bool) (bool, error) {
	m.wmu.Lock()
	defer m.wmu.Unlock()
	t, err := m.db.Begin(ctx)
	if err != nil {
		return false, internal(err, op)
	}
	defer t.Rollback()
	var updated int64
	err = t.QueryRow(ctx, `SELECT updated FROM mem_notes WHERE rid = $1`, cur.rid).Scan(&updated)
	if errors.Is(err, sqldb.ErrNoRows) {
		return false, notFound(cur.note.ID)
	}
	if err != nil {
		return false, internal(err, op)
	}
	if updated != cur.note.Updated.UnixNano() && !force {
		return false, nil
	}
	n := hn.note
	vec, code := hn.vecBytes()
	_, err = t.Exec(ctx, `UPDATE mem_notes SET content = $2, keywords = $3, tags = $4, category = $5, context = $6,
		links = $7, metadata = $8, updated = $9, pinned = $10, embedder = $11, vec = $12, code = $13 WHERE rid = $1`,
		hn.rid, n.Content, jsonText(n.Keywords), jsonText(n.Tags), n.Category, n.Context, jsonText(n.Links),
		jsonText(n.Metadata), n.Updated.UnixNano(), boolInt(n.Pinned), hn.embedder, vec, code)
	if err == nil {
		err = m.putTags(ctx, t, hn.rid, n.Tags)
	}
	if err == nil {
		err = m.fts.put(ctx, t, hn.rid, hn.scope, searchText(n))
	}
	if err == nil {
		err = m.record(ctx, t, actor, op, hn.scope, n.ID, &n)
	}
	if err == nil {
		err = m.commit(ctx, t)
	}
	if err != nil {
		return false, internal(err, op)
	}
	m.vecs.scope(hn.scope).set(hn.rid, n.Updated.UnixNano(), hn.codeIf(m.emb.Name()))
	m.hot.put(hn, false)
	return true, nil
}

// apply returns n with p applied and whether its searchable text changed.
func apply(n Note, p Patch) (Note, bool, error) {
	n = clone(n)
	before := searchText(n)
	if p.Content != nil {
		if *p.Content == "" {
			return n, false, api.Errorf(api.CallerBadRequest, "memory content cannot be empty; remove the memory instead, or send content: null to keep it")
		}
		if len(*p.Content) > maxContentBytes {
			return n, false, api.Errorf(api.CallerTooLarge, "memory content is %d bytes, more than the %d allowed", len(*p.Content), maxContentBytes)
		}
		n.Content = *p.Content
	}
	if p.Keywords != nil {
		n.Keywords = cleanList(*p.Keywords)
	}
	if p.Tags != nil {
		n.Tags = cleanList(*p.Tags)
	}
	if p.Category != nil {
		n.Category = *p.Category
	}
	if p.Context != nil {
		n.Context = *p.Context
	}
	if p.Links != nil {
		n.Links = cleanList(*p.Links)
	}
	if p.Metadata != nil {
		n.Metadata = *p.Metadata
	}
	if p.Pinned != nil {
		n.Pinned = *p.Pinned
	}
	return n, searchText(n) != before, nil
}

// Remove deletes a note the actor may see. Its history stays readable.
func (m *Manager) Remove(ctx context.Context, actor, id string) error {
	cur, err := m.visible(ctx, actor, id)
	if err != nil {
		return err
	}
	if err := m.allow(ctx, actor, OpRemove, cur.note); err != nil {
		return err
	}
	m.wmu.Lock()
	defer m.wmu.Unlock()
	t, err := m.db.Begin(ctx)
	if err != nil {
		return internal(err, "remove")
	}
	defer t.Rollback()
	n, err := t.Exec(ctx, `DELETE FROM mem_notes WHERE rid = $1`, cur.rid)
	if err != nil {
		return internal(err, "remove")
	}
	if n == 0 {
		return notFound(id)
	}
	if _, err := t.Exec(ctx, `DELETE FROM mem_tags WHERE rid = $1`, cur.rid); err != nil {
		return internal(err, "remove")
	}
	if err := m.fts.drop(ctx, t, cur.rid); err != nil {
		return internal(err, "remove")
	}
	if err := m.record(ctx, t, actor, "remove", cur.scope, id, nil); err != nil {
		return internal(err, "remove")
	}
	m.retrievals.forget(cur.rid)
	if err := m.commit(ctx, t); err != nil {
		return internal(err, "remove")
	}
	m.vecs.scope(cur.scope).drop(cur.rid)
	m.hot.remove(cur.rid)
	return nil
}

// record appends one change to the note's history inside t.
func (m *Manager) record(ctx context.Context, t sqldb.Tx, actor, op, scope, id string, after *Note) error {
	a := ""
	if after != nil {
		a = jsonText(after)
	}
	_, err := t.Exec(ctx, `INSERT INTO mem_changes (id, scope, actor, at, op, after) VALUES ($1, $2, $3, $4, $5, $6)`,
		id, scope, recordedActor(ctx, actor), m.now().UnixNano(), op, a)
	return err
}

// History returns every change to a note the actor may see (or could see, for a removed
// note), oldest first, each with the note before and after it.
func (m *Manager) History(ctx context.Context, actor, id string) ([]Change, error) {
	if err := m.checkName("agent", actor); err != nil {
		return nil, err
	}
	rs, err := m.db.Read().Query(ctx, `SELECT seq, scope, actor, at, op, after FROM mem_changes WHERE id = $1 ORDER BY seq`, id)
	if err != nil {
		return nil, internal(err, "history")
	}
	defer rs.Close()
	var out []Change
	var scope string
	var prev *Note
	for rs.Next() {
		var c Change
		var at int64
		var after string
		if err := rs.Scan(&c.Seq, &scope, &c.Actor, &at, &c.Op, &after); err != nil {
			return nil, internal(err, "history")
		}
		c.Time = time.Unix(0, at).UTC()
		c.Before = prev
		if after != "" {
			var n Note
			if err := jsonUnmarshal(after, &n); err != nil {
				return nil, internal(err, "history")
			}
			c.After = &n
		}
		prev = c.After
		out = append(out, c)
	}
	if err := rs.Err(); err != nil {
		return nil, internal(err, "history")
	}
	if len(out) == 0 {
		return nil, notFound(id)
	}
	scopes, err := m.scopes(ctx, actor)
	if err != nil {
		return nil, err
	}
	if !slices.Contains(scopes, scope) {
		return nil, notFound(id)
	}
	last := out[len(out)-1]
	subject := last.After
	if subject == nil {
		subject = last.Before
	}
	if subject != nil {
		if err := m.allow(ctx, actor, OpHistory, *subject); err != nil {
			return nil, err
		}
	}
	return out, nil
}
