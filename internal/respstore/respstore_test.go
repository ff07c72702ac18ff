package respstore

import (
	"context"
	"encoding/json"
	"path/filepath"
	"testing"

	"github.com/aios-go/aios/api"
	"github.com/aios-go/aios/internal/sqldb/sqldbtest"
	"github.com/google/go-cmp/cmp"
)

func TestSQLite(t *testing.T) {
	path := filepath.Join(t.TempDir(), "responses.db")
	s, err := Open(context.Background(), Config{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	conformance(t, s)
	s.Close()
	// What was stored survives a reopen.
	s, err = Open(context.Background(), Config{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.Get(context.Background(), "alice", "resp_kept"); err != nil {
		t.Fatalf("after reopen: %v", err)
	}
}

func TestPostgres(t *testing.T) {
	s, err := Open(context.Background(), Config{Backend: "postgres", DSN: sqldbtest.PostgresDSN(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	conformance(t, s)
}

func TestOpenErrors(t *testing.T) {
	for _, c := range []Config{{Backend: "mysql"}, {Backend: "sqlite"}, {Backend: "postgres"}} {
		if _, err := Open(context.Background(), c); api.KindOf(err) != api.CallerBadRequest {
			t.Errorf("%+v: %v", c, err)
		}
	}
}

func conformance(t *testing.T, s *Store) {
	ctx := context.Background()
	rec := Record{ID: "resp_kept", Agent: "alice", CreatedAt: 1700000000,
		Messages: []api.Message{{Role: "user", Content: "hi"}, {Role: "assistant", ToolCalls: []api.ToolCall{
			{ID: "call_1", Type: "function", Function: api.FunctionCall{Name: "f", Arguments: `{"a":1}`}}}}},
		Input:    json.RawMessage(`[{"type":"message","id":"msg_1","role":"user","content":[{"type":"input_text","text":"hi"}]}]`),
		Response: json.RawMessage(`{"id":"resp_kept","object":"response"}`),
	}
	if err := s.Put(ctx, rec); err != nil {
		t.Fatal(err)
	}
	got, err := s.Get(ctx, "alice", "resp_kept")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(rec, got); diff != "" {
		t.Fatalf("read back (-put +got):\n%s", diff)
	}
	// An id is unique: a second Put of it fails rather than replacing the first.
	if err := s.Put(ctx, rec); err == nil {
		t.Fatal("a second put of one id succeeded")
	}
	// Another agent neither reads nor deletes it.
	if _, err := s.Get(ctx, "mallory", "resp_kept"); api.KindOf(err) != api.CallerNotFound {
		t.Fatalf("another agent's get: %v", err)
	}
	if err := s.Delete(ctx, "mallory", "resp_kept"); api.KindOf(err) != api.CallerNotFound {
		t.Fatalf("another agent's delete: %v", err)
	}
	gone := rec
	gone.ID = "resp_gone"
	if err := s.Put(ctx, gone); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(ctx, "alice", "resp_gone"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(ctx, "alice", "resp_gone"); api.KindOf(err) != api.CallerNotFound {
		t.Fatalf("get after delete: %v", err)
	}
	if err := s.Delete(ctx, "alice", "resp_gone"); api.KindOf(err) != api.CallerNotFound {
		t.Fatalf("second delete: %v", err)
	}
}
