package storage_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aios-go/aios/internal/storage"
	"github.com/aios-go/aios/internal/storage/storagetest"
	"github.com/aios-go/aios/internal/testleak"
	"github.com/jackc/pgx/v5"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, testleak.Ignore()...)
}

func TestSQLite(t *testing.T) {
	storagetest.Run(t, sqliteStore)
}

func sqliteStore(t *testing.T) storagetest.Opener {
	path := filepath.Join(t.TempDir(), "storage.db")
	return func(cfg storage.Config) (*storage.Manager, error) {
		cfg.Backend, cfg.Path = "sqlite", path
		return storage.Open(context.Background(), cfg)
	}
}

func TestPostgres(t *testing.T) {
	storagetest.Run(t, postgresStore)
}

// postgresStore gives each test a schema of its own in the database the test script
// started (see test/pg/start.sh), so tests run in parallel and leave nothing behind.
func postgresStore(t *testing.T) storagetest.Opener {
	dsn := os.Getenv("AIOS_TEST_POSTGRES_DSN")
	if dsn == "" {
		if os.Getenv("AIOS_PG_REQUIRED") == "1" {
			t.Fatal("AIOS_TEST_POSTGRES_DSN is not set but AIOS_PG_REQUIRED=1; run the tests through make test, which starts PostgreSQL")
		}
		t.Skip("AIOS_TEST_POSTGRES_DSN is not set; make test starts PostgreSQL (test/pg/start.sh)")
	}
	ctx := context.Background()
	b := make([]byte, 8)
	rand.Read(b)
	schema := "aios_test_" + hex.EncodeToString(b)
	admin, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatalf("connect to %s: %v", dsn, err)
	}
	if _, err := admin.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		admin.Close(ctx)
		t.Fatal(err)
	}
	t.Cleanup(func() {
		admin.Exec(ctx, "DROP SCHEMA "+schema+" CASCADE")
		admin.Close(ctx)
	})
	scoped := withSearchPath(dsn, schema)
	return func(cfg storage.Config) (*storage.Manager, error) {
		cfg.Backend, cfg.DSN = "postgres", scoped
		return storage.Open(ctx, cfg)
	}
}

// withSearchPath adds a search_path run-time parameter, which pgx passes to the server
// at connect, to a URL or key=value DSN.
func withSearchPath(dsn, schema string) string {
	if strings.Contains(dsn, "://") {
		sep := "?"
		if strings.Contains(dsn, "?") {
			sep = "&"
		}
		return dsn + sep + "search_path=" + schema
	}
	return dsn + " search_path=" + schema
}
