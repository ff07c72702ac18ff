package storage

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/aios-go/aios/api"
)

// Files in a mounted host folder live on the host's disk: reads, listings and deletes go
// to the real files. Writes through the kernel replace the real file and also keep a
// version in the store, so they can be rolled back; changes made by others on the host
// are indexed (see watcher) but not versioned. Host folders count against no quota.

// tempPrefix names the kernel's temporary files in host folders, which the watcher
// ignores.
const tempPrefix = ".aios-write-"

func (m *Manager) hostRead(ctx context.Context, t target) (io.ReadCloser, FileInfo, error) {
	f, err := os.Open(t.path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, FileInfo{}, notFound(t.rel)
	}
	if err != nil {
		return nil, FileInfo{}, hostErr(err, t.rel)
	}
	st, err := f.Stat()
	if err == nil && st.IsDir() {
		err = isDirErr(t.rel)
	} else if err == nil && !st.Mode().IsRegular() {
		err = api.Errorf(api.CallerBadRequest, "%s is not a regular file", strqt(t.rel))
	}
	if err != nil {
		f.Close()
		return nil, FileInfo{}, err
	}
	info := FileInfo{Path: t.rel, Size: st.Size(), Modified: st.ModTime()}
	if n, err := m.lastVersion(ctx, t.path); err == nil {
		info.Version = n
	}
	return f, info, nil
}

func (m *Manager) lastVersion(ctx context.Context, path string) (int, error) {
	var n int64
	err := m.db.read().QueryRow(ctx, `SELECT COALESCE(MAX(n), 0) FROM versions WHERE ns = $1 AND path = $2`, hostNS, path).Scan(&n)
	return int(n), err
}

func (m *Manager) hostList(t target) ([]FileInfo, error) {
	st, err := os.Stat(t.path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, notFound(t.rel)
	}
	if err != nil {
		return nil, hostErr(err, t.rel)
	}
	if !st.IsDir() {
		return []FileInfo{{Path: t.rel, Size: st.Size(), Modified: st.ModTime()}}, nil
	}
	entries, err := os.ReadDir(t.path)
	if err != nil {
		return nil, hostErr(err, t.rel)
	}
	out := []FileInfo{}
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), tempPrefix) {
			continue
		}
		fi, err := e.Info()
		if err != nil {
			continue // removed since ReadDir
		}
		rel := strings.TrimSuffix(t.rel, "/") + "/" + e.Name()
		out = append(out, FileInfo{Path: rel, Dir: e.IsDir(), Size: fi.Size(), Modified: fi.ModTime()})
	}
	return out, nil
}

func (m *Manager) hostCreateDir(t target) (FileInfo, error) {
	if err := os.MkdirAll(t.path, 0o755); err != nil {
		if st, serr := os.Stat(t.path); serr == nil && !st.IsDir() {
			return FileInfo{}, api.Errorf(api.CallerBadRequest, "%s is a file; a folder cannot have the same name", strqt(t.rel))
		}
		return FileInfo{}, hostErr(err, t.rel)
	}
	st, err := os.Stat(t.path)
	if err != nil {
		return FileInfo{}, hostErr(err, t.rel)
	}
	return FileInfo{Path: t.rel, Dir: true, Modified: st.ModTime()}, nil
}

func (m *Manager) hostCreateFile(ctx context.Context, t target) (FileInfo, error) {
	if st, err := os.Stat(t.path); err == nil {
		if st.IsDir() {
			return FileInfo{}, isDirErr(t.rel)
		}
		n, _ := m.lastVersion(ctx, t.path)
		return FileInfo{Path: t.rel, Size: st.Size(), Modified: st.ModTime(), Version: n}, nil
	}
	if err := os.MkdirAll(filepath.Dir(t.path), 0o755); err != nil {
		return FileInfo{}, hostErr(err, t.rel)
	}
	f, err := os.OpenFile(t.path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil && !errors.Is(err, fs.ErrExist) {
		return FileInfo{}, hostErr(err, t.rel)
	}
	if f != nil {
		f.Close()
		if _, err := m.recordHost(ctx, t.path, bytesContent(nil), "create", nil); err != nil {
			return FileInfo{}, err
		}
	}
	_, info, err := m.hostStatInfo(ctx, t)
	return info, err
}

func (m *Manager) hostStatInfo(ctx context.Context, t target) (os.FileInfo, FileInfo, error) {
	st, err := os.Stat(t.path)
	if err != nil {
		return nil, FileInfo{}, hostErr(err, t.rel)
	}
	n, _ := m.lastVersion(ctx, t.path)
	return st, FileInfo{Path: t.rel, Dir: st.IsDir(), Size: st.Size(), Modified: st.ModTime(), Version: n}, nil
}

// hostWrite replaces the real file by renaming a complete, synced copy over it, so a
// reader or a crash sees the old content or the new, never a mix. change is "" for an
// agent's write (the Guard is asked before a non-empty file is overwritten) or
// "rollback" (asked already).
func (m *Manager) hostWrite(ctx context.Context, agent string, t target, c *content, change string) (Version, error) {
	st, err := os.Lstat(t.path)
	exists := err == nil
	switch {
	case exists && st.IsDir():
		return Version{}, isDirErr(t.rel)
	case exists && !st.Mode().IsRegular():
		return Version{}, api.Errorf(api.CallerBadRequest, "%s is not a regular file", strqt(t.rel))
	case err != nil && !errors.Is(err, fs.ErrNotExist):
		return Version{}, hostErr(err, t.rel)
	}
	if change == "" {
		change = "create"
		if exists {
			change = "write"
			if st.Size() > 0 {
				if err := m.guard(ctx, agent, "overwrite", t.rel); err != nil {
					return Version{}, err
				}
			}
		}
	}
	dir := filepath.Dir(t.path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return Version{}, hostErr(err, t.rel)
	}
	perm := os.FileMode(0o644)
	if exists {
		perm = st.Mode().Perm()
	}
	if err := writeAtomic(dir, t.path, c.reader(), perm); err != nil {
		return Version{}, hostErr(err, t.rel)
	}
	var doc *docRow
	if text, ok := textOf(c.mem, c.size); ok {
		if st, err := os.Stat(t.path); err == nil {
			doc = m.prepareDoc(ctx, hostNS, t.path, hostStamp(st), text)
		}
	}
	return m.recordHost(ctx, t.path, c, change, doc)
}

func writeAtomic(dir, path string, r io.Reader, perm os.FileMode) error {
	f, err := os.CreateTemp(dir, tempPrefix+"*")
	if err != nil {
		return err
	}
	_, err = io.Copy(f, r)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(f.Name(), perm)
	}
	if err == nil {
		err = os.Rename(f.Name(), path)
	}
	if err != nil {
		os.Remove(f.Name())
		return err
	}
	// The rename is durable only once the folder is synced.
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}

// recordHost adds a version of a host file to the store (and its document, if any).
func (m *Manager) recordHost(ctx context.Context, path string, c *content, change string, doc *docRow) (Version, error) {
	tx, err := m.db.begin(ctx)
	if err != nil {
		return Version{}, internal(err, "record version")
	}
	defer tx.Rollback()
	if _, err := m.db.lockNamespace(ctx, tx, hostNS); err != nil {
		return Version{}, internal(err, "record version")
	}
	v, err := m.addVersion(ctx, tx, hostNS, path, c, change)
	if err != nil {
		return Version{}, internal(err, "record version")
	}
	if doc != nil || change == "delete" {
		if err := m.index(ctx, tx, hostNS, path, doc); err != nil {
			return Version{}, internal(err, "index")
		}
	}
	return v, internal(tx.Commit(), "record version")
}

func (m *Manager) hostDelete(ctx context.Context, agent string, t target) error {
	if t.path == t.base {
		return api.Errorf(api.CallerBadRequest, "the mounted folder itself cannot be deleted; delete what is inside it")
	}
	st, err := os.Lstat(t.path)
	if errors.Is(err, fs.ErrNotExist) {
		return notFound(t.rel)
	}
	if err != nil {
		return hostErr(err, t.rel)
	}
	if err := m.guard(ctx, agent, "delete", t.rel); err != nil {
		return err
	}
	if st.IsDir() {
		err = os.RemoveAll(t.path)
	} else {
		err = os.Remove(t.path)
	}
	if err != nil {
		return hostErr(err, t.rel)
	}
	if !st.IsDir() {
		if n, err := m.lastVersion(ctx, t.path); err == nil && n > 0 {
			if _, err := m.recordHost(ctx, t.path, nil, "delete", nil); err != nil {
				return err
			}
			return nil
		}
	}
	return m.dropHost(ctx, t.path, st.IsDir())
}

// reindexHost brings one host file's document up to date with the file.
func (m *Manager) reindexHost(ctx context.Context, path string) error {
	st, err := os.Lstat(path)
	if err != nil || !st.Mode().IsRegular() {
		return m.dropHost(ctx, path, false)
	}
	stamp := hostStamp(st)
	var cur string
	err = m.db.read().QueryRow(ctx, `SELECT stamp FROM docs WHERE ns = $1 AND path = $2`, hostNS, path).Scan(&cur)
	known := err == nil
	switch {
	case known && cur == stamp:
		return nil
	case err != nil && !errors.Is(err, errNoRows):
		return err
	}
	var doc *docRow
	if st.Size() <= indexMaxBytes {
		b, err := os.ReadFile(path)
		if err != nil {
			return m.dropHost(ctx, path, false)
		}
		if text, ok := textOf(b, int64(len(b))); ok {
			doc = m.prepareDoc(ctx, hostNS, path, stamp, text)
		}
	}
	if doc == nil && !known {
		return nil // not indexed before, not indexable now
	}
	tx, err := m.db.begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if err := m.index(ctx, tx, hostNS, path, doc); err != nil {
		return err
	}
	return tx.Commit()
}

func (m *Manager) dropHost(ctx context.Context, path string, subtree bool) error {
	tx, err := m.db.begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if err := m.db.dropDocs(ctx, tx, hostNS, path, subtree); err != nil {
		return err
	}
	if err := bumpGen(ctx, tx, hostNS); err != nil {
		return err
	}
	return tx.Commit()
}

func hostStamp(st os.FileInfo) string {
	return fmt.Sprintf("%d:%d", st.Size(), st.ModTime().UnixNano())
}

func hostErr(err error, rel string) error {
	if errors.Is(err, fs.ErrPermission) {
		return api.Wrap(api.PolicyDenied, err, "the kernel may not access %s on the host", strqt(rel))
	}
	return api.Wrap(api.KernelInternal, err, "host file %s", strqt(rel))
}
