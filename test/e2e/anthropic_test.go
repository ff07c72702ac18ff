package e2e

import (
	"testing"

	"github.com/aios-go/aios/internal/testnpm"
)

// TestAnthropicNpmSDK runs openai-npm/anthropic.mjs against a kernel started from this
// tree: Anthropic's official SDK on /v1/messages (create, stream, a tool use round trip,
// errors as its error classes) and the openai SDK on embeddings, one model, legacy
// completions and an unknown route. `make test` installs both from the lockfile.
func TestAnthropicNpmSDK(t *testing.T) {
	testnpm.Package(t, "openai-npm", "@anthropic-ai/sdk")
	testnpm.Package(t, "openai-npm", "openai")
	runNodeTest(t, "anthropic.mjs")
}
