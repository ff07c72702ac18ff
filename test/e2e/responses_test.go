package e2e

import (
	"testing"

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
