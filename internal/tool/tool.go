// Package tool is the kernel's tool manager: a registry of tools with JSON-Schema
// arguments (built-in, HTTP tools from config, and tools of MCP servers), argument
// validation before anything runs, per-tool limits on parallel calls, timeouts, output
// caps and circuit breaking. The kernel schedules tool syscalls; this package runs them.
package tool

import (
	"context"
	"encoding/json"
	"strings"

	"github.com/aios-go/aios/api"
)

// Tool is one callable tool. Call receives arguments already validated against
// Spec().InputSchema and must honour ctx; in.Agent is who calls, so tools that reach the
// kernel's own services (storage, memory) act in that agent's namespace. A failure the model should read and react to
// (a bad file name, an HTTP 404 from the fetched page) is a Result with IsError set; an
// error return means the tool itself could not be reached or misbehaved, and is typed
// as an *api.Error when the tool knows whose fault it is.
type Tool interface {
	Spec() Spec
	Call(ctx context.Context, in Input) (Result, error)
}

// Input is one call's arguments and caller.
type Input struct {
	Agent   string
	Session string
	Args    json.RawMessage // a JSON object
}

// Spec describes a tool as the registry lists it and as models see it.
type Spec struct {
	// Name is unique in the registry. Tools of a server are named "server__tool"; AIOS
	// agents may write "author/tool", which is the same tool (see Canonical).
	Name        string          `json:"name"`
	Description string          `json:"description,omitempty"`
	InputSchema json.RawMessage `json:"input_schema"` // a JSON Schema for the arguments object
	// Annotations are what the tool's provider says of it. They are hints from a party
	// the kernel does not control: recorded for the access manager, never trusted alone.
	Annotations Annotations `json:"annotations,omitzero"`
	// Source says where the tool comes from: "builtin", "http", or "mcp:<server>".
	Source string `json:"source"`
}

// Annotations are MCP's tool annotations (and the same keys in config for HTTP tools).
// A nil hint is unknown, which is not the same as false.
type Annotations struct {
	Title           string `json:"title,omitempty"`
	ReadOnlyHint    *bool  `json:"readOnlyHint,omitempty"`
	DestructiveHint *bool  `json:"destructiveHint,omitempty"`
	IdempotentHint  *bool  `json:"idempotentHint,omitempty"`
	OpenWorldHint   *bool  `json:"openWorldHint,omitempty"`
}

// Result is what a tool call produced.
type Result struct {
	// Content is the text the model reads.
	Content string `json:"content"`
	// IsError marks a failure reported by the tool itself, for the model to read.
	IsError bool `json:"is_error,omitempty"`
	// Structured is the tool's structured output, when it gives one.
	Structured json.RawMessage `json:"structured,omitempty"`
	// Truncated says Content was cut to the tool's output cap.
	Truncated bool `json:"truncated,omitempty"`
}

// Separator joins a server (or AIOS author) and a tool in names the LLM APIs accept:
// function names may not contain "/".
const Separator = "__"

// Canonical turns an AIOS name "author/tool" into the registry's "author__tool"; other
// names are returned unchanged.
func Canonical(name string) string { return strings.ReplaceAll(name, "/", Separator) }

// Qualified names a tool of a server: "server__tool".
func Qualified(server, tool string) string { return server + Separator + tool }

// APITool is the tool as an OpenAI function declaration, as models are offered it.
func (s Spec) APITool() api.Tool {
	params := s.InputSchema
	if len(params) == 0 {
		params = json.RawMessage(`{"type":"object"}`)
	}
	return api.Tool{Type: "function", Function: api.FunctionDef{Name: s.Name, Description: s.Description, Parameters: params}}
}
