package access

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/aios-go/aios/api"
	"github.com/aios-go/aios/internal/sqldb"
)

// Entry is one record of the audit log.
type Entry struct {
	Seq      int64             `json:"seq"`
	Time     time.Time         `json:"time"`
	Who      string            `json:"who"`      // "agent:alice", "admin:ops", "local"
	Action   string            `json:"action"`   // an Action, or a mutation such as "agent.add"
	Resource string            `json:"resource"` // "Namespace:bob", "Key:ab12..."
	Decision string            `json:"decision"` // allow, deny, ask, approved, denied, expired, quota, done...
	Details  map[string]string `json:"details,omitempty"`
	PrevHash string            `json:"prev_hash"`
	Hash     string            `json:"hash"`
}

// genesis is the previous hash of the first entry.
var genesis = strings.Repeat("0", 64)

// Audit is the append-only, hash-chained log of every decision, approval and mutation.
// Each entry's hash covers the previous entry's hash and its own canonical bytes, so
// changing, removing or reordering a stored entry breaks the chain from there on, and
// Verify finds where. What a chain cannot show by itself is entries cut off its end:
// keep Head somewhere else (a ticket, another system's log) to catch that.
type Audit struct {
	store *Store
	clock Clock

	// Appends are group-committed: whoever finds no write in progress writes every
	// entry queued meanwhile in one transaction. On SQLite each commit is an fsync, and
	// the gate appends once per syscall, so one commit per syscall would cap the kernel
	// at the disk's fsync rate.
	mu      sync.Mutex
	queue   []*queued
	writing bool
}

type queued struct {
	e    Entry
	done chan error
}

func newAudit(s *Store, c Clock) *Audit { return &Audit{store: s, clock: c} }

// Append records e durably and returns it with its sequence number and hashes. Time is
// set from the clock when zero.
func (a *Audit) Append(ctx context.Context, e Entry) (Entry, error) {
	if e.Time.IsZero() {
		e.Time = a.clock.Now()
	}
	e.Who, e.Action, e.Resource, e.Decision = clean(e.Who), clean(e.Action), clean(e.Resource), clean(e.Decision)
	if len(e.Details) > 0 {
		d := make(map[string]string, len(e.Details))
		for k, v := range e.Details {
			d[clean(k)] = clean(v)
		}
		e.Details = d
	}
	q := &queued{e: e, done: make(chan error, 1)}
	a.mu.Lock()
	a.queue = append(a.queue, q)
	if a.writing {
		a.mu.Unlock()
		if err := <-q.done; err != nil {
			return Entry{}, err
		}
		return q.e, nil
	}
	a.writing = true
	for len(a.queue) > 0 {
		batch := a.queue
		a.queue = nil
		a.mu.Unlock()
		// The batch holds other callers' entries: one caller leaving must not fail them.
		err := a.writeBatch(context.WithoutCancel(ctx), batch)
		for _, b := range batch {
			b.done <- err
		}
		a.mu.Lock()
	}
	a.writing = false
	a.mu.Unlock()
	if err := <-q.done; err != nil {
		return Entry{}, err
	}
	return q.e, nil
}

// writeBatch chains and inserts batch in one transaction. Two kernels sharing a
// PostgreSQL database may both read the same last entry; the second insert then fails
// on the primary key and the batch is chained again on top of the first's.
func (a *Audit) writeBatch(ctx context.Context, batch []*queued) error {
	var err error
	for range 5 {
		err = a.store.write(ctx, func(tx sqldb.Tx) error {
			seq, prev, err := head(ctx, tx)
			if err != nil {
				return err
			}
			for _, b := range batch {
				seq++
				b.e.Seq, b.e.PrevHash = seq, prev
				details := detailsJSON(b.e.Details)
				b.e.Hash = chainHash(prev, canonical(b.e, details))
				if _, err := tx.Exec(ctx, `INSERT INTO access_audit (seq, at, who, action, resource, decision, details, prev_hash, hash)
					VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`, b.e.Seq, b.e.Time.UnixNano(), b.e.Who, b.e.Action,
					b.e.Resource, b.e.Decision, details, b.e.PrevHash, b.e.Hash); err != nil {
					return err
				}
				prev = b.e.Hash
			}
			return nil
		})
		if err == nil {
			return nil
		}
	}
	return internal(err, "append to the audit log")
}

func head(ctx context.Context, q sqldb.Querier) (int64, string, error) {
	var seq int64
	var h string
	err := q.QueryRow(ctx, `SELECT seq, hash FROM access_audit ORDER BY seq DESC LIMIT 1`).Scan(&seq, &h)
	if errors.Is(err, sqldb.ErrNoRows) {
		return 0, genesis, nil
	}
	return seq, h, err
}

// Head returns the last entry's sequence number and hash (0 and the genesis hash for an
// empty log). Recorded elsewhere, it lets Verify's caller notice entries cut off the end.
func (a *Audit) Head(ctx context.Context) (int64, string, error) {
	seq, h, err := head(ctx, a.store.db.Read())
	if err != nil {
		return 0, "", internal(err, "read the audit log")
	}
	return seq, h, nil
}

// canonical is the byte string an entry's hash covers: a JSON array of its fields in a
// fixed order, the details already encoded (with sorted keys). encoding/json writes the
// same bytes for the same values every time, and reading a row back gives those values.
func canonical(e Entry, details string) []byte {
	b, _ := json.Marshal([]any{e.Seq, e.Time.UnixNano(), e.Who, e.Action, e.Resource, e.Decision, details})
	return b
}

func chainHash(prev string, entry []byte) string {
	p, err := hex.DecodeString(prev)
	if err != nil || len(p) != sha256.Size {
		// A damaged previous hash still chains (to its bytes), so the damage shows
		// where it is instead of stopping the log.
		p = []byte(prev)
	}
	h := sha256.New()
	h.Write(p)
	h.Write(entry)
	return hex.EncodeToString(h.Sum(nil))
}

func detailsJSON(d map[string]string) string {
	if len(d) == 0 {
		return "{}"
	}
	b, _ := json.Marshal(d) // map keys are written sorted
	return string(b)
}

// clean makes s storable byte for byte by both backends: PostgreSQL's TEXT takes
// neither NUL nor invalid UTF-8, and a string changed on the way in would not hash the
// same on the way out.
func clean(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	return strings.ReplaceAll(s, "\x00", "\uFFFD")
}

// AuditFilter selects entries; zero fields select everything.
type AuditFilter struct {
	Who      string // "agent:alice"
	Action   string
	Resource string
	Decision string
	Since    time.Time // inclusive
	Until    time.Time // exclusive
	AfterSeq int64     // for paging: entries after this one
	Limit    int       // 100 when 0, at most 1000
	Newest   bool      // newest first (AfterSeq then pages backwards: entries before it)
}

// Query returns the entries f selects, oldest first unless f.Newest.
func (a *Audit) Query(ctx context.Context, f AuditFilter) ([]Entry, error) {
	var where []string
	var args []any
	add := func(cond string, v any) {
		args = append(args, v)
		where = append(where, fmt.Sprintf(cond, len(args)))
	}
	if f.Who != "" {
		add("who = $%d", f.Who)
	}
	if f.Action != "" {
		add("action = $%d", f.Action)
	}
	if f.Resource != "" {
		add("resource = $%d", f.Resource)
	}
	if f.Decision != "" {
		add("decision = $%d", f.Decision)
	}
	if !f.Since.IsZero() {
		add("at >= $%d", f.Since.UnixNano())
	}
	if !f.Until.IsZero() {
		add("at < $%d", f.Until.UnixNano())
	}
	order := "ASC"
	if f.Newest {
		order = "DESC"
		if f.AfterSeq > 0 {
			add("seq < $%d", f.AfterSeq)
		}
	} else if f.AfterSeq > 0 {
		add("seq > $%d", f.AfterSeq)
	}
	limit := f.Limit
	if limit <= 0 {
		limit = 100
	}
	limit = min(limit, 1000)
	q := `SELECT seq, at, who, action, resource, decision, details, prev_hash, hash FROM access_audit`
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	q += fmt.Sprintf(" ORDER BY seq %s LIMIT %d", order, limit)
	rows, err := a.store.db.Read().Query(ctx, q, args...)
	if err != nil {
		return nil, internal(err, "query the audit log")
	}
	defer rows.Close()
	var out []Entry
	for rows.Next() {
		e, _, err := scanEntry(rows)
		if err != nil {
			return nil, internal(err, "query the audit log")
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, internal(err, "query the audit log")
	}
	return out, nil
}

func scanEntry(r sqldb.Row) (Entry, string, error) {
	var e Entry
	var at int64
	var details string
	if err := r.Scan(&e.Seq, &at, &e.Who, &e.Action, &e.Resource, &e.Decision, &details, &e.PrevHash, &e.Hash); err != nil {
		return Entry{}, "", err
	}
	e.Time = time.Unix(0, at)
	if details != "{}" {
		// A damaged details column is Verify's to report; Query shows what it can.
		_ = json.Unmarshal([]byte(details), &e.Details)
	}
	return e, details, nil
}

// ErrTampered marks Verify's finding that the chain is broken.
var ErrTampered = errors.New("the audit log's hash chain is broken")

// Verify walks the whole chain. It returns 0 and nil when every entry is where it
// should be and hashes to what the next one says; otherwise the sequence number of the
// first entry that does not (an entry changed, or the place of one removed) and an
// error wrapping ErrTampered that says what is wrong with it.
func (a *Audit) Verify(ctx context.Context) (int64, error) {
	rows, err := a.store.db.Read().Query(ctx, `SELECT seq, at, who, action, resource, decision, details, prev_hash, hash
		FROM access_audit ORDER BY seq`)
	if err != nil {
		return 0, internal(err, "read the audit log")
	}
	defer rows.Close()
	want, prev := int64(1), genesis
	for rows.Next() {
		e, details, err := scanEntry(rows)
		if err != nil {
			return want, fmt.Errorf("%w: entry %d cannot be read: %v", ErrTampered, want, err)
		}
		switch {
		case e.Seq != want:
			return want, fmt.Errorf("%w: entry %d is missing (the next one is %d)", ErrTampered, want, e.Seq)
		case e.PrevHash != prev:
			return e.Seq, fmt.Errorf("%w: entry %d does not follow entry %d (its previous hash is %.12s…, entry %d's hash is %.12s…)",
				ErrTampered, e.Seq, e.Seq-1, e.PrevHash, e.Seq-1, prev)
		}
		if h := chainHash(prev, canonical(e, details)); h != e.Hash {
			return e.Seq, fmt.Errorf("%w: entry %d was changed after it was written (it hashes to %.12s…, not the %.12s… it records)",
				ErrTampered, e.Seq, h, e.Hash)
		}
		want, prev = want+1, e.Hash
	}
	if err := rows.Err(); err != nil {
		return 0, internal(err, "read the audit log")
	}
	return 0, nil
}

// record appends an entry for a mutation, naming the actor in ctx. A mutation that
// cannot be recorded is reported: it happened, but the log must not pretend otherwise.
func (a *Audit) record(ctx context.Context, action, resource, outcome string, details map[string]string) error {
	_, err := a.Append(ctx, Entry{Who: actor(ctx), Action: action, Resource: resource, Decision: outcome, Details: details})
	if err != nil {
		return api.Wrap(api.KernelInternal, err, "access: %s on %s was done but could not be recorded in the audit log", action, resource)
	}
	return nil
}
