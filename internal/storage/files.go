package storage

import (
	"context"
	"errors"
	"io"
	"time"

	"github.com/aios-go/aios/api"
)

// CreateFile creates an empty file, and its folders. It is idempotent: on a file that
// exists it changes nothing and returns the file as it is (AIOS agents create a file and
// then write it, and a retried create must not fail). On a folder it fails.
func (m *Manager) CreateFile(ctx context.Context, agent, path string) (FileInfo, error) {
	t, err := m.resolve(ctx, agent, path)
	if err != nil {
		return FileInfo{}, err
	}
	if t.rel == "/" {
		return FileInfo{}, isDirErr(t.rel)
	}
	if t.host {
		return m.hostCreateFile(ctx, t)
	}
	if info, ok, err := m.storeStat(ctx, m.db.read(), t); err != nil || ok {
		if err == nil && info.Dir {
			err = isDirErr(t.rel)
		}
		return info, err
	}
	_, err = m.storeWrite(ctx, agent, t, bytesContent(nil), nil, writeCreate)
	if err != nil && !errors.Is(err, errExists) {
		return FileInfo{}, err
	}
	info, _, err := m.storeStat(ctx, m.db.read(), t)
	return info, err
}

// CreateDir creates a folder and its parents; on a folder that exists it does nothing.
func (m *Manager) CreateDir(ctx context.Context, agent, path string) (FileInfo, error) {
	t, err := m.resolve(ctx, agent, path)
	if err != nil {
		return FileInfo{}, err
	}
	if t.host {
		return m.hostCreateDir(t)
	}
	return m.storeCreateDir(ctx, t)
}

// Write replaces the file's content with r's, creating the file and its folders as
// needed, and records a version. Overwriting a non-empty file passes the Guard first.
// The content is read to its end before anything is stored: a stream that fails or
// exceeds MaxFileBytes, or a write that would exceed the quota, leaves no trace.
func (m *Manager) Write(ctx context.Context, agent, path string, r io.Reader) (Version, error) {
	t, err := m.resolve(ctx, agent, path)
	if err != nil {
		return Version{}, err
	}
	if t.rel == "/" {
		return Version{}, isDirErr(t.rel)
	}
	c, err := spool(r, m.cfg.MaxFileBytes)
	if err != nil {
		return Version{}, err
	}
	defer c.close()
	if t.host {
		return m.hostWrite(ctx, agent, t, c, "")
	}
	var doc *docRow
	if text, ok := textOf(c.mem, c.size); ok {
		doc = m.prepareDoc(ctx, t.ns, t.path, c.sha, text)
	}
	return m.storeWrite(ctx, agent, t, c, doc, writeNormal)
}

// Read opens the file's current content. The reader streams large files chunk by chunk
// with ctx, so it is read within the caller's request; close it when done.
func (m *Manager) Read(ctx context.Context, agent, path string) (io.ReadCloser, FileInfo, error) {
	t, err := m.resolve(ctx, agent, path)
	if err != nil {
		return nil, FileInfo{}, err
	}
	if t.host {
		return m.hostRead(ctx, t)
	}
	return m.storeRead(ctx, t)
}

func (m *Manager) storeRead(ctx context.Context, t target) (io.ReadCloser, FileInfo, error) {
	info, ok, err := m.storeStat(ctx, m.db.read(), t)
	if err != nil {
		return nil, info, err
	}
	if !ok {
		return nil, info, notFound(t.rel)
	}
	if info.Dir {
		return nil, info, isDirErr(t.rel)
	}
	r, err := openBlob(ctx, m.db.read(), info.SHA256, info.Size)
	if err != nil {
		return nil, info, err
	}
	return r, info, nil
}

// Delete removes a file, or a folder with everything in it, after the Guard allows it.
// Each deleted file's history stays (its last version records the deletion), so a
// Rollback can bring it back until later versions push that history out.
func (m *Manager) Delete(ctx context.Context, agent, path string) error {
	t, err := m.resolve(ctx, agent, path)
	if err != nil {
		return err
	}
	if t.rel == "/" {
		return api.Errorf(api.CallerBadRequest, "the root folder cannot be deleted; delete the files and folders inside it")
	}
	if t.host {
		return m.hostDelete(ctx, agent, t)
	}
	if _, ok, err := m.storeStat(ctx, m.db.read(), t); err != nil || !ok {
		if err == nil {
			err = notFound(t.rel)
		}
		return err
	}
	if err := m.guard(ctx, agent, "delete", t.rel); err != nil {
		return err
	}
	return m.storeDelete(ctx, t)
}

// List returns a folder's entries sorted by name, or the file itself when path names one.
func (m *Manager) List(ctx context.Context, agent, path string) ([]FileInfo, error) {
	t, err := m.resolve(ctx, agent, path)
	if err != nil {
		return nil, err
	}
	if t.host {
		return m.hostList(t)
	}
	info, ok, err := m.storeStat(ctx, m.db.read(), t)
	if err != nil {
		return nil, err
	}
	if !ok && t.rel != "/" {
		return nil, notFound(t.rel)
	}
	if ok && !info.Dir {
		return []FileInfo{info}, nil
	}
	rs, err := m.db.read().Query(ctx, `SELECT path, dir, version, size, sha, modified FROM files
		WHERE ns = $1 AND parent = $2 ORDER BY path`, t.ns, t.path)
	if err != nil {
		return nil, internal(err, "list")
	}
	defer rs.Close()
	out := []FileInfo{}
	for rs.Next() {
		var f fileRow
		var p string
		if err := rs.Scan(&p, &f.dir, &f.version, &f.size, &f.sha, &f.modified); err != nil {
			return nil, internal(err, "list")
		}
		out = append(out, f.info(relPath(t.base, p)))
	}
	return out, internal(rs.Err(), "list")
}

// fileRow is a row of the files table: the current state of one file or folder.
type fileRow struct {
	dir      int64
	version  int64
	size     int64
	sha      string
	modified int64
}

func (f fileRow) info(rel string) FileInfo {
	return FileInfo{Path: rel, Dir: f.dir != 0, Size: f.size, Modified: time.Unix(0, f.modified),
		Version: int(f.version), SHA256: f.sha}
}

func getFile(ctx context.Context, q querier, ns, path string) (fileRow, bool, error) {
	var f fileRow
	err := q.QueryRow(ctx, `SELECT dir, version, size, sha, modified FROM files WHERE ns = $1 AND path = $2`, ns, path).
		Scan(&f.dir, &f.version, &f.size, &f.sha, &f.modified)
	if errors.Is(err, errNoRows) {
		return f, false, nil
	}
	return f, err == nil, err
}

// storeStat describes t; the root of a view is a folder even before anything is in it.
func (m *Manager) storeStat(ctx context.Context, q querier, t target) (FileInfo, bool, error) {
	if t.path == "/" {
		return FileInfo{Path: "/", Dir: true}, true, nil
	}
	f, ok, err := getFile(ctx, q, t.ns, t.path)
	if err != nil {
		return FileInfo{}, false, internal(err, "stat")
	}
	return f.info(t.rel), ok, nil
}

type writeMode int

const (
	writeNormal   writeMode = iota
	writeCreate             // only if the file does not exist (errExists otherwise)
	writeRollback           // the Guard was asked already
)

var errExists = errors.New("storage: file exists")

// storeWrite makes c the file's new current version. The Guard for an overwrite is
// asked outside any transaction (a person may take minutes to answer), so the file is
// re-checked afterwards and the write retried if it changed from absent to present.
func (m *Manager) storeWrite(ctx context.Context, agent string, t target, c *content, doc *docRow, mode writeMode) (Version, error) {
	guarded := mode == writeRollback
	for {
		v, needGuard, err := m.storeWriteTx(ctx, t, c, doc, mode, guarded)
		if !needGuard {
			return v, err
		}
		if err := m.guard(ctx, agent, "overwrite", t.rel); err != nil {
			return Version{}, err
		}
		guarded = true
	}
}

func (m *Manager) storeWriteTx(ctx context.Context, t target, c *content, doc *docRow, mode writeMode, guarded bool) (Version, bool, error) {
	tx, err := m.db.begin(ctx)
	if err != nil {
		return Version{}, false, internal(err, "write")
	}
	defer tx.Rollback()
	used, err := m.db.lockNamespace(ctx, tx, t.ns)
	if err != nil {
		return Version{}, false, internal(err, "write")
	}
	cur, exists, err := getFile(ctx, tx, t.ns, t.path)
	if err != nil {
		return Version{}, false, internal(err, "write")
	}
	switch {
	case exists && cur.dir != 0:
		return Version{}, false, isDirErr(t.rel)
	case exists && mode == writeCreate:
		return Version{}, false, errExists
	case exists && cur.size > 0 && !guarded:
		return Version{}, true, nil
	}
	if err := m.ensureParents(ctx, tx, t); err != nil {
		return Version{}, false, err
	}
	if q := m.cfg.QuotaBytes; q > 0 && c.size > cur.size && used-cur.size+c.size > q {
		return Version{}, false, api.Errorf(api.PolicyQuota,
			"writing %s (%d bytes) would put your storage at %d bytes, over your %d-byte quota; delete or shrink files first",
			t.rel, c.size, used-cur.size+c.size, q)
	}
	change := "write"
	switch {
	case mode == writeRollback:
		change = "rollback"
	case !exists:
		change = "create"
	}
	v, err := m.addVersion(ctx, tx, t.ns, t.path, c, change)
	if err != nil {
		return Version{}, false, internal(err, "write")
	}
	if _, err := tx.Exec(ctx, `INSERT INTO files (ns, path, parent, dir, version, size, sha, modified)
		VALUES ($1, $2, $3, 0, $4, $5, $6, $7)
		ON CONFLICT (ns, path) DO UPDATE SET version = excluded.version, size = excluded.size,
		sha = excluded.sha, modified = excluded.modified`,
		t.ns, t.path, parentOf(t.path), int64(v.N), c.size, c.sha, v.Time.UnixNano()); err != nil {
		return Version{}, false, internal(err, "write")
	}
	if err := addUsage(ctx, tx, t.ns, c.size-cur.size); err != nil {
		return Version{}, false, internal(err, "write")
	}
	if err := m.index(ctx, tx, t.ns, t.path, doc); err != nil {
		return Version{}, false, internal(err, "index")
	}
	if err := tx.Commit(); err != nil {
		return Version{}, false, internal(err, "write")
	}
	return v, false, nil
}

func addUsage(ctx context.Context, tx tx, ns string, delta int64) error {
	if delta == 0 {
		return nil
	}
	_, err := tx.Exec(ctx, `INSERT INTO usage (ns, bytes) VALUES ($1, $2)
		ON CONFLICT (ns) DO UPDATE SET bytes = usage.bytes + excluded.bytes`, ns, delta)
	return err
}

// ensureParents creates the missing folders above t. Folders always have their parents,
// so the walk up stops at the first one that exists.
func (m *Manager) ensureParents(ctx context.Context, tx tx, t target) error {
	var missing []string
	for dir := parentOf(t.path); dir != "/"; dir = parentOf(dir) {
		f, ok, err := getFile(ctx, tx, t.ns, dir)
		if err != nil {
			return internal(err, "create folders")
		}
		if ok {
			if f.dir == 0 {
				return api.Errorf(api.CallerBadRequest, "%s is a file, so it cannot hold %s; pick another path",
					strqt(relPath(t.base, dir)), strqt(t.rel))
			}
			break
		}
		missing = append(missing, dir)
	}
	now := m.now().UnixNano()
	for i := len(missing) - 1; i >= 0; i-- {
		if _, err := tx.Exec(ctx, `INSERT INTO files (ns, path, parent, dir, version, size, sha, modified)
			VALUES ($1, $2, $3, 1, 0, 0, '', $4)`, t.ns, missing[i], parentOf(missing[i]), now); err != nil {
			return internal(err, "create folders")
		}
	}
	return nil
}

func (m *Manager) storeCreateDir(ctx context.Context, t target) (FileInfo, error) {
	if t.path == "/" {
		return FileInfo{Path: "/", Dir: true}, nil
	}
	tx, err := m.db.begin(ctx)
	if err != nil {
		return FileInfo{}, internal(err, "create folder")
	}
	defer tx.Rollback()
	if _, err := m.db.lockNamespace(ctx, tx, t.ns); err != nil {
		return FileInfo{}, internal(err, "create folder")
	}
	cur, ok, err := getFile(ctx, tx, t.ns, t.path)
	if err != nil {
		return FileInfo{}, internal(err, "create folder")
	}
	if ok {
		if cur.dir == 0 {
			return FileInfo{}, api.Errorf(api.CallerBadRequest, "%s is a file; a folder cannot have the same name", strqt(t.rel))
		}
		return cur.info(t.rel), nil
	}
	if err := m.ensureParents(ctx, tx, t); err != nil {
		return FileInfo{}, err
	}
	now := m.now().UnixNano()
	if _, err := tx.Exec(ctx, `INSERT INTO files (ns, path, parent, dir, version, size, sha, modified)
		VALUES ($1, $2, $3, 1, 0, 0, '', $4)`, t.ns, t.path, parentOf(t.path), now); err != nil {
		return FileInfo{}, internal(err, "create folder")
	}
	if err := tx.Commit(); err != nil {
		return FileInfo{}, internal(err, "create folder")
	}
	return fileRow{dir: 1, modified: now}.info(t.rel), nil
}

func (m *Manager) storeDelete(ctx context.Context, t target) error {
	tx, err := m.db.begin(ctx)
	if err != nil {
		return internal(err, "delete")
	}
	defer tx.Rollback()
	if _, err := m.db.lockNamespace(ctx, tx, t.ns); err != nil {
		return internal(err, "delete")
	}
	cur, ok, err := getFile(ctx, tx, t.ns, t.path)
	if err != nil {
		return internal(err, "delete")
	}
	if !ok {
		return notFound(t.rel)
	}
	type gone struct {
		path string
		size int64
	}
	var files []gone
	if cur.dir == 0 {
		files = append(files, gone{t.path, cur.size})
	} else {
		lo, hi := below(t.path)
		rs, err := tx.Query(ctx, `SELECT path, size FROM files WHERE ns = $1 AND path >= $2 AND path < $3 AND dir = 0`, t.ns, lo, hi)
		if err != nil {
			return internal(err, "delete")
		}
		for rs.Next() {
			var g gone
			if err := rs.Scan(&g.path, &g.size); err != nil {
				rs.Close()
				return internal(err, "delete")
			}
			files = append(files, g)
		}
		rs.Close()
		if err := rs.Err(); err != nil {
			return internal(err, "delete")
		}
	}
	var freed int64
	for _, g := range files {
		if _, err := m.addVersion(ctx, tx, t.ns, g.path, nil, "delete"); err != nil {
			return internal(err, "delete")
		}
		freed += g.size
	}
	where, args := docsWhere(t.ns, t.path, cur.dir != 0)
	if _, err := tx.Exec(ctx, `DELETE FROM files WHERE `+where, args...); err != nil {
		return internal(err, "delete")
	}
	if err := addUsage(ctx, tx, t.ns, -freed); err != nil {
		return internal(err, "delete")
	}
	if err := m.db.dropDocs(ctx, tx, t.ns, t.path, cur.dir != 0); err != nil {
		return internal(err, "delete")
	}
	if err := bumpGen(ctx, tx, t.ns); err != nil {
		return internal(err, "delete")
	}
	return internal(tx.Commit(), "delete")
}

func isDirErr(rel string) error {
	return api.Errorf(api.CallerBadRequest, "%s is a folder; name a file in it", strqt(rel))
}
