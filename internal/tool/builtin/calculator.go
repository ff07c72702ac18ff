package builtin

import (
	"context"
	"fmt"

	"github.com/aios-go/aios/internal/tool"
)

const calculatorSchema = `{
	"type": "object",
	"properties": {
		"expression": {
			"type": "string",
			"maxLength": 1024,
			"description": "An arithmetic expression: numbers (3, 2.5, 1e-3), + - * / % and ^ (power), parentheses, the constants pi and e, and the functions sqrt, abs, ln, log10, sin, cos, tan (radians), min, max, round, floor, ceil. Example: sqrt(2) * (3 + 4)^2 / 7"
		}
	},
	"required": ["expression"],
	"additionalProperties": false
}`

// Calculator is the calculator tool: exact arithmetic for models, which are unreliable at
// it. It parses the expression itself; nothing is evaluated as code.
func Calculator() tool.Tool {
	return newTool("calculator", "Evaluate an arithmetic expression and return the number.", calculatorSchema,
		tool.Annotations{Title: "Calculator", ReadOnlyHint: hint(true), IdempotentHint: hint(true), OpenWorldHint: hint(false)},
		func(_ context.Context, in tool.Input) (tool.Result, error) {
			var a struct {
				Expression string `json:"expression"`
			}
			if r := decode(in, &a); r != nil {
				return *r, nil
			}
			v, err := evaluate(a.Expression)
			if err != nil {
				return failed(fmt.Sprintf("cannot evaluate %q: %v", shorten(a.Expression, 80), err)), nil
			}
			out := num(v)
			return tool.Result{Content: out, Structured: []byte(`{"value":` + out + `}`)}, nil
		})
}

// shorten cuts s to at most n bytes for a message, on a character boundary.
func shorten(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && s[n]&0xC0 == 0x80 {
		n--
	}
	return s[:n] + "…"
}
