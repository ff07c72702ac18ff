package sqldb_test

import (
	"context"
	"errors"
	"path/filepath"
	"testing"

	"github.com/aios-go/aios/internal/sqldb"
	"github.com/aios-go/aios/internal/sqldb/sqldbtest"
)

var schema = []string{`CREATE TABLE IF NOT EXISTS kv (k TEXT PRIMARY KEY, v BIGINT NOT NULL)`}

func TestSQLite(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "x.db")
	db, err := sqldb.OpenSQLite(context.Background(), path, schema)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	conformance(t, db)
	// Opening again runs the idempotent schema over existing tables.
	db2, err := sqldb.OpenSQLite(context.Background(), path, schema)
	if err != nil {
		t.Fatal(err)
	}
	db2.Close()
}

func TestPostgres(t *testing.T) {
	db, err := sqldb.OpenPostgres(context.Background(), sqldbtest.PostgresDSN(t), schema, 42)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	conformance(t, db)
}

func TestPostgresBadDSN(t *testing.T) {
	_, err := sqldb.OpenPostgres(context.Background(), "postgres://x:y@[::1", schema, 42)
	if !errors.Is(err, sqldb.ErrBadDSN) {
		t.Fatalf("err = %v, want ErrBadDSN", err)
	}
}

// conformance checks what the stores rely on: ErrNoRows whichever driver, $n
// placeholders, RETURNING, rollback undoing and safe after commit.
func conformance(t *testing.T, db sqldb.DB) {
	ctx := context.Background()
	var v int64
	if err := db.Read().QueryRow(ctx, `SELECT v FROM kv WHERE k = $1`, "a").Scan(&v); !errors.Is(err, sqldb.ErrNoRows) {
		t.Fatalf("empty scan: %v, want ErrNoRows", err)
	}
	tx, err := db.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := tx.QueryRow(ctx, `INSERT INTO kv (k, v) VALUES ($1, $2) RETURNING v`, "a", int64(7)).Scan(&v); err != nil || v != 7 {
		t.Fatalf("insert returning: %v %d", err, v)
	}
	tx.Rollback()
	tx.Rollback() // a second rollback is harmless
	if err := db.Read().QueryRow(ctx, `SELECT v FROM kv WHERE k = $1`, "a").Scan(&v); !errors.Is(err, sqldb.ErrNoRows) {
		t.Fatalf("after rollback: %v, want ErrNoRows", err)
	}
	tx, err = db.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	n, err := tx.Exec(ctx, `INSERT INTO kv (k, v) VALUES ($1, $2), ($3, $4)`, "a", int64(1), "b", int64(2))
	if err != nil || n != 2 {
		t.Fatalf("exec: %v, %d rows", err, n)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	tx.Rollback() // deferred rollback after commit does nothing
	rs, err := db.Read().Query(ctx, `SELECT k, v FROM kv ORDER BY k`)
	if err != nil {
		t.Fatal(err)
	}
	defer rs.Close()
	var got []string
	for rs.Next() {
		var k string
		if err := rs.Scan(&k, &v); err != nil {
			t.Fatal(err)
		}
		got = append(got, k)
	}
	if rs.Err() != nil || len(got) != 2 || got[0] != "a" || got[1] != "b" {
		t.Fatalf("rows %v, err %v", got, rs.Err())
	}
}
