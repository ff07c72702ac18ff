package main

import (
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/aios-go/aios/internal/access"
)

// A SIGHUP reloads the policies: a file added to the directory is in force after it, and
// a file that does not compile leaves the previous set in force.
func TestHangupReloadsPolicies(t *testing.T) {
	dir := t.TempDir()
	p, err := access.LoadPolicies(dir) // no watch: only the signal reloads
	if err != nil {
		t.Fatal(err)
	}
	stop := watchHangup(p.Reload, slog.New(slog.DiscardHandler))
	defer stop()
	hangup := func() {
		t.Helper()
		if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
	}
	waitFor := func(what string, ok func() bool) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for !ok() {
			if time.Now().After(deadline) {
				t.Fatalf("%s: not within 10s of SIGHUP", what)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	hasFile := func(name string) bool { return slices.Contains(p.Current().Files(), filepath.Join(dir, name)) }

	before := p.Current()
	if err := os.WriteFile(filepath.Join(dir, "interns.cedar"),
		[]byte(`forbid (principal, action == Action::"llm.generate", resource == Model::"big");`), 0o600); err != nil {
		t.Fatal(err)
	}
	hangup()
	waitFor("the new policy file", func() bool { return p.Current() != before && hasFile("interns.cedar") })

	good := p.Current()
	if err := os.WriteFile(filepath.Join(dir, "broken.cedar"), []byte(`forbid (principal`), 0o600); err != nil {
		t.Fatal(err)
	}
	hangup()
	// The refused reload changes nothing; a reload after the fix shows the signal was seen.
	time.Sleep(50 * time.Millisecond)
	if p.Current() != good {
		t.Fatal("a policy file that does not compile replaced the set in force")
	}
	if err := os.WriteFile(filepath.Join(dir, "broken.cedar"), []byte(`forbid (principal, action, resource == Model::"x");`), 0o600); err != nil {
		t.Fatal(err)
	}
	hangup()
	waitFor("the fixed file", func() bool { return hasFile("broken.cedar") })
}
