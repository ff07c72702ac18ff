package server

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aios-go/aios/api"
	"github.com/aios-go/aios/internal/kernel"
	"github.com/aios-go/aios/internal/sched"
	"github.com/aios-go/aios/internal/storage"
	_ "modernc.org/sqlite" // the direct baseline's driver, the one the storage backend uses
)

// The storage benchmarks measure AIOS's /query storage syscalls end to end (HTTP, JSON,
// the kernel's storage queue, the storage manager, SQLite) against the least a program
// can do for the same bytes: database/sql on a plain SQLite table, in the same file
// mode and on the same disk, in the same run. They print throughput and the ratio, and
// assert nothing.
//
//	go test -run '^$' -bench 'Storage' -benchtime 2000x ./internal/server/

// directSQLiteParams are the storage backend's connection settings (sqliteParams in
// internal/storage/sqlite.go): WAL, synchronous=FULL so every commit is synced, and the
// same busy timeout and transaction lock, so the baseline pays the same fsyncs.
const directSQLiteParams = "?_pragma=journal_mode(WAL)&_pragma=synchronous(FULL)&_pragma=busy_timeout(10000)&_txlock=immediate"

// storageKernel is an in-process kernel whose storage module is a Manager on a fresh
// SQLite file, served over HTTP.
type storageKernel struct {
	url string
	m   *storage.Manager
	hc  *http.Client
}

func newStorageKernel(b *testing.B) *storageKernel {
	b.Helper()
	m, err := storage.Open(context.Background(), storage.Config{Path: filepath.Join(b.TempDir(), "storage.db")})
	if err != nil {
		b.Fatal(err)
	}
	svc := kernel.ServiceFunc(func(ctx context.Context, r kernel.Request) (any, error) {
		p, _ := r.Args.(*api.StorageParams)
		return m.Syscall(ctx, r.Agent, r.Op, p)
	})
	k, err := kernel.New(kernel.Options{Services: map[sched.Module]kernel.Service{sched.Storage: svc}},
		[]kernel.CoreConfig{{Model: "sim-test", Backend: "sim", Core: fastSim(b, 4)}})
	if err != nil {
		m.Close()
		b.Fatal(err)
	}
	ts := httptest.NewServer(New(k, Options{}).Handler())
	sk := &storageKernel{url: ts.URL, m: m, hc: &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}}
	b.Cleanup(func() {
		sk.hc.CloseIdleConnections()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = k.Shutdown(ctx)
		ts.Close()
		m.Close()
	})
	return sk
}

// query runs one storage syscall through /query and returns response_message; a reply
// other than HTTP 200 with status_code 200 is an error.
func (sk *storageKernel) query(op string, p api.StorageParams) (string, error) {
	data, err := json.Marshal(api.StorageQuery{QueryClass: api.QueryStorage, OperationType: op, Params: p})
	if err != nil {
		return "", err
	}
	body, err := json.Marshal(api.QueryRequest{AgentName: "bench", QueryType: api.QueryStorage, QueryData: data})
	if err != nil {
		return "", err
	}
	resp, err := sk.hc.Post(sk.url+"/query", "application/json", bytes.NewReader(body))
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	var out struct {
		Response api.ModuleResponse `json:"response"`
	}
	if resp.StatusCode != http.StatusOK || json.Unmarshal(raw, &out) != nil ||
		out.Response.StatusCode != http.StatusOK || out.Response.ResponseMessage == nil {
		return "", fmt.Errorf("%s %s: HTTP %d: %.300s", op, p.Target(), resp.StatusCode, raw)
	}
	return *out.Response.ResponseMessage, nil
}

func directSQLite(b *testing.B) *sql.DB {
	b.Helper()
	db, err := sql.Open("sqlite", "file:"+filepath.Join(b.TempDir(), "direct.db")+directSQLiteParams)
	if err != nil {
		b.Fatal(err)
	}
	db.SetMaxOpenConns(8)
	b.Cleanup(func() { db.Close() })
	if _, err := db.Exec(`CREATE TABLE files (path TEXT PRIMARY KEY, data BLOB NOT NULL)`); err != nil {
		b.Fatal(err)
	}
	return db
}

// benchText is n bytes of words, different for each seed, so neither the store's dedup
// nor its index sees the same content twice.
func benchText(seed uint64, n int) string {
	r := rand.New(rand.NewPCG(seed, 11))
	var s strings.Builder
	for s.Len() < n {
		s.WriteString(benchWords[r.IntN(len(benchWords))])
		s.WriteByte(' ')
	}
	return s.String()[:n]
}

var benchWords = strings.Fields(`river mountain forest desert ocean island valley canyon glacier volcano
meadow harbor bridge tower castle garden library museum market station airport engine rocket planet
comet galaxy photon neutron proton crystal copper silver carbon oxygen helium kernel scheduler memory
storage network socket thread process signal buffer cache queue stack heap vector matrix tensor
gradient model agent policy reward budget invoice receipt report summary`)

// BenchmarkStorageQuery compares writes and reads of 4 KB text files through /query
// with the same INSERTs and SELECTs on a plain SQLite table, by 1 and by 4 callers.
// x-direct is the mean time of a /query call over that of its direct counterpart.
func BenchmarkStorageQuery(b *testing.B) {
	for _, conc := range []int{1, 4} {
		b.Run(fmt.Sprintf("write/conc=%d", conc), func(b *testing.B) { benchStorageWrite(b, conc) })
		b.Run(fmt.Sprintf("read/conc=%d", conc), func(b *testing.B) { benchStorageRead(b, conc) })
	}
}

const benchFileBytes = 4 << 10

func benchStorageWrite(b *testing.B, conc int) {
	sk, db := newStorageKernel(b), directSQLite(b)
	// 500 paths: most writes overwrite a file with history, as agents' writes do.
	path := func(i int64) string { return fmt.Sprintf("/docs/%d.txt", i%500) }
	var qi, di atomic.Int64
	viaQuery := func() error {
		i := qi.Add(1)
		content := benchText(uint64(i), benchFileBytes)
		_, err := sk.query(api.StorageWrite, api.StorageParams{FilePath: path(i), Content: &content})
		return err
	}
	direct := func() error {
		i := di.Add(1)
		_, err := db.Exec(`INSERT INTO files (path, data) VALUES ($1, $2)
			ON CONFLICT (path) DO UPDATE SET data = excluded.data`, path(i), []byte(benchText(uint64(i), benchFileBytes)))
		return err
	}
	run(b, conc, conc*4, viaQuery)
	run(b, conc, conc*4, direct)

	b.ResetTimer()
	q, d := timed(b, conc, viaQuery), timed(b, conc, direct)
	b.StopTimer()
	reportStorage(b, "writes/s", q, d)
}

func benchStorageRead(b *testing.B, conc int) {
	sk, db := newStorageKernel(b), directSQLite(b)
	const files = 200
	ctx := context.Background()
	for i := range files {
		content := benchText(uint64(i), benchFileBytes)
		p := fmt.Sprintf("/docs/%d.txt", i)
		if _, err := sk.m.Write(ctx, "bench", p, strings.NewReader(content)); err != nil {
			b.Fatal(err)
		}
		if _, err := db.Exec(`INSERT INTO files (path, data) VALUES ($1, $2)`, p, []byte(content)); err != nil {
			b.Fatal(err)
		}
	}
	var qi, di atomic.Int64
	viaQuery := func() error {
		got, err := sk.query(api.StorageRead, api.StorageParams{FilePath: fmt.Sprintf("/docs/%d.txt", qi.Add(1)%files)})
		if err == nil && len(got) != benchFileBytes {
			err = fmt.Errorf("read %d bytes, want %d", len(got), benchFileBytes)
		}
		return err
	}
	direct := func() error {
		var data []byte
		err := db.QueryRow(`SELECT data FROM files WHERE path = $1`, fmt.Sprintf("/docs/%d.txt", di.Add(1)%files)).Scan(&data)
		if err == nil && len(data) != benchFileBytes {
			err = fmt.Errorf("read %d bytes, want %d", len(data), benchFileBytes)
		}
		return err
	}
	run(b, conc, conc*4, viaQuery)
	run(b, conc, conc*4, direct)

	b.ResetTimer()
	q, d := timed(b, conc, viaQuery), timed(b, conc, direct)
	b.StopTimer()
	reportStorage(b, "reads/s", q, d)
}

// armResult is one arm of a comparison: its sorted latencies and its wall time.
type armResult struct {
	lat  []time.Duration
	wall time.Duration
}

func timed(b *testing.B, conc int, call func() error) armResult {
	t0 := time.Now()
	lat, _, _ := run(b, conc, b.N, call)
	return armResult{lat: lat, wall: time.Since(t0)}
}

func reportStorage(b *testing.B, unit string, q, d armResult) {
	n := float64(b.N)
	b.ReportMetric(n/q.wall.Seconds(), "query-"+unit)
	b.ReportMetric(n/d.wall.Seconds(), "direct-"+unit)
	b.ReportMetric(float64(q.wall)/float64(d.wall), "x-direct")
	b.ReportMetric(quantileMicros(q.lat, 0.5), "query-p50-µs")
	b.ReportMetric(quantileMicros(d.lat, 0.5), "direct-p50-µs")
	b.ReportMetric(quantileMicros(q.lat, 0.99), "query-p99-µs")
}

func quantileMicros(sorted []time.Duration, q float64) float64 {
	return float64(sorted[int(q*float64(len(sorted)-1))].Nanoseconds()) / 1e3
}

// retrieveFiles is the store BenchmarkStorageRetrieveQuery searches. The manager's own
// latency at 10k files is internal/storage's BenchmarkRetrieve10k; seeding 10k synced
// writes here would add about 30 s on 2 cores for the same search. This one measures
// what /query adds, against the same Manager searched directly in the same run.
const retrieveFiles = 2000

// BenchmarkStorageRetrieveQuery reports retrieve's p50 and p99 through /query, and
// through the Manager it calls, over the same store of retrieveFiles 1 KB text files.
func BenchmarkStorageRetrieveQuery(b *testing.B) {
	sk := newStorageKernel(b)
	ctx := context.Background()
	t0 := time.Now()
	for i := range retrieveFiles {
		p := fmt.Sprintf("/corpus/%02d/%d.txt", i%50, i)
		if _, err := sk.m.Write(ctx, "bench", p, strings.NewReader(benchText(uint64(i)+1e6, 1<<10))); err != nil {
			b.Fatal(err)
		}
	}
	b.Logf("seeded %d files in %v", retrieveFiles, time.Since(t0))
	query := func(r *rand.Rand) string {
		return benchWords[r.IntN(len(benchWords))] + " " + benchWords[r.IntN(len(benchWords))] + " " + benchWords[r.IntN(len(benchWords))]
	}
	k := api.FlexInt(5)
	qr := rand.New(rand.NewPCG(1, 2))
	viaQuery := func() error {
		got, err := sk.query(api.StorageRetrieve, api.StorageParams{QueryText: query(qr), K: &k})
		if err == nil && strings.HasPrefix(got, "no file matches") {
			err = fmt.Errorf("retrieve found nothing")
		}
		return err
	}
	mr := rand.New(rand.NewPCG(1, 2))
	direct := func() error {
		hits, err := sk.m.Retrieve(ctx, "bench", storage.Query{Text: query(mr), K: 5})
		if err == nil && len(hits) == 0 {
			err = fmt.Errorf("retrieve found nothing")
		}
		return err
	}
	run(b, 1, 8, viaQuery)
	run(b, 1, 8, direct)

	// b.Loop runs the function once, so the store is seeded once; both arms take turns
	// in each iteration and are timed apart.
	var q, d []time.Duration
	for b.Loop() {
		t0 := time.Now()
		if err := viaQuery(); err != nil {
			b.Fatal(err)
		}
		t1 := time.Now()
		if err := direct(); err != nil {
			b.Fatal(err)
		}
		q, d = append(q, t1.Sub(t0)), append(d, time.Since(t1))
	}
	var qSum, dSum time.Duration
	for i := range q {
		qSum, dSum = qSum+q[i], dSum+d[i]
	}
	slices.Sort(q)
	slices.Sort(d)
	ms := func(lat []time.Duration, p float64) float64 { return quantileMicros(lat, p) / 1e3 }
	b.ReportMetric(ms(q, 0.5), "query-p50-ms")
	b.ReportMetric(ms(q, 0.99), "query-p99-ms")
	b.ReportMetric(ms(d, 0.5), "manager-p50-ms")
	b.ReportMetric(ms(d, 0.99), "manager-p99-ms")
	b.ReportMetric(float64(qSum)/float64(dSum), "x-manager")
}
