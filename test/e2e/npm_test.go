package e2e

import (
	"context"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/aios-go/aios/internal/testnpm"
)

// TestOpenAINpmSDK runs openai-npm/test.mjs, the official openai npm SDK driving the
// kernel's /v1 (models, chat completions streaming and not, errors, tool calls), against
// a kernel started from this tree. `make test` installs the SDK from the lockfile.
func TestOpenAINpmSDK(t *testing.T) {
	testnpm.Package(t, "openai-npm", "openai")
	runNodeTest(t, "test.mjs")
}

// runNodeTest runs `node --test script` in openai-npm against a fresh kernel, whose URL
// the script reads from AIOS_BASE_URL.
func runNodeTest(t *testing.T, script string) {
	t.Helper()
	node := testnpm.Node(t)
	k := startKernel(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, "--test", script)
	cmd.Dir = testnpm.Folder("openai-npm")
	cmd.Env = append(os.Environ(), "AIOS_BASE_URL="+k.URL)
	out, err := runCmd(ctx, cmd)
	if err != nil {
		t.Fatalf("node --test %s: %v\n%s", script, err, out)
	}
	t.Logf("node --test %s:\n%s", script, out)
}
