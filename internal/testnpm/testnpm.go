// Package testnpm finds the real external peers that `make test` installs from npm (the
// MCP reference servers, the official SDKs) for tests in any package. Without node or
// the package a test is skipped, unless AIOS_E2E_REQUIRED=1, under which a missing peer
// is a failure: CI must not pass by skipping what it was meant to check.
package testnpm

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"
)

// Folder returns the absolute path of an npm folder under test/e2e ("mcp-npm",
// "openai-npm"), whatever package the test runs in.
func Folder(name string) string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "test", "e2e", name)
}

// Node returns the node binary.
func Node(t testing.TB) string {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		SkipOrFail(t, "node is not on PATH: this test needs Node.js 20 or later")
	}
	return node
}

// Bin returns the path of an installed package's executable in folder's node_modules.
func Bin(t testing.TB, folder, bin string) string {
	t.Helper()
	Node(t)
	path := filepath.Join(Folder(folder), "node_modules", ".bin", bin)
	if _, err := os.Stat(path); err != nil {
		SkipOrFail(t, "%s is not installed: run `make test`, or `npm ci` in %s", bin, Folder(folder))
	}
	return path
}

// Package returns the folder of an installed package ("@modelcontextprotocol/sdk").
func Package(t testing.TB, folder, pkg string) string {
	t.Helper()
	Node(t)
	dir := filepath.Join(Folder(folder), "node_modules", filepath.FromSlash(pkg))
	if _, err := os.Stat(filepath.Join(dir, "package.json")); err != nil {
		SkipOrFail(t, "%s is not installed: run `make test`, or `npm ci` in %s", pkg, Folder(folder))
	}
	return dir
}

// SkipOrFail skips t, or fails it under AIOS_E2E_REQUIRED=1.
func SkipOrFail(t testing.TB, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if os.Getenv("AIOS_E2E_REQUIRED") == "1" {
		t.Fatalf("%s (AIOS_E2E_REQUIRED=1, so this is a failure, not a skip)", msg)
	}
	t.Skip(msg)
}
