// Package storagetest is the conformance suite every storage backend passes: the same
// behaviour, checked the same way, against SQLite and PostgreSQL.
package storagetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aios-go/aios/api"
	"github.com/aios-go/aios/internal/embed"
	"github.com/aios-go/aios/internal/storage"
)

// Opener opens a Manager on one store, filling in cfg's backend fields. Every call
// opens the same store, so a test can close a Manager and open the store again.
type Opener func(cfg storage.Config) (*storage.Manager, error)

// Run runs the suite. newStore makes a fresh, empty store for one test.
func Run(t *testing.T, newStore func(t *testing.T) Opener) {
	tests := []struct {
		name string
		fn   func(t *testing.T, op Opener)
	}{
		{"PathsConfined", testPaths},
		{"WriteRead", testWriteRead},
		{"LargeFileStreams", testLargeFile},
		{"NamespacesIsolated", testNamespaces},
		{"CreateAndList", testCreateList},
		{"VersionsBounded", testVersions},
		{"Rollback", testRollback},
		{"DeleteRecursiveAndUndo", testDelete},
		{"BlobsDedupedAndFreed", testBlobs},
		{"Limits", testLimits},
		{"Guard", testGuard},
		{"Retrieve", testRetrieve},
		{"RetrieveKeywords", testRetrieveKeywords},
		{"EmbedderChange", testEmbedderChange},
		{"Share", testShare},
		{"ConcurrentWriters", testConcurrent},
		{"MountSubfolder", testMount},
		{"Persistence", testPersistence},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.fn(t, newStore(t))
		})
	}
}

func open(t *testing.T, op Opener, cfg storage.Config) *storage.Manager {
	t.Helper()
	m, err := op(cfg)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

// Clock is a settable clock for Config.Now.
type Clock struct {
	mu sync.Mutex
	t  time.Time
}

func NewClock() *Clock { return &Clock{t: time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)} }

func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

var ctx = context.Background()

// WantKind fails t unless err carries kind.
func WantKind(t *testing.T, err error, kind api.Kind) {
	t.Helper()
	if err == nil {
		t.Fatalf("got no error, want %s", kind)
	}
	if got := api.KindOf(err); got != kind {
		t.Fatalf("got %s (%v), want %s", got, err, kind)
	}
}

func write(t *testing.T, m *storage.Manager, agent, path, body string) storage.Version {
	t.Helper()
	v, err := m.Write(ctx, agent, path, strings.NewReader(body))
	if err != nil {
		t.Fatalf("write %s: %v", path, err)
	}
	return v
}

func read(t *testing.T, m *storage.Manager, agent, path string) string {
	t.Helper()
	r, _, err := m.Read(ctx, agent, path)
	if err != nil {
		t.Fatalf("read %s: %v", path, err)
	}
	defer r.Close()
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("read %s: %v", path, err)
	}
	return string(b)
}

func testPaths(t *testing.T, op Opener) {
	m := open(t, op, storage.Config{})
	write(t, m, "a", "/docs/./x.txt", "x")
	for _, p := range []string{"docs/x.txt", "/docs//x.txt", "docs/sub/../x.txt", "/docs/x.txt/"} {
		if got := read(t, m, "a", p); got != "x" {
			t.Errorf("read %q = %q, want the file written as /docs/./x.txt", p, got)
		}
	}
	for _, p := range []string{"../x", "/docs/../../x", "a\x00b", "a\nb", "a\\b", "\xff", strings.Repeat("n", 256), strings.Repeat("a/", 600)} {
		_, err := m.Write(ctx, "a", p, strings.NewReader("bad"))
		WantKind(t, err, api.CallerBadRequest)
	}
	_, err := m.Write(ctx, "", "x", strings.NewReader("no agent"))
	WantKind(t, err, api.CallerBadRequest)
}

func testWriteRead(t *testing.T, op Opener) {
	m := open(t, op, storage.Config{})
	v := write(t, m, "a", "notes/today.txt", "hello world")
	if v.N != 1 || v.Change != "create" || v.Size != 11 || len(v.SHA256) != 64 {
		t.Fatalf("first version = %+v, want N 1, create, 11 bytes, a sha256", v)
	}
	r, info, err := m.Read(ctx, "a", "/notes/today.txt")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(r)
	r.Close()
	if string(b) != "hello world" || info.Size != 11 || info.Version != 1 || info.SHA256 != v.SHA256 || info.Path != "/notes/today.txt" {
		t.Fatalf("read %q %+v", b, info)
	}
	if _, _, err := m.Read(ctx, "a", "/nope"); api.KindOf(err) != api.CallerNotFound {
		t.Fatalf("read of a missing file: %v, want not found", err)
	}
	_, _, err = m.Read(ctx, "a", "/notes")
	WantKind(t, err, api.CallerBadRequest)
	_, err = m.Write(ctx, "a", "/notes", strings.NewReader("over a folder"))
	WantKind(t, err, api.CallerBadRequest)
	_, err = m.Write(ctx, "a", "/notes/today.txt/inner", strings.NewReader("under a file"))
	WantKind(t, err, api.CallerBadRequest)
	// Binary content round-trips byte for byte.
	bin := []byte{0, 1, 2, 0xff, 0xfe, 0}
	if _, err := m.Write(ctx, "a", "bin", bytes.NewReader(bin)); err != nil {
		t.Fatal(err)
	}
	if got := read(t, m, "a", "bin"); got != string(bin) {
		t.Fatalf("binary read %x", got)
	}
}

func testLargeFile(t *testing.T, op Opener) {
	m := open(t, op, storage.Config{})
	big := make([]byte, 2<<20+12345)
	for i := range big {
		big[i] = byte(i * 7)
	}
	if _, err := m.Write(ctx, "a", "big.bin", bytes.NewReader(big)); err != nil {
		t.Fatal(err)
	}
	r, info, err := m.Read(ctx, "a", "big.bin")
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if info.Size != int64(len(big)) {
		t.Fatalf("size %d", info.Size)
	}
	// The reader hands out at most one chunk per call: it streams.
	buf := make([]byte, 4<<20)
	n, err := r.Read(buf)
	if err != nil || n > 1<<20 {
		t.Fatalf("first read: %d bytes, %v; want at most one 1 MiB chunk", n, err)
	}
	rest, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	if got := append(buf[:n:n], rest...); !bytes.Equal(got, big) {
		t.Fatalf("read back %d bytes, differing from the %d written", len(got), len(big))
	}
}

func testNamespaces(t *testing.T, op Opener) {
	m := open(t, op, storage.Config{})
	write(t, m, "alice", "secret.txt", "alice's")
	if _, _, err := m.Read(ctx, "bob", "secret.txt"); api.KindOf(err) != api.CallerNotFound {
		t.Fatalf("bob read alice's file: %v", err)
	}
	if _, _, err := m.Read(ctx, "bob", "../alice/secret.txt"); err == nil {
		t.Fatal("bob escaped his namespace")
	}
	l, err := m.List(ctx, "bob", "/")
	if err != nil || len(l) != 0 {
		t.Fatalf("bob's root = %v, %v; want empty", l, err)
	}
	write(t, m, "bob", "secret.txt", "bob's")
	if read(t, m, "alice", "secret.txt") != "alice's" || read(t, m, "bob", "secret.txt") != "bob's" {
		t.Fatal("same path in two namespaces is not two files")
	}
}

func testCreateList(t *testing.T, op Opener) {
	m := open(t, op, storage.Config{})
	f, err := m.CreateFile(ctx, "a", "/p/q/new.txt")
	if err != nil || f.Size != 0 || f.Dir || f.Version != 1 {
		t.Fatalf("create file: %+v %v", f, err)
	}
	write(t, m, "a", "/p/q/new.txt", "content") // an empty file is overwritten without the guard
	if f, err := m.CreateFile(ctx, "a", "/p/q/new.txt"); err != nil || f.Size != 7 {
		t.Fatalf("create of an existing file must leave it alone: %+v %v", f, err)
	}
	if _, err := m.CreateDir(ctx, "a", "/p/empty"); err != nil {
		t.Fatal(err)
	}
	if _, err := m.CreateDir(ctx, "a", "/p/empty"); err != nil {
		t.Fatalf("create dir again: %v", err)
	}
	_, err = m.CreateFile(ctx, "a", "/p/empty")
	WantKind(t, err, api.CallerBadRequest)
	_, err = m.CreateDir(ctx, "a", "/p/q/new.txt")
	WantKind(t, err, api.CallerBadRequest)
	l, err := m.List(ctx, "a", "/p")
	if err != nil {
		t.Fatal(err)
	}
	if len(l) != 2 || l[0].Path != "/p/empty" || !l[0].Dir || l[1].Path != "/p/q" || !l[1].Dir {
		t.Fatalf("list /p = %+v", l)
	}
	l, _ = m.List(ctx, "a", "/p/q")
	if len(l) != 1 || l[0].Path != "/p/q/new.txt" || l[0].Size != 7 || l[0].Dir {
		t.Fatalf("list /p/q = %+v", l)
	}
	if _, err := m.List(ctx, "a", "/missing"); api.KindOf(err) != api.CallerNotFound {
		t.Fatalf("list missing: %v", err)
	}
}

func testVersions(t *testing.T, op Opener) {
	m := open(t, op, storage.Config{MaxVersions: 3})
	for i := 1; i <= 5; i++ {
		v := write(t, m, "a", "f", fmt.Sprint("v", i))
		if v.N != i {
			t.Fatalf("write %d made version %d", i, v.N)
		}
	}
	vs, err := m.Versions(ctx, "a", "f")
	if err != nil {
		t.Fatal(err)
	}
	if len(vs) != 3 || vs[0].N != 5 || vs[1].N != 4 || vs[2].N != 3 {
		t.Fatalf("versions = %+v, want 5, 4, 3", vs)
	}
	for _, v := range vs {
		if v.Change != "write" || v.Size != 2 {
			t.Fatalf("version %+v", v)
		}
	}
	if _, err := m.Versions(ctx, "a", "missing"); api.KindOf(err) != api.CallerNotFound {
		t.Fatalf("versions of a missing file: %v", err)
	}
}

func testRollback(t *testing.T, op Opener) {
	clock := NewClock()
	m := open(t, op, storage.Config{Now: clock.Now})
	write(t, m, "a", "f", "one")
	t1 := clock.Now()
	clock.Advance(time.Minute)
	write(t, m, "a", "f", "two")
	clock.Advance(time.Minute)
	write(t, m, "a", "f", "three")
	clock.Advance(time.Minute)

	v, err := m.Rollback(ctx, "a", "f", storage.RollbackTarget{N: 1})
	if err != nil {
		t.Fatal(err)
	}
	if v.N != 4 || v.Change != "rollback" || read(t, m, "a", "f") != "two" {
		t.Fatalf("rollback 1 = %+v, content %q", v, read(t, m, "a", "f"))
	}
	if _, err := m.Rollback(ctx, "a", "f", storage.RollbackTarget{Time: t1.Add(30 * time.Second)}); err != nil {
		t.Fatal(err)
	}
	if got := read(t, m, "a", "f"); got != "one" {
		t.Fatalf("rollback to %s gave %q, want the version current then", t1, got)
	}
	_, err = m.Rollback(ctx, "a", "f", storage.RollbackTarget{N: 9})
	WantKind(t, err, api.CallerNotFound)
	_, err = m.Rollback(ctx, "a", "f", storage.RollbackTarget{Time: t1.Add(-time.Hour)})
	WantKind(t, err, api.CallerNotFound)
	_, err = m.Rollback(ctx, "a", "f", storage.RollbackTarget{})
	WantKind(t, err, api.CallerBadRequest)
	vs, _ := m.Versions(ctx, "a", "f")
	if len(vs) != 5 || vs[0].Change != "rollback" {
		t.Fatalf("versions after two rollbacks: %+v", vs)
	}
}

func testDelete(t *testing.T, op Opener) {
	m := open(t, op, storage.Config{})
	write(t, m, "a", "/d/x.txt", "x")
	write(t, m, "a", "/d/e/y.txt", "yy")
	write(t, m, "a", "/keep.txt", "k")
	if err := m.Delete(ctx, "a", "/d"); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"/d", "/d/x.txt", "/d/e/y.txt"} {
		if _, err := m.List(ctx, "a", p); api.KindOf(err) != api.CallerNotFound {
			t.Fatalf("%s after delete: %v", p, err)
		}
	}
	l, _ := m.List(ctx, "a", "/")
	if len(l) != 1 || l[0].Path != "/keep.txt" {
		t.Fatalf("root after delete = %+v", l)
	}
	if used, _ := m.Usage(ctx, "a"); used != 1 {
		t.Fatalf("usage after delete = %d, want 1", used)
	}
	vs, err := m.Versions(ctx, "a", "/d/e/y.txt")
	if err != nil || len(vs) != 2 || vs[0].Change != "delete" {
		t.Fatalf("history of a deleted file = %+v, %v", vs, err)
	}
	// Deletion is undone by rolling back, folders and all.
	if _, err := m.Rollback(ctx, "a", "/d/e/y.txt", storage.RollbackTarget{N: 1}); err != nil {
		t.Fatal(err)
	}
	if read(t, m, "a", "/d/e/y.txt") != "yy" {
		t.Fatal("rollback did not restore the deleted file")
	}
	_, err = m.Rollback(ctx, "a", "/d/x.txt", storage.RollbackTarget{N: 0, Time: time.Now().Add(time.Hour)})
	WantKind(t, err, api.CallerBadRequest) // the version current now is the deletion
	if err := m.Delete(ctx, "a", "/nope"); api.KindOf(err) != api.CallerNotFound {
		t.Fatalf("delete missing: %v", err)
	}
	WantKind(t, m.Delete(ctx, "a", "/"), api.CallerBadRequest)
}

func testBlobs(t *testing.T, op Opener) {
	m := open(t, op, storage.Config{MaxVersions: 2})
	same := strings.Repeat("shared content ", 100)
	write(t, m, "a", "one", same)
	write(t, m, "b", "two", same)
	write(t, m, "a", "three", same)
	s, err := m.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if s.Blobs != 1 || s.BlobBytes != int64(len(same)) || s.Files != 3 {
		t.Fatalf("stats %+v: one content in three files must be stored once", s)
	}
	write(t, m, "a", "f", "first")
	write(t, m, "a", "f", "second")
	write(t, m, "a", "f", "third") // "first" falls out of the two kept versions
	s, _ = m.Stats(ctx)
	if s.Blobs != 3 {
		t.Fatalf("stats %+v: want shared, second, third", s)
	}
	if _, err := m.Rollback(ctx, "a", "f", storage.RollbackTarget{N: 1}); err != nil {
		t.Fatal(err) // second, referenced again
	}
	write(t, m, "a", "f", "fourth")
	write(t, m, "a", "f", "fifth")
	s, _ = m.Stats(ctx)
	if s.Blobs != 3 { // shared, fourth, fifth
		t.Fatalf("stats %+v after the history moved on: unreferenced blobs must be freed", s)
	}
}

func testLimits(t *testing.T, op Opener) {
	m := open(t, op, storage.Config{MaxFileBytes: 1000, QuotaBytes: 2000})
	write(t, m, "a", "f", "small")
	_, err := m.Write(ctx, "a", "f", bytes.NewReader(make([]byte, 1001)))
	WantKind(t, err, api.CallerTooLarge)
	_, err = m.Write(ctx, "a", "g", bytes.NewReader(make([]byte, 1001)))
	WantKind(t, err, api.CallerTooLarge)
	if read(t, m, "a", "f") != "small" {
		t.Fatal("a refused write changed the file")
	}
	if _, err := m.List(ctx, "a", "g"); api.KindOf(err) != api.CallerNotFound {
		t.Fatal("a refused write created the file")
	}

	write(t, m, "a", "big1", strings.Repeat("x", 1000))
	write(t, m, "a", "big2", strings.Repeat("y", 990))
	before, _ := m.Stats(ctx)
	_, err = m.Write(ctx, "a", "/new/dir/big3", strings.NewReader(strings.Repeat("z", 10)))
	WantKind(t, err, api.PolicyQuota)
	after, _ := m.Stats(ctx)
	if before != after {
		t.Fatalf("a write over quota left traces: %+v then %+v", before, after)
	}
	if _, err := m.List(ctx, "a", "/new"); api.KindOf(err) != api.CallerNotFound {
		t.Fatal("a write over quota created its folders")
	}
	if used, _ := m.Usage(ctx, "a"); used != 1995 {
		t.Fatalf("usage %d, want 1995", used)
	}
	// Replacing a file with a smaller one, or deleting, frees room.
	write(t, m, "a", "big1", "tiny")
	write(t, m, "a", "new", strings.Repeat("z", 500))
	// Other agents have their own quota.
	write(t, m, "b", "big", strings.Repeat("b", 1000))
	// A stream that fails writes nothing.
	_, err = m.Write(ctx, "a", "broken", io.MultiReader(strings.NewReader("partial"), errReader{}))
	if err == nil {
		t.Fatal("a failing stream was accepted")
	}
	if _, err := m.List(ctx, "a", "broken"); api.KindOf(err) != api.CallerNotFound {
		t.Fatal("a failing stream created the file")
	}
}

type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, errors.New("connection reset") }

func testGuard(t *testing.T, op Opener) {
	refuse := api.Errorf(api.PolicyDenied, "needs approval")
	var mu sync.Mutex
	var asked []storage.Action
	deny := map[string]bool{}
	m := open(t, op, storage.Config{Guard: func(_ context.Context, a storage.Action) error {
		mu.Lock()
		defer mu.Unlock()
		asked = append(asked, a)
		if deny[a.Op] {
			return refuse
		}
		return nil
	}})
	setDeny := func(ops ...string) {
		mu.Lock()
		deny = map[string]bool{}
		for _, o := range ops {
			deny[o] = true
		}
		asked = nil
		mu.Unlock()
	}
	setDeny("delete", "overwrite", "rollback")
	m.CreateFile(ctx, "a", "f")
	write(t, m, "a", "f", "first") // over an empty file: nothing to lose, not asked
	write(t, m, "a", "g", "new")   // a new file: not asked
	if len(asked) != 0 {
		t.Fatalf("guard asked about %+v; creating destroys nothing", asked)
	}
	if _, err := m.Write(ctx, "a", "f", strings.NewReader("second")); !errors.Is(err, refuse) {
		t.Fatalf("overwrite: %v, want the guard's error unchanged", err)
	}
	if err := m.Delete(ctx, "a", "/f"); !errors.Is(err, refuse) {
		t.Fatalf("delete: %v", err)
	}
	if _, err := m.Rollback(ctx, "a", "f", storage.RollbackTarget{N: 1}); !errors.Is(err, refuse) {
		t.Fatalf("rollback: %v", err)
	}
	if read(t, m, "a", "f") != "first" {
		t.Fatal("a refused operation changed the file")
	}
	want := []storage.Action{{Agent: "a", Op: "overwrite", Path: "/f"}, {Agent: "a", Op: "delete", Path: "/f"}, {Agent: "a", Op: "rollback", Path: "/f"}}
	if fmt.Sprint(asked) != fmt.Sprint(want) {
		t.Fatalf("guard asked %+v, want %+v", asked, want)
	}
	setDeny()
	write(t, m, "a", "f", "second")
	if err := m.Delete(ctx, "a", "f"); err != nil {
		t.Fatal(err)
	}
}

func testRetrieve(t *testing.T, op Opener) {
	m := open(t, op, storage.Config{})
	docs := map[string]string{
		"/kitchen/bread.txt": "Knead the dough for ten minutes, let the bread rise, then bake the loaf at 220 degrees.",
		"/garden/roses.txt":  "Prune roses in late winter; feed the rose bushes with compost and water the garden.",
		"/code/server.go":    "The HTTP server listens on a port and serves requests with handlers and middleware.",
		"/notes/taxes.md":    "File the tax return before April; keep receipts for deductions and invoices.",
	}
	for p, body := range docs {
		write(t, m, "a", p, body)
	}
	write(t, m, "a", "/blob.bin", "\x00\x01bread bread bread\x00")
	write(t, m, "other", "/bread.txt", "bread bread bread bake bread loaf dough")

	hits, err := m.Retrieve(ctx, "a", storage.Query{Text: "how long to bake bread dough", K: 3})
	if err != nil {
		t.Fatal(err)
	}
	if len(hits) == 0 || hits[0].Path != "/kitchen/bread.txt" || hits[0].Snippet == "" || hits[0].Score <= 0 {
		t.Fatalf("hits = %+v, want /kitchen/bread.txt first with a snippet", hits)
	}
	for _, h := range hits {
		if h.Path == "/blob.bin" || h.Path == "/bread.txt" {
			t.Fatalf("hit %s: binary files are not indexed, other agents' files never seen", h.Path)
		}
	}
	if len(hits) > 3 {
		t.Fatalf("%d hits, asked for 3", len(hits))
	}
	hits, _ = m.Retrieve(ctx, "a", storage.Query{Text: "web server handlers"})
	if len(hits) == 0 || hits[0].Path != "/code/server.go" {
		t.Fatalf("server query: %+v", hits)
	}
	// An overwrite re-indexes, a delete un-indexes.
	write(t, m, "a", "/code/server.go", "Sourdough starter: feed it flour and water, then fold it into the dough.")
	if err := m.Delete(ctx, "a", "/kitchen"); err != nil {
		t.Fatal(err)
	}
	hits, _ = m.Retrieve(ctx, "a", storage.Query{Text: "bread dough", K: 10})
	if len(hits) == 0 || hits[0].Path != "/code/server.go" {
		t.Fatalf("after changes: %+v", hits)
	}
	for _, h := range hits {
		if h.Path == "/kitchen/bread.txt" {
			t.Fatal("a deleted file was retrieved")
		}
	}
	_, err = m.Retrieve(ctx, "a", storage.Query{Text: "  ... "})
	WantKind(t, err, api.CallerBadRequest)
}

func testRetrieveKeywords(t *testing.T, op Opener) {
	m := open(t, op, storage.Config{})
	write(t, m, "a", "/a.txt", "Quarterly revenue report for the sales team with revenue charts.")
	write(t, m, "a", "/b.txt", "Quarterly revenue forecast prepared by finance, confidential.")
	write(t, m, "a", "/c.txt", "Meeting notes: the sales team discussed the holiday party.")
	hits, err := m.Retrieve(ctx, "a", storage.Query{Text: "quarterly revenue", Keywords: []string{"confidential"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(hits) != 1 || hits[0].Path != "/b.txt" {
		t.Fatalf("keyword filter: %+v, want only /b.txt", hits)
	}
	hits, _ = m.Retrieve(ctx, "a", storage.Query{Keywords: []string{"sales team"}})
	if len(hits) != 2 {
		t.Fatalf("keywords alone: %+v, want /a.txt and /c.txt", hits)
	}
	hits, _ = m.Retrieve(ctx, "a", storage.Query{Text: "revenue", Keywords: []string{"nonexistentword"}})
	if len(hits) != 0 {
		t.Fatalf("a keyword no file holds must filter everything: %+v", hits)
	}
}

// renamed is an embedder that embeds like Hashed under another name, so a store written
// with Hashed must be re-embedded for it.
type renamed struct {
	embed.Hashed
	calls *int
	mu    *sync.Mutex
}

func (r renamed) Name() string { return "renamed-" + r.Hashed.Name() }

func (r renamed) Embed(ctx context.Context, texts []string) ([][]float32, error) {
	r.mu.Lock()
	*r.calls += len(texts)
	r.mu.Unlock()
	return r.Hashed.Embed(ctx, texts)
}

func testEmbedderChange(t *testing.T, op Opener) {
	m, err := op(storage.Config{})
	if err != nil {
		t.Fatal(err)
	}
	write(t, m, "a", "/stars.txt", "Telescopes show galaxies, nebulae and distant stars.")
	write(t, m, "a", "/soup.txt", "Simmer onions and carrots for a vegetable soup.")
	m.Close()
	calls := 0
	emb := renamed{Hashed: embed.Hashed{Dim: 64}, calls: &calls, mu: &sync.Mutex{}}
	m = open(t, op, storage.Config{Embedder: emb})
	// "astronomy telescope" shares no word with stars.txt in any inflection the keyword
	// index knows except telescope; the vector side must work in the new space.
	hits, err := m.Retrieve(ctx, "a", storage.Query{Text: "galaxies telescopes"})
	if err != nil || len(hits) == 0 || hits[0].Path != "/stars.txt" {
		t.Fatalf("hits %+v, %v", hits, err)
	}
	if calls != 3 { // two documents re-embedded, one query
		t.Fatalf("embedder called for %d texts, want 3 (re-embed both files once, then the query)", calls)
	}
	m.Retrieve(ctx, "a", storage.Query{Text: "soup"})
	if calls != 4 {
		t.Fatalf("embedder called for %d texts; re-embedding must happen once", calls)
	}
}

func testShare(t *testing.T, op Opener) {
	clock := NewClock()
	m := open(t, op, storage.Config{Now: clock.Now})
	write(t, m, "a", "/out/report.txt", "v1")
	s, err := m.Share(ctx, "a", "out/report.txt", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Token) < 22 || s.Path != "/out/report.txt" || s.Agent != "a" || !s.Expires.Equal(clock.Now().Add(time.Hour)) {
		t.Fatalf("share %+v", s)
	}
	s2, _ := m.Share(ctx, "a", "out/report.txt", 0)
	if s2.Token == s.Token || !s2.Expires.Equal(clock.Now().Add(24*time.Hour)) {
		t.Fatalf("second share %+v: tokens must differ, default ttl 24h", s2)
	}
	readShared := func(tok string) (string, error) {
		r, info, err := m.OpenShared(ctx, tok)
		if err != nil {
			return "", err
		}
		defer r.Close()
		b, _ := io.ReadAll(r)
		if info.Path != "report.txt" {
			t.Fatalf("shared file info path %q, want the name only", info.Path)
		}
		return string(b), nil
	}
	if got, err := readShared(s.Token); err != nil || got != "v1" {
		t.Fatalf("open shared: %q %v", got, err)
	}
	write(t, m, "a", "/out/report.txt", "v2")
	if got, _ := readShared(s.Token); got != "v2" {
		t.Fatalf("a share follows the file: got %q", got)
	}
	WantKind(t, m.Unshare(ctx, "b", s.Token), api.CallerNotFound)
	if err := m.Unshare(ctx, "a", s.Token); err != nil {
		t.Fatal(err)
	}
	_, err = readShared(s.Token)
	WantKind(t, err, api.CallerNotFound)
	clock.Advance(25 * time.Hour)
	_, err = readShared(s2.Token)
	WantKind(t, err, api.CallerNotFound)
	_, err = readShared("made-up")
	WantKind(t, err, api.CallerNotFound)
	_, err = m.Share(ctx, "a", "/missing", 0)
	WantKind(t, err, api.CallerNotFound)
	_, err = m.Share(ctx, "a", "/out", 0)
	WantKind(t, err, api.CallerNotFound)
	_, err = m.Share(ctx, "a", "/out/report.txt", -time.Second)
	WantKind(t, err, api.CallerBadRequest)
}

func testConcurrent(t *testing.T, op Opener) {
	m := open(t, op, storage.Config{MaxVersions: 1000})
	const writers, each = 6, 8
	var wg sync.WaitGroup
	errs := make(chan error, writers*each)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				if _, err := m.Write(ctx, "a", "/shared.txt", strings.NewReader(fmt.Sprintf("writer %d write %d", w, i))); err != nil {
					errs <- err
				}
				if _, err := m.Write(ctx, "a", fmt.Sprintf("/own/%d.txt", w), strings.NewReader(fmt.Sprint(i))); err != nil {
					errs <- err
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	vs, err := m.Versions(ctx, "a", "/shared.txt")
	if err != nil {
		t.Fatal(err)
	}
	if len(vs) != writers*each {
		t.Fatalf("%d versions, want %d: a concurrent write was lost", len(vs), writers*each)
	}
	for i, v := range vs {
		if v.N != writers*each-i {
			t.Fatalf("version numbers %d at %d: not one per write, in order", v.N, i)
		}
	}
	if used, _ := m.Usage(ctx, "a"); used != int64(len(read(t, m, "a", "/shared.txt"))+writers) {
		t.Fatalf("usage %d drifted under concurrent writes", used)
	}
}

func testMount(t *testing.T, op Opener) {
	m := open(t, op, storage.Config{})
	mt, err := m.Mount(ctx, "a", "projects/x")
	if err != nil || mt.Root != "projects/x" || mt.Host {
		t.Fatalf("mount %+v %v", mt, err)
	}
	write(t, m, "a", "/plan.txt", "the plan for launching rockets")
	if _, _, err := m.Read(ctx, "a", "../escape"); err == nil {
		t.Fatal("a mounted agent climbed out of its mount")
	}
	hits, _ := m.Retrieve(ctx, "a", storage.Query{Text: "rockets plan"})
	if len(hits) != 1 || hits[0].Path != "/plan.txt" {
		t.Fatalf("retrieve under a mount: %+v", hits)
	}
	if _, err := m.Mount(ctx, "a", ""); err != nil {
		t.Fatal(err)
	}
	if read(t, m, "a", "/projects/x/plan.txt") != "the plan for launching rockets" {
		t.Fatal("the mounted folder is not part of the namespace")
	}
	_, err = m.Mount(ctx, "a", "/etc")
	WantKind(t, err, api.PolicyDenied) // no host roots configured
}

func testPersistence(t *testing.T, op Opener) {
	m, err := op(storage.Config{})
	if err != nil {
		t.Fatal(err)
	}
	write(t, m, "a", "/keep/me.txt", "persistent")
	write(t, m, "a", "/keep/me.txt", "persistent 2")
	s, _ := m.Share(ctx, "a", "/keep/me.txt", 0)
	if _, err := m.Mount(ctx, "b", "home"); err != nil {
		t.Fatal(err)
	}
	write(t, m, "b", "/x.txt", "b's")
	m.Close()
	_, err = m.List(ctx, "a", "/")
	WantKind(t, err, api.KernelShuttingDown)

	m = open(t, op, storage.Config{})
	if read(t, m, "a", "/keep/me.txt") != "persistent 2" {
		t.Fatal("content lost on reopen")
	}
	if vs, _ := m.Versions(ctx, "a", "/keep/me.txt"); len(vs) != 2 {
		t.Fatalf("history lost on reopen: %+v", vs)
	}
	if r, _, err := m.OpenShared(ctx, s.Token); err != nil {
		t.Fatalf("share lost on reopen: %v", err)
	} else {
		r.Close()
	}
	if mt, _ := m.CurrentMount(ctx, "b"); mt.Root != "home" || read(t, m, "b", "/x.txt") != "b's" {
		t.Fatalf("mount lost on reopen: %+v", mt)
	}
	hits, err := m.Retrieve(ctx, "a", storage.Query{Text: "persistent"})
	if err != nil || len(hits) != 1 {
		t.Fatalf("index lost on reopen: %+v %v", hits, err)
	}
}
