package storage_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/aios-go/aios/internal/sqldb/sqldbtest"
	"github.com/aios-go/aios/internal/storage"
	"github.com/aios-go/aios/internal/storage/storagetest"
	"github.com/aios-go/aios/internal/testleak"
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
	dsn := sqldbtest.PostgresDSN(t)
	return func(cfg storage.Config) (*storage.Manager, error) {
		cfg.Backend, cfg.DSN = "postgres", dsn
		return storage.Open(context.Background(), cfg)
	}
}
