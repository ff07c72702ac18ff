package e2e

import (
	"context"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/aios-go/aios/internal/testnpm"
)

// TestAnthropicNpmSDK runs openai-npm/anthropic.mjs against a kernel started from this
// tree: Anthropic's official SDK on /v1/messages (create, stream, a tool use round trip,
// errors as its error classes) and the openai SDK on embeddings, one model, legacy
// completions and an unknown route. `make test` installs both from the lockfile.
func TestAnthropicNpmSDK(t *testing.T) {
	testnpm.Package(t, "openai-npm", "@anthropic-ai/sdk")
	testnpm.Package(t, "openai-npm", "openai")
	node := testnpm.Node(t)
	dir := testnpm.Folder("openai-npm")

	k := startKernel(t)

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, "--test", "anthropic.mjs")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "AIOS_BASE_URL="+k.URL)
	out, err := runCmd(ctx, cmd)
	if err != nil {
		t.Fatalf("node --test anthropic.mjs: %v\n%s", err, out)
	}
	t.Logf("node --test anthropic.mjs:\n%s", out)
}
