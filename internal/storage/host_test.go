package storage_test

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aios-go/aios/api"
	"github.com/aios-go/aios/internal/storage"
	"github.com/aios-go/aios/internal/storage/storagetest"
)

// Host folders behave the same on either backend (they live on the host's disk), so
// these tests run on SQLite only.

func hostSetup(t *testing.T) (m *storage.Manager, root, outside string, reopen func() *storage.Manager) {
	t.Helper()
	base, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	root, outside = filepath.Join(base, "allowed"), filepath.Join(base, "outside")
	for _, d := range []string{root, outside} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	db := filepath.Join(base, "storage.db")
	var cur *storage.Manager
	reopen = func() *storage.Manager {
		if cur != nil {
			cur.Close()
		}
		m, err := storage.Open(context.Background(), storage.Config{Path: db, HostRoots: []string{root}})
		if err != nil {
			t.Fatal(err)
		}
		cur = m
		return m
	}
	t.Cleanup(func() { cur.Close() })
	return reopen(), root, outside, reopen
}

// eventually polls cond: the watcher indexes host files as the kernel learns of them,
// after the call that changed them has returned.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting: %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func hitPaths(m *storage.Manager, agent, text string) []string {
	hits, err := m.Retrieve(context.Background(), agent, storage.Query{Text: text, K: 10})
	if err != nil {
		return []string{"error: " + err.Error()}
	}
	var out []string
	for _, h := range hits {
		out = append(out, h.Path)
	}
	return out
}

func has(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func TestHostMountConfined(t *testing.T) {
	ctx := context.Background()
	m, root, outside, _ := hostSetup(t)
	_, err := m.Mount(ctx, "a", outside)
	storagetest.WantKind(t, err, api.PolicyDenied)
	_, err = m.Mount(ctx, "a", filepath.Join(root, "missing"))
	storagetest.WantKind(t, err, api.CallerNotFound)
	if err := os.Symlink(outside, filepath.Join(root, "link")); err != nil {
		t.Fatal(err)
	}
	_, err = m.Mount(ctx, "a", filepath.Join(root, "link"))
	storagetest.WantKind(t, err, api.PolicyDenied)

	mt, err := m.Mount(ctx, "a", root)
	if err != nil || !mt.Host || mt.Root != root {
		t.Fatalf("mount %+v %v", mt, err)
	}
	_, err = m.Write(ctx, "a", "/link/x.txt", strings.NewReader("escape"))
	storagetest.WantKind(t, err, api.PolicyDenied)
	_, _, err = m.Read(ctx, "a", "/link")
	storagetest.WantKind(t, err, api.PolicyDenied)
	if err := os.Symlink(filepath.Join(outside, "nothing"), filepath.Join(root, "dangle")); err != nil {
		t.Fatal(err)
	}
	_, err = m.Write(ctx, "a", "/dangle", strings.NewReader("escape"))
	storagetest.WantKind(t, err, api.PolicyDenied)
	_, err = m.Write(ctx, "a", "/dangle/under", strings.NewReader("escape"))
	storagetest.WantKind(t, err, api.PolicyDenied)
	_, err = m.Write(ctx, "a", "../outside/x.txt", strings.NewReader("escape"))
	storagetest.WantKind(t, err, api.CallerBadRequest)
	if entries, _ := os.ReadDir(outside); len(entries) != 0 {
		t.Fatalf("a write escaped the mounted folder: %v", entries)
	}
	storagetest.WantKind(t, m.Delete(ctx, "a", "/"), api.CallerBadRequest)
}

func TestHostFiles(t *testing.T) {
	ctx := context.Background()
	m, root, _, _ := hostSetup(t)
	if _, err := m.Mount(ctx, "a", root); err != nil {
		t.Fatal(err)
	}
	// Writes through the kernel: the real file, plus versions in the store.
	if _, err := m.Write(ctx, "a", "/sub/notes.txt", strings.NewReader("first draft about lighthouses")); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Write(ctx, "a", "/sub/notes.txt", strings.NewReader("second draft about lighthouses and ships")); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(root, "sub", "notes.txt")); string(b) != "second draft about lighthouses and ships" {
		t.Fatalf("real file holds %q", b)
	}
	vs, err := m.Versions(ctx, "a", "/sub/notes.txt")
	if err != nil || len(vs) != 2 || vs[1].Change != "create" || vs[0].Change != "write" {
		t.Fatalf("versions %+v %v", vs, err)
	}
	if _, err := m.Rollback(ctx, "a", "/sub/notes.txt", storage.RollbackTarget{N: 1}); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(root, "sub", "notes.txt")); string(b) != "first draft about lighthouses" {
		t.Fatalf("rollback left the real file as %q", b)
	}
	r, info, err := m.Read(ctx, "a", "sub/notes.txt")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(r)
	r.Close()
	if string(b) != "first draft about lighthouses" || info.Version != 3 || info.Path != "/sub/notes.txt" {
		t.Fatalf("read %q %+v", b, info)
	}
	if l, _ := m.List(ctx, "a", "/"); len(l) != 1 || l[0].Path != "/sub" || !l[0].Dir {
		t.Fatalf("list %+v", l)
	}
	if got := hitPaths(m, "a", "lighthouses"); !has(got, "/sub/notes.txt") {
		t.Fatalf("a file written through the kernel is not retrievable: %v", got)
	}
	// Files changed by others on the host are indexed as the watcher sees them, in new
	// folders too.
	os.WriteFile(filepath.Join(root, "ext.txt"), []byte("zebra giraffe savanna"), 0o644)
	eventually(t, "an external file indexed", func() bool { return has(hitPaths(m, "a", "giraffe"), "/ext.txt") })
	os.MkdirAll(filepath.Join(root, "new", "deep"), 0o755)
	os.WriteFile(filepath.Join(root, "new", "deep", "v.txt"), []byte("volcano lava eruption"), 0o644)
	eventually(t, "a file in a new folder indexed", func() bool { return has(hitPaths(m, "a", "volcano lava"), "/new/deep/v.txt") })
	os.WriteFile(filepath.Join(root, "ext.txt"), []byte("penguin iceberg"), 0o644)
	eventually(t, "a changed file re-indexed", func() bool { return has(hitPaths(m, "a", "penguin"), "/ext.txt") })
	os.Remove(filepath.Join(root, "ext.txt"))
	eventually(t, "a removed file dropped", func() bool { return !has(hitPaths(m, "a", "penguin"), "/ext.txt") })

	s, err := m.Share(ctx, "a", "/new/deep/v.txt", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	sr, _, err := m.OpenShared(ctx, s.Token)
	if err != nil {
		t.Fatal(err)
	}
	sb, _ := io.ReadAll(sr)
	sr.Close()
	if string(sb) != "volcano lava eruption" {
		t.Fatalf("shared host file read %q", sb)
	}

	if err := m.Delete(ctx, "a", "/new"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "new")); !os.IsNotExist(err) {
		t.Fatalf("delete left the real folder: %v", err)
	}
	if got := hitPaths(m, "a", "volcano"); has(got, "/new/deep/v.txt") {
		t.Fatal("a deleted host file is still retrieved")
	}
	// Back in the namespace, the host folder is out of sight.
	if _, err := m.Mount(ctx, "a", ""); err != nil {
		t.Fatal(err)
	}
	if _, _, err := m.Read(ctx, "a", "/sub/notes.txt"); api.KindOf(err) != api.CallerNotFound {
		t.Fatalf("after unmounting: %v", err)
	}
}

func TestHostMountPersists(t *testing.T) {
	ctx := context.Background()
	m, root, _, reopen := hostSetup(t)
	if _, err := m.Mount(ctx, "a", root); err != nil {
		t.Fatal(err)
	}
	m.Close()
	// Changed while the kernel was down: found by the scan at start.
	os.WriteFile(filepath.Join(root, "while-down.txt"), []byte("asteroid comet meteor"), 0o644)
	m = reopen()
	if mt, _ := m.CurrentMount(ctx, "a"); !mt.Host || mt.Root != root {
		t.Fatalf("mount after reopen %+v", mt)
	}
	eventually(t, "a file written while down indexed", func() bool { return has(hitPaths(m, "a", "comet"), "/while-down.txt") })
	// And the watch resumed.
	os.WriteFile(filepath.Join(root, "after.txt"), []byte("nebula quasar"), 0o644)
	eventually(t, "a file written after restart indexed", func() bool { return has(hitPaths(m, "a", "quasar"), "/after.txt") })
}
