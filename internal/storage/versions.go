package storage

import (
	"context"
	"io"
	"os"
	"time"

	"github.com/aios-go/aios/api"
)

// Versions lists the file's kept history, newest first. A deleted file still has one
// (ending in its "delete"); a host file never written through the kernel has none.
func (m *Manager) Versions(ctx context.Context, agent, path string) ([]Version, error) {
	t, err := m.resolve(ctx, agent, path)
	if err != nil {
		return nil, err
	}
	if t.rel == "/" {
		return nil, isDirErr(t.rel)
	}
	if !t.host {
		if f, ok, err := getFile(ctx, m.db.read(), t.ns, t.path); err != nil {
			return nil, internal(err, "versions")
		} else if ok && f.dir != 0 {
			return nil, isDirErr(t.rel)
		}
	}
	vs, err := listVersions(ctx, m.db.read(), t.ns, t.path)
	if err != nil {
		return nil, internal(err, "versions")
	}
	if len(vs) == 0 {
		if t.host {
			if st, err := os.Stat(t.path); err == nil && !st.IsDir() {
				return []Version{}, nil
			}
		}
		return nil, notFound(t.rel)
	}
	return vs, nil
}

// Rollback makes an earlier version current again, as a new version (so the rollback
// can itself be undone), after the Guard allows it. It also restores a deleted file.
func (m *Manager) Rollback(ctx context.Context, agent, path string, to RollbackTarget) (Version, error) {
	t, err := m.resolve(ctx, agent, path)
	if err != nil {
		return Version{}, err
	}
	vs, err := listVersions(ctx, m.db.read(), t.ns, t.path)
	if err != nil {
		return Version{}, internal(err, "rollback")
	}
	if len(vs) == 0 {
		return Version{}, api.Errorf(api.CallerNotFound, "%s has no versions to roll back to", strqt(t.rel))
	}
	want, err := pickVersion(vs, to, t.rel)
	if err != nil {
		return Version{}, err
	}
	if err := m.guard(ctx, agent, "rollback", t.rel); err != nil {
		return Version{}, err
	}
	c := &content{sha: want.SHA256, size: want.Size, stored: true}
	var text string
	var isText bool
	if want.Size <= indexMaxBytes || t.host {
		b, err := m.readBlob(ctx, want)
		if err != nil {
			return Version{}, err
		}
		defer b.close()
		if t.host {
			return m.hostWrite(ctx, agent, t, b, "rollback")
		}
		text, isText = textOf(b.mem, b.size)
	}
	var doc *docRow
	if isText {
		doc = m.prepareDoc(ctx, t.ns, t.path, c.sha, text)
	}
	return m.storeWrite(ctx, agent, t, c, doc, writeRollback)
}

// pickVersion finds the version a RollbackTarget names in vs (newest first).
func pickVersion(vs []Version, to RollbackTarget, rel string) (Version, error) {
	var want Version
	switch {
	case to.N < 0:
		return want, api.Errorf(api.CallerBadRequest, "roll back by a positive number of versions (1 is the previous one), not %d", to.N)
	case to.N > 0:
		if to.N >= len(vs) {
			return want, api.Errorf(api.CallerNotFound, "%s keeps only %d earlier version(s); roll back by at most that", strqt(rel), len(vs)-1)
		}
		want = vs[to.N]
	case !to.Time.IsZero():
		found := false
		for _, v := range vs {
			if !v.Time.After(to.Time) {
				want, found = v, true
				break
			}
		}
		if !found {
			return want, api.Errorf(api.CallerNotFound, "%s has no kept version from %s or earlier; the oldest kept is from %s",
				strqt(rel), to.Time.Format(time.RFC3339), vs[len(vs)-1].Time.Format(time.RFC3339))
		}
	default:
		return want, api.Errorf(api.CallerBadRequest, "say which version to roll back to: n versions back (1 is the previous) or a time")
	}
	if want.Change == "delete" {
		return want, api.Errorf(api.CallerBadRequest, "version %d of %s records its deletion; pick an earlier version", want.N, strqt(rel))
	}
	return want, nil
}

// readBlob loads a stored version's content into a spool.
func (m *Manager) readBlob(ctx context.Context, v Version) (*content, error) {
	r, err := openBlob(ctx, m.db.read(), v.SHA256, v.Size)
	if err != nil {
		return nil, err
	}
	return spool(io.Reader(r), max(v.Size, m.cfg.MaxFileBytes))
}

func listVersions(ctx context.Context, q querier, ns, path string) ([]Version, error) {
	rs, err := q.Query(ctx, `SELECT n, at, size, sha, change FROM versions WHERE ns = $1 AND path = $2 ORDER BY n DESC`, ns, path)
	if err != nil {
		return nil, err
	}
	defer rs.Close()
	out := []Version{}
	for rs.Next() {
		var n, at int64
		var v Version
		if err := rs.Scan(&n, &at, &v.Size, &v.SHA256, &v.Change); err != nil {
			return nil, err
		}
		v.N, v.Time = int(n), time.Unix(0, at)
		out = append(out, v)
	}
	return out, rs.Err()
}

// addVersion appends a version to path's history (c nil records a deletion) and drops
// the versions that fall out of MaxVersions, releasing their blobs. The caller holds the
// namespace lock, so MAX(n)+1 is this version's number alone.
func (m *Manager) addVersion(ctx context.Context, tx tx, ns, path string, c *content, change string) (Version, error) {
	var last int64
	if err := tx.QueryRow(ctx, `SELECT COALESCE(MAX(n), 0) FROM versions WHERE ns = $1 AND path = $2`, ns, path).Scan(&last); err != nil {
		return Version{}, err
	}
	v := Version{N: int(last + 1), Time: time.Unix(0, m.now().UnixNano()), Change: change}
	if c != nil {
		v.Size, v.SHA256 = c.size, c.sha
		if err := refBlob(ctx, tx, c); err != nil {
			return Version{}, err
		}
	}
	if _, err := tx.Exec(ctx, `INSERT INTO versions (ns, path, n, at, size, sha, change) VALUES ($1, $2, $3, $4, $5, $6, $7)`,
		ns, path, int64(v.N), v.Time.UnixNano(), v.Size, v.SHA256, change); err != nil {
		return Version{}, err
	}
	cut := int64(v.N - m.cfg.MaxVersions)
	if cut <= 0 {
		return v, nil
	}
	rs, err := tx.Query(ctx, `SELECT sha FROM versions WHERE ns = $1 AND path = $2 AND n <= $3`, ns, path, cut)
	if err != nil {
		return Version{}, err
	}
	var shas []string
	for rs.Next() {
		var s string
		if err := rs.Scan(&s); err != nil {
			rs.Close()
			return Version{}, err
		}
		shas = append(shas, s)
	}
	rs.Close()
	if err := rs.Err(); err != nil {
		return Version{}, err
	}
	if _, err := tx.Exec(ctx, `DELETE FROM versions WHERE ns = $1 AND path = $2 AND n <= $3`, ns, path, cut); err != nil {
		return Version{}, err
	}
	for _, s := range shas {
		if err := unrefBlob(ctx, tx, s); err != nil {
			return Version{}, err
		}
	}
	return v, nil
}
