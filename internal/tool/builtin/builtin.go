// Package builtin holds the tools the kernel offers itself, with Source "builtin": a
// calculator, the current time, a web fetch limited to an allowlist, and the calling
// agent's own storage and memory.
package builtin

import (
	"context"
	"encoding/json"
	"time"

	"github.com/aios-go/aios/internal/tool"
)

// Source is the Source of every tool of this package.
const Source = "builtin"

// Default returns the tools that need no kernel module: calculator, current_time and,
// when fetchAllow is not empty, http_fetch limited to it (see HTTPFetch). clock is the
// time current_time reports (time.Now outside tests). A malformed fetchAllow rule
// panics: configuration is to be checked with CheckAllowlist when it is loaded.
func Default(clock func() time.Time, fetchAllow []string) []tool.Tool {
	tools := []tool.Tool{Calculator(), CurrentTime(clock)}
	fetch, err := HTTPFetch(fetchAllow, nil)
	if err != nil {
		panic("builtin: " + err.Error())
	}
	if fetch != nil {
		tools = append(tools, fetch)
	}
	return tools
}

// fn is a built-in tool: a spec and a function.
type fn struct {
	spec tool.Spec
	call func(ctx context.Context, in tool.Input) (tool.Result, error)
}

func (f *fn) Spec() tool.Spec { return f.spec }

func (f *fn) Call(ctx context.Context, in tool.Input) (tool.Result, error) { return f.call(ctx, in) }

func newTool(name, description, schema string, ann tool.Annotations, call func(context.Context, tool.Input) (tool.Result, error)) *fn {
	return &fn{
		spec: tool.Spec{Name: name, Description: description, InputSchema: json.RawMessage(schema), Annotations: ann, Source: Source},
		call: call,
	}
}

func hint(b bool) *bool { return &b }

// readOnly annotates a tool that changes nothing.
func readOnly(title string, openWorld bool) tool.Annotations {
	return tool.Annotations{Title: title, ReadOnlyHint: hint(true), OpenWorldHint: hint(openWorld)}
}

// failed is a result the model reads as the tool's refusal.
func failed(msg string) tool.Result { return tool.Result{Content: msg, IsError: true} }

// decode reads already-validated arguments; a failure here means the schema and the
// struct disagree, which the model can still read and work around.
func decode(in tool.Input, v any) *tool.Result {
	if len(in.Args) == 0 {
		return nil
	}
	if err := json.Unmarshal(in.Args, v); err != nil {
		r := failed("cannot read the arguments: " + err.Error())
		return &r
	}
	return nil
}
