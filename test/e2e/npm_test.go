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
	node := testnpm.Node(t)
	dir := testnpm.Folder("openai-npm")

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
