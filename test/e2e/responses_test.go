package e2e

import (
	"context"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/aios-go/aios/internal/testnpm"
)

// TestResponsesNpmSDK runs openai-npm/responses.mjs: the official openai npm SDK's
// Responses API (create, streaming, a function tool round trip, json_schema, stored
// responses, errors) against a kernel started from this tree.
func TestResponsesNpmSDK(t *testing.T) {
	testnpm.Package(t, "openai-npm", "openai")
	runNodeTest(t, "responses.mjs")
}

// TestAgentsNpmResponses runs openai-npm/agents.mjs: @openai/agents on its default
// Responses API, an agent with a function tool run to its final answer.
func TestAgentsNpmResponses(t *testing.T) {
	testnpm.Package(t, "openai-npm", "@openai/agents")
	testnpm.Package(t, "openai-npm", "zod")
	runNodeTest(t, "agents.mjs")
}

// runNodeTest runs `node --test script` in openai-npm against a fresh kernel.
func runNodeTest(t *testing.T, script string) {
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
