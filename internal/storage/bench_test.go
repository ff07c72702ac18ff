package storage_test

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"io"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aios-go/aios/internal/storage"
)

// The baseline is the least a store can do for the same bytes: one INSERT (or SELECT)
// of the content into a plain SQLite table, in the same mode (WAL, synchronous=FULL),
// on the same disk, in the same run. The ratio is what versions, dedup, quota, folders
// and indexing cost on top.

func rawSQLite(b *testing.B) *sql.DB {
	db, err := sql.Open("sqlite", "file:"+filepath.Join(b.TempDir(), "raw.db")+
		"?_pragma=journal_mode(WAL)&_pragma=synchronous(FULL)&_pragma=busy_timeout(10000)")
	if err != nil {
		b.Fatal(err)
	}
	if _, err := db.Exec(`CREATE TABLE files (path TEXT PRIMARY KEY, data BLOB NOT NULL)`); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	return db
}

func benchManager(b *testing.B) *storage.Manager {
	m, err := storage.Open(context.Background(), storage.Config{Path: filepath.Join(b.TempDir(), "storage.db")})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { m.Close() })
	return m
}

// text makes n bytes of words drawn by Zipf's law from a 20k-word vocabulary, as in
// natural text: a few words in every file, most in few. Each seed gives different text,
// so neither dedup nor the index sees the same content twice.
func text(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, 7))
	z := rand.NewZipf(r, 1.1, 2, uint64(len(vocab)-1))
	var buf bytes.Buffer
	for buf.Len() < n {
		buf.WriteString(vocab[z.Uint64()])
		buf.WriteByte(' ')
	}
	return buf.Bytes()[:n]
}

// vocab is made-up words of two to four syllables.
var vocab = func() []string {
	syl := strings.Fields("ka ri mo te su na lo vi pe ga ru zo shi ta me ko ni ba do fu")
	r := rand.New(rand.NewPCG(42, 42))
	seen := map[string]bool{}
	var out []string
	for len(out) < 20_000 {
		var w strings.Builder
		for range 2 + r.IntN(3) {
			w.WriteString(syl[r.IntN(len(syl))])
		}
		if !seen[w.String()] {
			seen[w.String()] = true
			out = append(out, w.String())
		}
	}
	return out
}()

func BenchmarkWrite(b *testing.B) {
	ctx := context.Background()
	m, raw := benchManager(b), rawSQLite(b)
	const size = 4 << 10
	var inManager, inRaw time.Duration
	for i := 0; b.Loop(); i++ {
		body := text(uint64(i), size)
		path := fmt.Sprintf("/docs/%d.txt", i%500)
		t0 := time.Now()
		if _, err := m.Write(ctx, "bench", path, bytes.NewReader(body)); err != nil {
			b.Fatal(err)
		}
		t1 := time.Now()
		if _, err := raw.Exec(`INSERT INTO files (path, data) VALUES ($1, $2)
			ON CONFLICT (path) DO UPDATE SET data = excluded.data`, path, body); err != nil {
			b.Fatal(err)
		}
		inManager += t1.Sub(t0)
		inRaw += time.Since(t1)
	}
	report(b, inManager, inRaw)
}

func BenchmarkRead(b *testing.B) {
	ctx := context.Background()
	m, raw := benchManager(b), rawSQLite(b)
	const files, size = 200, 4 << 10
	for i := range files {
		body := text(uint64(i), size)
		path := fmt.Sprintf("/docs/%d.txt", i)
		if _, err := m.Write(ctx, "bench", path, bytes.NewReader(body)); err != nil {
			b.Fatal(err)
		}
		if _, err := raw.Exec(`INSERT INTO files (path, data) VALUES ($1, $2)`, path, body); err != nil {
			b.Fatal(err)
		}
	}
	var inManager, inRaw time.Duration
	for i := 0; b.Loop(); i++ {
		path := fmt.Sprintf("/docs/%d.txt", i%files)
		t0 := time.Now()
		r, _, err := m.Read(ctx, "bench", path)
		if err != nil {
			b.Fatal(err)
		}
		got, _ := io.ReadAll(r)
		r.Close()
		t1 := time.Now()
		var data []byte
		if err := raw.QueryRow(`SELECT data FROM files WHERE path = $1`, path).Scan(&data); err != nil {
			b.Fatal(err)
		}
		inManager += t1.Sub(t0)
		inRaw += time.Since(t1)
		if len(got) != size || len(data) != size {
			b.Fatal("short read")
		}
	}
	report(b, inManager, inRaw)
}

func report(b *testing.B, inManager, inRaw time.Duration) {
	n := float64(b.N)
	b.ReportMetric(float64(inManager.Microseconds())/n, "manager-us/op")
	b.ReportMetric(float64(inRaw.Microseconds())/n, "raw-sqlite-us/op")
	b.ReportMetric(float64(inManager)/float64(inRaw), "x-raw")
}

// The 10k-file store is built once per process: through the Manager, every file is a
// synced transaction, and building it dominates the benchmark otherwise.
var retrieveStore struct {
	once sync.Once
	dir  string
	err  error
}

func BenchmarkRetrieve10k(b *testing.B) {
	ctx := context.Background()
	const files = 10_000
	retrieveStore.once.Do(func() {
		retrieveStore.dir, retrieveStore.err = buildStore(files)
	})
	if retrieveStore.err != nil {
		b.Fatal(retrieveStore.err)
	}
	m, err := storage.Open(ctx, storage.Config{Path: filepath.Join(retrieveStore.dir, "storage.db")})
	if err != nil {
		b.Fatal(err)
	}
	defer m.Close()
	if _, err := m.Retrieve(ctx, "bench", storage.Query{Text: "warm"}); err != nil {
		b.Fatal(err)
	}
	r := rand.New(rand.NewPCG(1, 2))
	var lat []time.Duration
	for b.Loop() {
		// Words of middling frequency, as a query's content words are.
		word := func() string { return vocab[50+r.IntN(1000)] }
		q := word() + " " + word() + " " + word()
		t0 := time.Now()
		hits, err := m.Retrieve(ctx, "bench", storage.Query{Text: q, K: 5})
		if err != nil || len(hits) == 0 {
			b.Fatalf("retrieve %q: %v, %d hits", q, err, len(hits))
		}
		lat = append(lat, time.Since(t0))
	}
	slices.Sort(lat)
	ms := func(p float64) float64 { return float64(lat[int(p*float64(len(lat)-1))]) / 1e6 }
	b.ReportMetric(ms(0.50), "p50-ms")
	b.ReportMetric(ms(0.99), "p99-ms")
}

func buildStore(files int) (string, error) {
	dir, err := tempDir()
	if err != nil {
		return "", err
	}
	ctx := context.Background()
	m, err := storage.Open(ctx, storage.Config{Path: filepath.Join(dir, "storage.db")})
	if err != nil {
		return "", err
	}
	defer m.Close()
	for i := range files {
		body := text(uint64(i)+1e6, 1<<10)
		if _, err := m.Write(ctx, "bench", fmt.Sprintf("/corpus/%03d/%d.txt", i%100, i), bytes.NewReader(body)); err != nil {
			return "", err
		}
	}
	return dir, nil
}
