package tool

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/aios-go/aios/api"
)

const calcSchema = `{
	"type": "object",
	"properties": {
		"expression": {"type": "string", "description": "the arithmetic"},
		"precision": {"type": "integer", "minimum": 0},
		"mode": {"enum": ["deg", "rad"]},
		"values": {"type": "array", "items": {"type": "number"}},
		"opts": {"type": "object", "properties": {"a/b": {"type": "boolean"}}, "required": ["a/b"]}
	},
	"required": ["expression"],
	"additionalProperties": false
}`

func TestValidateMessages(t *testing.T) {
	m := newManager(t, Config{}, newTool("calculator", "builtin", calcSchema, nil))
	cases := []struct {
		name string
		args string
		want []string // all in the message; nil means valid
	}{
		{"valid", `{"expression":"1+2"}`, nil},
		{"valid with all", `{"expression":"1","precision":2,"mode":"deg","values":[1,2.5],"opts":{"a/b":true}}`, nil},
		{"missing", `{}`, []string{"invalid arguments for tool calculator: at /expression: missing property"}},
		{"wrong type", `{"expression":12}`, []string{"at /expression: got number, want string"}},
		{"not integer", `{"expression":"1","precision":1.5}`, []string{"at /precision: got number, want integer"}},
		{"below minimum", `{"expression":"1","precision":-1}`, []string{"at /precision:", "minimum"}},
		{"enum", `{"expression":"1","mode":"grad"}`, []string{"at /mode:", "deg"}},
		{"nested array item", `{"expression":"1","values":[1,"two"]}`, []string{"at /values/1: got string, want number"}},
		{"escaped pointer", `{"expression":"1","opts":{}}`, []string{"at /opts/a~1b: missing property"}},
		{"extra property", `{"expression":"1","expr":"2"}`, []string{"at /expr: property not allowed"}},
		{"two problems", `{"expr":"2"}`, []string{"at /expression: missing property", "at /expr: property not allowed"}},
		{"array", `[1,2]`, []string{"got an array, want a JSON object"}},
		{"string", `"1+2"`, []string{"got a string, want a JSON object"}},
		{"null", `null`, []string{"got null, want a JSON object"}},
		{"bad JSON", `{"expression":`, []string{"not valid JSON"}},
		{"trailing data", `{"expression":"1"} {}`, []string{"not valid JSON"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := m.Validate("calculator", json.RawMessage(c.args))
			if c.want == nil {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			e := apiErr(t, err, api.CallerBadRequest)
			for _, w := range c.want {
				if !strings.Contains(e.Message, w) {
					t.Errorf("message %q lacks %q", e.Message, w)
				}
			}
			// Every refusal says what the tool takes.
			if want := "the tool takes {expression: string, mode?: one of \"deg\"|\"rad\", opts?: object, precision?: integer, values?: array of number} and no other properties"; !strings.Contains(e.Message, want) {
				t.Errorf("message %q lacks the summary %q", e.Message, want)
			}
		})
	}
	if s := statsOf(t, m, "calculator"); s.Rejected != int64(len(cases)-2) {
		t.Errorf("Rejected = %d, want %d", s.Rejected, len(cases)-2)
	}
}

func TestValidateEmptyArgs(t *testing.T) {
	m := newManager(t, Config{}, newTool("now", "builtin", `{"type":"object","properties":{"tz":{"type":"string"}}}`, nil), newTool("calculator", "builtin", calcSchema, nil))
	for _, args := range []string{``, `  `, `{}`} {
		if err := m.Validate("now", json.RawMessage(args)); err != nil {
			t.Errorf("Validate(%q): %v", args, err)
		}
	}
	// Empty arguments are {}, so a tool with required properties still refuses them.
	e := apiErr(t, m.Validate("calculator", nil), api.CallerBadRequest)
	if !strings.Contains(e.Message, "/expression: missing property") {
		t.Errorf("message %q", e.Message)
	}
}

func TestValidateCapsProblems(t *testing.T) {
	m := newManager(t, Config{}, newTool("wide", "builtin", `{"type":"object","required":["a","b","c","d","e","f","g"]}`, nil))
	e := apiErr(t, m.Validate("wide", json.RawMessage(`{}`)), api.CallerBadRequest)
	if strings.Count(e.Message, "missing property") != maxProblems || !strings.Contains(e.Message, "and 2 more") {
		t.Errorf("message %q", e.Message)
	}
}

func FuzzValidate(f *testing.F) {
	for _, s := range []string{``, `{}`, `{"expression":"1"}`, `{"expression":1}`, `[]`, `null`, `{"values":[1,"x"]}`, `{"opts":{"a/b":3}}`, `{"a":` + strings.Repeat("[", 100), "\xff"} {
		f.Add([]byte(s))
	}
	schema, err := compileSchema("calculator", json.RawMessage(calcSchema))
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, args []byte) {
		err := schema.validate("calculator", args)
		if err != nil && api.KindOf(err) != api.CallerBadRequest {
			t.Fatalf("%q: %v", args, err)
		}
	})
}
