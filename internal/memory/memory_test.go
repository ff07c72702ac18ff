package memory_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/aios-go/aios/internal/memory"
	"github.com/aios-go/aios/internal/memory/memorytest"
	"github.com/aios-go/aios/internal/sqldb/sqldbtest"
	"github.com/aios-go/aios/internal/testleak"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	maybeChild() // the kill -9 test's child process never returns from here
	goleak.VerifyTestMain(m, testleak.Ignore()...)
}

func TestSQLite(t *testing.T) { memorytest.Run(t, sqliteStore) }

func sqliteStore(t *testing.T) memorytest.Opener {
	path := filepath.Join(t.TempDir(), "memory.db")
	return func(cfg memory.Config) (*memory.Manager, error) {
		cfg.Backend, cfg.Path = "sqlite", path
		return memory.Open(context.Background(), cfg)
	}
}

func TestPostgres(t *testing.T) { memorytest.Run(t, postgresStore) }

func postgresStore(t *testing.T) memorytest.Opener {
	dsn := sqldbtest.PostgresDSN(t)
	return func(cfg memory.Config) (*memory.Manager, error) {
		cfg.Backend, cfg.DSN = "postgres", dsn
		return memory.Open(context.Background(), cfg)
	}
}
