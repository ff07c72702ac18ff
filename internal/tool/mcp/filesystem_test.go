package mcp

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestFilesystemStdio(t *testing.T) {
	bin := npmServer(t, "mcp-server-filesystem")
	// The server resolves symlinks in allowed paths; TempDir may sit under one.
	dir, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	reg := newRegistrar()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s, err := Start(ctx, ServerConfig{Name: "fs", Command: bin, Args: []string{dir}}, reg, testLog(t))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()

	for _, name := range []string{"fs__read_text_file", "fs__write_file", "fs__list_allowed_directories"} {
		reg.tool(t, name)
	}
	// read_text_file says readOnlyHint and openWorldHint only: the others are unknown,
	// which the registry must see as nil, not false.
	a := reg.tool(t, "fs__read_text_file").Spec().Annotations
	if a.ReadOnlyHint == nil || !*a.ReadOnlyHint || a.IdempotentHint != nil || a.DestructiveHint != nil || a.OpenWorldHint == nil || *a.OpenWorldHint {
		t.Fatalf("read_text_file annotations: %s", mustJSON(a))
	}
	w := reg.tool(t, "fs__write_file").Spec().Annotations
	if w.ReadOnlyHint == nil || *w.ReadOnlyHint || w.DestructiveHint == nil || !*w.DestructiveHint || w.IdempotentHint == nil || !*w.IdempotentHint {
		t.Fatalf("write_file annotations: %s", mustJSON(w))
	}

	file := filepath.Join(dir, "note.txt")
	args, _ := json.Marshal(map[string]string{"path": file, "content": "written through MCP\nline two"})
	if res := call(t, reg.tool(t, "fs__write_file"), string(args)); res.IsError {
		t.Fatalf("write_file: %+v", res)
	}
	if b, err := os.ReadFile(file); err != nil || string(b) != "written through MCP\nline two" {
		t.Fatalf("file on disk: %q (%v)", b, err)
	}
	args, _ = json.Marshal(map[string]string{"path": file})
	res := call(t, reg.tool(t, "fs__read_text_file"), string(args))
	if res.IsError || res.Content != "written through MCP\nline two" {
		t.Fatalf("read_text_file: %+v", res)
	}

	// Outside the allowed directory is the tool's refusal, for the model to read.
	outside, _ := json.Marshal(map[string]string{"path": filepath.Join(filepath.Dir(dir), "elsewhere.txt")})
	res = call(t, reg.tool(t, "fs__read_text_file"), string(outside))
	if !res.IsError || !strings.Contains(strings.ToLower(res.Content), "denied") {
		t.Fatalf("read outside the allowed dir: %+v", res)
	}
}
