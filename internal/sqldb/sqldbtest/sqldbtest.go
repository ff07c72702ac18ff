// Package sqldbtest gives tests of the kernel's stores a PostgreSQL database of their own.
package sqldbtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
)

// PostgresDSN returns a DSN whose tables live in a fresh schema of the server named by
// AIOS_TEST_POSTGRES_DSN (see test/pg/start.sh), dropped when t ends, so tests run in
// parallel and leave nothing behind. Without the variable it skips t, or fails it when
// AIOS_PG_REQUIRED=1 (make test), so a missing server cannot pass for a green run.
func PostgresDSN(t testing.TB) string {
	t.Helper()
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
	return withSearchPath(dsn, schema)
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
