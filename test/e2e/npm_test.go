package e2e

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// TestOpenAINpmSDK runs openai-npm/test.mjs, the official openai npm SDK driving the
// kernel's /v1 (models, chat completions streaming and not, errors, tool calls), against
// a kernel started from this tree. `make test` installs the SDK from the lockfile.
func TestOpenAINpmSDK(t *testing.T) {
	dir, err := filepath.Abs("openai-npm")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "openai", "package.json")); err != nil {
		skipOrFail(t, "the openai npm SDK is not installed: run `make test`, or `npm ci` in %s", dir)
	}
	node, err := exec.LookPath("node")
	if err != nil {
		skipOrFail(t, "node is not on PATH: the npm SDK test needs Node.js 20 or later")
	}

	k := startKernel(t)

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, "--test", "test.mjs")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "AIOS_BASE_URL="+k.URL)
	out, err := runCmd(ctx, cmd)
	if err != nil {
		t.Fatalf("node --test test.mjs: %v\n%s", err, out)
	}
	t.Logf("node --test test.mjs:\n%s", out)
}
