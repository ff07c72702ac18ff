package access

import (
	"context"
	"net/http"
	"path/filepath"
	"testing"
)

// BenchmarkCheck is the gate's cost per syscall: policies, quotas, and the audit entry
// (group-committed to SQLite), with calls arriving in parallel as they do in the kernel.
func BenchmarkCheck(b *testing.B) {
	ctx := context.Background()
	m, err := Open(ctx, Options{Store: StoreConfig{Path: filepath.Join(b.TempDir(), "a.db")}})
	if err != nil {
		b.Fatal(err)
	}
	defer m.Close()
	m.Directory.AddAgent(ctx, Agent{Name: "alice", Groups: []string{"g"}})
	m.Quotas.Set(ctx, Scope{ScopeAgent, "alice"}, Limits{MaxConcurrent: 1 << 20})
	p, _ := m.Local(ctx, "alice")
	b.SetParallelism(8)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			d, err := m.Check(ctx, p, StorageRead, Namespace("alice"), Context{Path: "/x"})
			if err != nil {
				b.Fatal(err)
			}
			d.Release(0)
		}
	})
}

// BenchmarkEvaluate is the policies alone.
func BenchmarkEvaluate(b *testing.B) {
	ctx := context.Background()
	m, err := Open(ctx, Options{Store: StoreConfig{Path: filepath.Join(b.TempDir(), "a.db")}})
	if err != nil {
		b.Fatal(err)
	}
	defer m.Close()
	m.Directory.AddAgent(ctx, Agent{Name: "alice", Groups: []string{"g"}})
	p, _ := m.Local(ctx, "alice")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := m.Evaluate(ctx, p, StorageRead, Namespace("alice"), Context{Path: "/x"}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkAuthenticate is a request's key check (cached).
func BenchmarkAuthenticate(b *testing.B) {
	ctx := context.Background()
	m, err := Open(ctx, Options{Store: StoreConfig{Path: filepath.Join(b.TempDir(), "a.db")}})
	if err != nil {
		b.Fatal(err)
	}
	defer m.Close()
	m.Directory.AddAgent(ctx, Agent{Name: "alice"})
	key, _, _ := m.Keys.Issue(ctx, KindAgent, "alice")
	h := http.Header{"Authorization": {"Bearer " + key}}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := m.Authenticate(ctx, h); err != nil {
			b.Fatal(err)
		}
	}
}
