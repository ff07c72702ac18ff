package access

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"math/big"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/aios-go/aios/api"
	"github.com/aios-go/aios/internal/sqldb"
)

// A key reads aios_<kind>_<id>_<secret>: kind is agent or admin, so the two can never
// be confused; id (16 hex digits) names the key in lists, the audit log and the
// database, and is not secret; secret is 32 bytes from crypto/rand in base62 (43
// characters). The key is shown once, when it is issued; the database keeps only its
// SHA-256.
//
// Why SHA-256 and not bcrypt or argon2: slow hashes exist to protect passwords people
// choose, which can be guessed. A key has 256 bits of entropy, so even a stolen table
// of hashes cannot be reversed by trying keys, and a fast hash keeps authentication,
// which every request pays, at microseconds.
const (
	keyPrefix   = "aios_"
	keyIDLen    = 16
	keySecretSz = 32
	keySecretLn = 43 // base62 digits of 2^256
)

const base62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// KeyInfo describes a key; the key itself is never stored.
type KeyInfo struct {
	ID      string    `json:"id"`
	Kind    Kind      `json:"kind"`
	Owner   string    `json:"owner"` // the agent, or the admin's name
	Created time.Time `json:"created"`
	// Revoked is when the key stops (or stopped) working; zero while it has no end. A
	// rotated key's Revoked is the end of its grace period.
	Revoked    time.Time `json:"revoked,omitzero"`
	LastUsed   time.Time `json:"last_used,omitzero"`
	ReplacedBy string    `json:"replaced_by,omitempty"`
}

// Active reports whether the key works at t.
func (k KeyInfo) Active(t time.Time) bool { return k.Revoked.IsZero() || t.Before(k.Revoked) }

type keyRow struct {
	KeyInfo
	hash string
}

// Keys issues, rotates and revokes API keys, and authenticates requests by them.
type Keys struct {
	store *Store
	dir   *Directory
	audit *Audit
	clock Clock
	ttl   time.Duration

	// Rows of keys seen recently, so that authentication, which every request does,
	// reads the database once per ttl per key. Revoking through this Keys takes effect
	// at once; through another kernel sharing the database, within ttl.
	mu    sync.Mutex
	cache map[string]cachedKey
}

type cachedKey struct {
	row keyRow
	at  time.Time
}

// lastUsedEvery bounds how often a key's last use is written: once a minute is precise
// enough to tell a live key from a forgotten one, and keeps a write off most requests.
const lastUsedEvery = time.Minute

func newKeys(s *Store, d *Directory, a *Audit, c Clock, ttl time.Duration) *Keys {
	return &Keys{store: s, dir: d, audit: a, clock: c, ttl: ttl, cache: map[string]cachedKey{}}
}

// Issue creates a key for an agent (which must be registered) or an admin, and returns
// it: this is the only time the key is visible.
func (k *Keys) Issue(ctx context.Context, kind Kind, owner string) (string, KeyInfo, error) {
	return k.issue(ctx, kind, owner, nil, nil)
}

// issue is Issue with more for the audit entry's details, and also, when set, run in the
// transaction that stores the key.
func (k *Keys) issue(ctx context.Context, kind Kind, owner string, details map[string]string, also func(sqldb.Tx, KeyInfo) error) (string, KeyInfo, error) {
	if err := k.checkOwner(ctx, kind, owner); err != nil {
		return "", KeyInfo{}, err
	}
	key, info, err := k.insert(ctx, kind, owner, "", time.Time{}, also)
	if err != nil {
		return "", KeyInfo{}, err
	}
	d := map[string]string{"owner": string(kind) + ":" + owner}
	for n, v := range details {
		d[n] = v
	}
	return key, info, k.audit.record(ctx, "key.issue", "Key:"+info.ID, "done", d)
}

func (k *Keys) checkOwner(ctx context.Context, kind Kind, owner string) error {
	switch kind {
	case KindAgent:
		if _, found, err := k.dir.lookup(ctx, owner); err != nil {
			return err
		} else if !found {
			return api.Errorf(api.CallerNotFound, "access: no agent %s is registered; add it before issuing it a key", owner)
		}
	case KindAdmin:
		if err := checkName("admin", owner, false); err != nil {
			return api.Wrap(api.CallerBadRequest, err, "access")
		}
	default:
		return api.Errorf(api.CallerBadRequest, "access: a key is for an agent or an admin, not %q", kind)
	}
	return nil
}

// insert stores a new key; old, when set, is the key it replaces, revoked at oldEnd in
// the same transaction, and also, when set, runs in that transaction too.
func (k *Keys) insert(ctx context.Context, kind Kind, owner, old string, oldEnd time.Time, also func(sqldb.Tx, KeyInfo) error) (string, KeyInfo, error) {
	id, secret := make([]byte, keyIDLen/2), make([]byte, keySecretSz)
	if _, err := rand.Read(id); err != nil {
		return "", KeyInfo{}, internal(err, "draw a key")
	}
	if _, err := rand.Read(secret); err != nil {
		return "", KeyInfo{}, internal(err, "draw a key")
	}
	info := KeyInfo{ID: hex.EncodeToString(id), Kind: kind, Owner: owner, Created: k.clock.Now()}
	key := keyPrefix + string(kind) + "_" + info.ID + "_" + encode62(secret)
	err := k.store.write(ctx, func(tx sqldb.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO access_keys (id, kind, owner, hash, created) VALUES ($1, $2, $3, $4, $5)`,
			info.ID, string(kind), owner, hashKey(key), info.Created.UnixNano()); err != nil {
			return err
		}
		if old != "" {
			if _, err := tx.Exec(ctx, `UPDATE access_keys SET revoked = $2, replaced_by = $3 WHERE id = $1`, old, oldEnd.UnixNano(), info.ID); err != nil {
				return err
			}
		}
		if also != nil {
			return also(tx, info)
		}
		return nil
	})
	if err != nil {
		return "", KeyInfo{}, internal(err, "store a key")
	}
	return key, info, nil
}

func encode62(b []byte) string {
	n := new(big.Int).SetBytes(b)
	out := make([]byte, keySecretLn)
	base, mod := big.NewInt(62), new(big.Int)
	for i := keySecretLn - 1; i >= 0; i-- {
		n.DivMod(n, base, mod)
		out[i] = base62[mod.Int64()]
	}
	return string(out)
}

func hashKey(key string) string {
	h := sha256.Sum256([]byte(key))
	return hex.EncodeToString(h[:])
}

// Rotate issues a new key for the owner of key id and revokes id after grace (at once
// when grace is 0), so clients can switch over without a gap. The new key is returned
// once, as by Issue.
func (k *Keys) Rotate(ctx context.Context, id string, grace time.Duration) (string, KeyInfo, error) {
	old, err := k.row(ctx, id)
	if err != nil {
		return "", KeyInfo{}, err
	}
	now := k.clock.Now()
	if !old.Active(now) {
		return "", KeyInfo{}, api.Errorf(api.CallerBadRequest, "access: key %s is revoked; issue a new key instead of rotating it", id)
	}
	end := now.Add(max(0, grace))
	if !old.Revoked.IsZero() && old.Revoked.Before(end) {
		end = old.Revoked // rotating twice never lengthens the old key's life
	}
	key, info, err := k.insert(ctx, old.Kind, old.Owner, id, end, nil)
	if err != nil {
		return "", KeyInfo{}, err
	}
	k.forget(id)
	return key, info, k.audit.record(ctx, "key.rotate", "Key:"+id, "done",
		map[string]string{"new_key": info.ID, "old_key_ends": end.UTC().Format(time.RFC3339Nano)})
}

// Revoke ends key id now.
func (k *Keys) Revoke(ctx context.Context, id string) error {
	now := k.clock.Now()
	var n int64
	err := k.store.write(ctx, func(tx sqldb.Tx) error {
		var err error
		n, err = tx.Exec(ctx, `UPDATE access_keys SET revoked = $2 WHERE id = $1 AND (revoked = 0 OR revoked > $2)`, id, now.UnixNano())
		return err
	})
	if err != nil {
		return internal(err, "revoke key %s", id)
	}
	k.forget(id)
	if n == 0 {
		if _, err := k.row(ctx, id); err != nil {
			return err
		}
		return nil // revoked already
	}
	return k.audit.record(ctx, "key.revoke", "Key:"+id, "done", nil)
}

// List returns the keys of an owner (of both kinds when kind is ""), or every key when
// owner is "".
func (k *Keys) List(ctx context.Context, kind Kind, owner string) ([]KeyInfo, error) {
	q := `SELECT id, kind, owner, hash, created, revoked, last_used, replaced_by FROM access_keys`
	var where []string
	var args []any
	if kind != "" {
		args = append(args, string(kind))
		where = append(where, "kind = $1")
	}
	if owner != "" {
		args = append(args, owner)
		where = append(where, fmt.Sprintf("owner = $%d", len(args)))
	}
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	rows, err := k.store.db.Read().Query(ctx, q+" ORDER BY created, id", args...)
	if err != nil {
		return nil, internal(err, "list keys")
	}
	defer rows.Close()
	var out []KeyInfo
	for rows.Next() {
		r, err := scanKey(rows)
		if err != nil {
			return nil, internal(err, "list keys")
		}
		out = append(out, r.KeyInfo)
	}
	return out, internal(rows.Err(), "list keys")
}

func scanKey(r sqldb.Row) (keyRow, error) {
	var kr keyRow
	var kind string
	var created, revoked, used int64
	if err := r.Scan(&kr.ID, &kind, &kr.Owner, &kr.hash, &created, &revoked, &used, &kr.ReplacedBy); err != nil {
		return keyRow{}, err
	}
	kr.Kind, kr.Created = Kind(kind), time.Unix(0, created)
	if revoked != 0 {
		kr.Revoked = time.Unix(0, revoked)
	}
	if used != 0 {
		kr.LastUsed = time.Unix(0, used)
	}
	return kr, nil
}

func (k *Keys) row(ctx context.Context, id string) (keyRow, error) {
	r, err := scanKey(k.store.db.Read().QueryRow(ctx,
		`SELECT id, kind, owner, hash, created, revoked, last_used, replaced_by FROM access_keys WHERE id = $1`, id))
	if errors.Is(err, sqldb.ErrNoRows) {
		return keyRow{}, api.Errorf(api.CallerNotFound, "access: no key %s", id)
	}
	if err != nil {
		return keyRow{}, internal(err, "read key %s", id)
	}
	return r, nil
}

func (k *Keys) forget(id string) {
	k.mu.Lock()
	delete(k.cache, id)
	k.mu.Unlock()
}

// cached reads key id through the cache; found is false for a key that does not exist.
func (k *Keys) cached(ctx context.Context, id string, now time.Time) (keyRow, bool, error) {
	k.mu.Lock()
	c, ok := k.cache[id]
	k.mu.Unlock()
	if ok && now.Sub(c.at) < k.ttl && now.Sub(c.at) >= 0 {
		return c.row, true, nil
	}
	r, err := k.row(ctx, id)
	if api.KindOf(err) == api.CallerNotFound {
		return keyRow{}, false, nil
	}
	if err != nil {
		return keyRow{}, false, err
	}
	k.mu.Lock()
	if len(k.cache) > 100_000 {
		clear(k.cache)
	}
	k.cache[id] = cachedKey{row: r, at: now}
	k.mu.Unlock()
	return r, true, nil
}

// HeaderAPIKey is the header Anthropic-style clients send their key in.
const HeaderAPIKey = "X-Api-Key"

// KeyFromHeaders returns the API key a request carries, as "Authorization: Bearer
// <key>" (OpenAI's clients) or "x-api-key: <key>" (Anthropic's). A request that
// carries two different keys, or one header twice, is ambiguous and gets an error: the
// gate must never have to guess which identity was meant.
func KeyFromHeaders(h http.Header) (string, error) {
	auth, xkey := h.Values("Authorization"), h.Values(HeaderAPIKey)
	if len(auth) > 1 || len(xkey) > 1 {
		return "", unauthorized("the request carries more than one Authorization or x-api-key header; send one key")
	}
	var key string
	if len(auth) == 1 {
		scheme, rest, ok := strings.Cut(strings.TrimSpace(auth[0]), " ")
		if !ok || !strings.EqualFold(scheme, "Bearer") {
			return "", unauthorized("the Authorization header must read \"Bearer <API key>\"")
		}
		key = strings.TrimSpace(rest)
	}
	if len(xkey) == 1 {
		x := strings.TrimSpace(xkey[0])
		if key != "" && x != key {
			return "", unauthorized("the Authorization and x-api-key headers carry different keys; send one")
		}
		key = x
	}
	if key == "" {
		return "", unauthorized("no API key: send \"Authorization: Bearer <key>\" or \"x-api-key: <key>\" (an admin issues keys with aios agents add)")
	}
	return key, nil
}

func unauthorized(msg string) error { return api.Errorf(api.CallerUnauthorized, "%s", msg) }

// parseKey splits a key into its kind and id, or reports that it is not one of ours:
// such keys are refused without touching the database.
func parseKey(key string) (Kind, string, bool) {
	rest, ok := strings.CutPrefix(key, keyPrefix)
	if !ok {
		return "", "", false
	}
	kind, rest, ok := strings.Cut(rest, "_")
	if !ok || (kind != string(KindAgent) && kind != string(KindAdmin)) {
		return "", "", false
	}
	id, secret, ok := strings.Cut(rest, "_")
	if !ok || len(id) != keyIDLen || len(secret) != keySecretLn {
		return "", "", false
	}
	if _, err := hex.DecodeString(id); err != nil || strings.ToLower(id) != id {
		return "", "", false
	}
	for i := range len(secret) {
		if !strings.ContainsRune(base62, rune(secret[i])) {
			return "", "", false
		}
	}
	return Kind(kind), id, true
}

// Authenticate returns the principal whose key the request headers carry, or
// caller_unauthorized: no key, a malformed key, an unknown or revoked key, or the key
// of a disabled or removed agent.
func (k *Keys) Authenticate(ctx context.Context, h http.Header) (Principal, error) {
	key, err := KeyFromHeaders(h)
	if err != nil {
		return Principal{}, err
	}
	kind, id, ok := parseKey(key)
	if !ok {
		return Principal{}, unauthorized("the API key is not an aios key (they read aios_agent_… or aios_admin_…)")
	}
	now := k.clock.Now()
	r, found, err := k.cached(ctx, id, now)
	if err != nil {
		return Principal{}, err
	}
	// The comparison runs in constant time whether or not the id exists, so timing
	// tells nothing of which ids do.
	want := r.hash
	if !found {
		want = strings.Repeat("0", 64)
	}
	got := hashKey(key)
	if subtle.ConstantTimeCompare([]byte(got), []byte(want)) != 1 || !found || r.Kind != kind {
		return Principal{}, unauthorized("unknown API key")
	}
	if !r.Active(now) {
		return Principal{}, unauthorized("the API key " + id + " was revoked; ask an admin for a new one")
	}
	p := Principal{Kind: kind, Name: r.Owner, KeyID: id}
	if kind == KindAgent {
		a, found, err := k.dir.lookup(ctx, r.Owner)
		if err != nil {
			return Principal{}, err
		}
		if !found {
			return Principal{}, unauthorized("the agent " + r.Owner + " of this key is no longer registered")
		}
		if a.Disabled {
			return Principal{}, unauthorized("the agent " + r.Owner + " is disabled")
		}
		p.Tenant, p.Groups = a.Tenant, a.Groups
	}
	if now.Sub(r.LastUsed) >= lastUsedEvery {
		k.touch(ctx, id, now)
	}
	return p, nil
}

// touch records a key's use. It is best effort: failing to note the time of use must
// not fail the request that used it.
func (k *Keys) touch(ctx context.Context, id string, now time.Time) {
	k.mu.Lock()
	if c, ok := k.cache[id]; ok {
		c.row.LastUsed = now
		k.cache[id] = c
	}
	k.mu.Unlock()
	_ = k.store.write(ctx, func(tx sqldb.Tx) error {
		_, err := tx.Exec(ctx, `UPDATE access_keys SET last_used = $2 WHERE id = $1`, id, now.UnixNano())
		return err
	})
}
