package memory

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/aios-go/aios/internal/sqldb"
)

// noteCols is every column a note is read with, in scanNote's order.
const noteCols = `rid, id, scope, agent, block, content, keywords, tags, category, context, links, metadata,
	created, updated, retrievals, pinned, embedder, vec, code`

func scanNote(r sqldb.Row) (*hotNote, error) {
	var hn hotNote
	var kw, tags, links, meta, embedder string
	var created, updated, retrievals, pinned int64
	var raw, code []byte
	n := &hn.note
	err := r.Scan(&hn.rid, &n.ID, &hn.scope, &n.Agent, &n.Block, &n.Content, &kw, &tags, &n.Category, &n.Context,
		&links, &meta, &created, &updated, &retrievals, &pinned, &embedder, &raw, &code)
	if err != nil {
		return nil, err
	}
	json.Unmarshal([]byte(kw), &n.Keywords)
	json.Unmarshal([]byte(tags), &n.Tags)
	json.Unmarshal([]byte(links), &n.Links)
	json.Unmarshal([]byte(meta), &n.Metadata)
	n.Created, n.Updated = time.Unix(0, created).UTC(), time.Unix(0, updated).UTC()
	n.Retrievals, n.Pinned = int(retrievals), pinned != 0
	if len(raw) > 0 {
		hn.vec, hn.code = decodeVec(raw), decodeCode(code)
	}
	hn.embedder = embedder
	return &hn, nil
}

func jsonText(v any) string {
	b, _ := json.Marshal(v) // lists of strings and JSON-decoded metadata always encode
	return string(b)
}

func newID() string {
	b := make([]byte, 16)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// searchText is what a note is found by, in both the keyword index and its embedding:
// A-MEM embeds the content with its context, keywords and tags for the same reason,
// since the extracted metadata names what the content only implies.
func searchText(n Note) string {
	var b strings.Builder
	b.WriteString(n.Content)
	for _, s := range []string{n.Context, strings.Join(n.Keywords, " "), strings.Join(n.Tags, " "), n.Category} {
		if s != "" {
			b.WriteString("\n")
			b.WriteString(s)
		}
	}
	return b.String()
}

// cleanList trims, drops empty and duplicate entries, keeping first-seen order.
func cleanList(l []string) []string {
	var out []string
	for _, s := range l {
		s = strings.TrimSpace(s)
		if s != "" && !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}

// clone copies n's slices and map, so callers cannot change the hot set's copy.
func clone(n Note) Note {
	n.Keywords, n.Tags, n.Links = slices.Clone(n.Keywords), slices.Clone(n.Tags), slices.Clone(n.Links)
	n.Metadata = maps.Clone(n.Metadata)
	return n
}

// loadByID reads a note from the database.
func (m *Manager) loadByID(ctx context.Context, q sqldb.Querier, id string) (*hotNote, error) {
	hn, err := scanNote(q.QueryRow(ctx, `SELECT `+noteCols+` FROM mem_notes WHERE id = $1`, id))
	if err != nil {
		return nil, err
	}
	hn.note.Retrievals += m.retrievals.pendingFor(hn.rid)
	return hn, nil
}

// loadRIDs reads the notes rids name, in no particular order.
func (m *Manager) loadRIDs(ctx context.Context, rids []int64) ([]*hotNote, error) {
	var out []*hotNote
	for len(rids) > 0 {
		// SQLite binds at most 32766 parameters; batches also keep statements short.
		chunk := rids[:min(len(rids), 500)]
		rids = rids[len(chunk):]
		ph := make([]string, len(chunk))
		args := make([]any, len(chunk))
		for i, r := range chunk {
			ph[i], args[i] = "$"+strconv.Itoa(i+1), r
		}
		rs, err := m.db.Read().Query(ctx, `SELECT `+noteCols+` FROM mem_notes WHERE rid IN (`+strings.Join(ph, ",")+`)`, args...)
		if err != nil {
			return nil, err
		}
		for rs.Next() {
			hn, err := scanNote(rs)
			if err != nil {
				rs.Close()
				return nil, err
			}
			hn.note.Retrievals += m.retrievals.pendingFor(hn.rid)
			out = append(out, hn)
		}
		err = rs.Err()
		rs.Close()
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

func jsonUnmarshal(s string, v any) error { return json.Unmarshal([]byte(s), v) }
