package storage

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/aios-go/aios/api"
)

// Share makes a link token to the file at path, valid for ttl (0 means 24 hours, at most
// a year). The link follows the path: it serves whatever the file holds when opened, and
// nothing while the file is deleted. The token is 256 random bits; only its hash is
// stored, so a copy of the database does not hand out working links.
func (m *Manager) Share(ctx context.Context, agent, path string, ttl time.Duration) (Share, error) {
	t, err := m.resolve(ctx, agent, path)
	if err != nil {
		return Share{}, err
	}
	switch {
	case ttl == 0:
		ttl = defaultShareTTL
	case ttl < 0 || ttl > maxShareTTL:
		return Share{}, api.Errorf(api.CallerBadRequest, "a share link lives between 1ns and %s, not %s", maxShareTTL, ttl)
	}
	if t.host {
		st, err := os.Stat(t.path)
		if err != nil || !st.Mode().IsRegular() {
			return Share{}, api.Errorf(api.CallerNotFound, "no file %s to share", strqt(t.rel))
		}
	} else {
		info, ok, err := m.storeStat(ctx, m.db.read(), t)
		if err != nil {
			return Share{}, err
		}
		if !ok || info.Dir {
			return Share{}, api.Errorf(api.CallerNotFound, "no file %s to share (folders cannot be shared)", strqt(t.rel))
		}
	}
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return Share{}, internal(err, "make share token")
	}
	token := base64.RawURLEncoding.EncodeToString(raw)
	now := m.now()
	s := Share{Token: token, Path: t.rel, Agent: agent, Expires: time.Unix(0, now.Add(ttl).UnixNano())}
	tx, err := m.db.begin(ctx)
	if err != nil {
		return Share{}, internal(err, "share")
	}
	defer tx.Rollback()
	// Expired links are swept here, where new ones are made, so the table stays the
	// size of the links alive.
	if _, err := tx.Exec(ctx, `DELETE FROM shares WHERE expires <= $1`, now.UnixNano()); err != nil {
		return Share{}, internal(err, "share")
	}
	if _, err := tx.Exec(ctx, `INSERT INTO shares (token_hash, ns, path, agent, expires) VALUES ($1, $2, $3, $4, $5)`,
		tokenHash(token), t.ns, t.path, agent, s.Expires.UnixNano()); err != nil {
		return Share{}, internal(err, "share")
	}
	if err := tx.Commit(); err != nil {
		return Share{}, internal(err, "share")
	}
	return s, nil
}

// Unshare revokes a link the agent made. A token the agent did not make is reported as
// not found, the same as one that never existed.
func (m *Manager) Unshare(ctx context.Context, agent, token string) error {
	if err := m.checkAgent(agent); err != nil {
		return err
	}
	t, err := m.db.begin(ctx)
	if err != nil {
		return internal(err, "unshare")
	}
	defer t.Rollback()
	n, err := t.Exec(ctx, `DELETE FROM shares WHERE token_hash = $1 AND agent = $2`, tokenHash(token), agent)
	if err != nil {
		return internal(err, "unshare")
	}
	if n == 0 {
		return api.Errorf(api.CallerNotFound, "you have no share link with that token (it may have expired)")
	}
	return internal(t.Commit(), "unshare")
}

// OpenShared reads the file a link points to, for whoever holds the token. FileInfo.Path
// is the file's name only: the link does not reveal the owner's folders.
func (m *Manager) OpenShared(ctx context.Context, token string) (io.ReadCloser, FileInfo, error) {
	if err := m.live(); err != nil {
		return nil, FileInfo{}, err
	}
	gone := api.Errorf(api.CallerNotFound, "this share link does not exist, has expired or was revoked; ask its owner for a new one")
	if token == "" || len(token) > 128 {
		return nil, FileInfo{}, gone
	}
	var ns, path, agent string
	var expires int64
	err := m.db.read().QueryRow(ctx, `SELECT ns, path, agent, expires FROM shares WHERE token_hash = $1`, tokenHash(token)).
		Scan(&ns, &path, &agent, &expires)
	if errors.Is(err, errNoRows) || (err == nil && expires <= m.now().UnixNano()) {
		return nil, FileInfo{}, gone
	}
	if err != nil {
		return nil, FileInfo{}, internal(err, "open share")
	}
	var r io.ReadCloser
	var info FileInfo
	if ns == hostNS {
		// The operator may have narrowed host_roots since, and the path may now be a
		// link to elsewhere: check again.
		real, err := filepath.EvalSymlinks(path)
		if err != nil || !m.allowed(real) {
			return nil, FileInfo{}, gone
		}
		r, info, err = m.hostRead(ctx, target{view: view{ns: hostNS, base: filepath.Dir(real), host: true}, rel: "/" + filepath.Base(real), path: real})
		if err != nil {
			return nil, FileInfo{}, gone
		}
	} else {
		r, info, err = m.storeRead(ctx, target{view: view{ns: ns, base: "/"}, rel: path, path: path})
		if err != nil {
			return nil, FileInfo{}, gone
		}
	}
	info.Path = pathBase(path)
	return r, info, nil
}

func tokenHash(token string) string {
	h := sha256.Sum256([]byte(token))
	return hex.EncodeToString(h[:])
}

func pathBase(p string) string { return p[strings.LastIndexByte(p, '/')+1:] }
