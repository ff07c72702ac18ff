package tool

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strings"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/santhosh-tekuri/jsonschema/v6/kind"
	"golang.org/x/text/language"
	"golang.org/x/text/message"

	"github.com/aios-go/aios/api"
)

// objectSchema is what a tool without a schema takes: any object.
var objectSchema = json.RawMessage(`{"type":"object"}`)

// argSchema is a tool's compiled argument schema and, for error messages, a one-line
// summary of the arguments it wants.
type argSchema struct {
	compiled *jsonschema.Schema
	wants    string
}

// compileSchema compiles a tool's InputSchema once, at registration. Schemas come from
// MCP servers the kernel does not control, so nothing is fetched: every $ref must
// resolve inside the schema itself (the draft metaschemas are built into the library).
// "$schema" picks the draft (draft-07 and 2020-12 are both common); without it 2020-12.
func compileSchema(name string, raw json.RawMessage) (*argSchema, error) {
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		return nil, fmt.Errorf("input schema of tool %s is not JSON: %w", name, err)
	}
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	c.UseLoader(noLoader{})
	c.UseRegexpEngine(lenientRegexp)
	// A hierarchical base URL, so a relative $ref resolves to a URL of its own (which is
	// then refused) instead of back to this document.
	loc := "aios-tool:///" + name + ".json"
	if err := c.AddResource(loc, doc); err != nil {
		return nil, fmt.Errorf("input schema of tool %s: %w", name, err)
	}
	compiled, err := c.Compile(loc)
	if err != nil {
		return nil, fmt.Errorf("input schema of tool %s does not compile: %w", name, err)
	}
	return &argSchema{compiled: compiled, wants: summarize(doc)}, nil
}

// noLoader refuses every URL the compiler would fetch: the default loader reads local
// files, and an HTTP one would let a tool server make the kernel fetch what it names.
type noLoader struct{}

func (noLoader) Load(url string) (any, error) {
	return nil, fmt.Errorf("%s is not loaded: schemas must be self-contained", url)
}

// lenientRegexp compiles "pattern" keywords with Go's regexp. Schemas written for
// JavaScript validators use ECMAScript syntax Go lacks (lookahead, as in zod's email
// pattern); such a pattern is left unchecked here rather than refusing the whole tool,
// since the tool's server checks its own arguments anyway.
func lenientRegexp(s string) (jsonschema.Regexp, error) {
	if re, err := regexp.Compile(s); err == nil {
		return re, nil
	}
	return anything(s), nil
}

type anything string

func (anything) MatchString(string) bool { return true }
func (a anything) String() string        { return string(a) }

var printer = message.NewPrinter(language.English)

// maxProblems bounds the problems one refusal lists: the model fixes the first few and
// hears of the rest on its next try.
const maxProblems = 5

// validate checks a call's arguments. Empty arguments are taken as {}: models calling
// a tool without parameters often send "" instead of "{}".
func (s *argSchema) validate(tool string, args json.RawMessage) error {
	if len(bytes.TrimSpace(args)) == 0 {
		args = json.RawMessage("{}")
	}
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(args))
	if err != nil {
		return api.Errorf(api.CallerBadRequest, "invalid arguments for tool %s: not valid JSON (%v); send a JSON object%s", tool, err, s.hint())
	}
	if _, ok := v.(map[string]any); !ok {
		return api.Errorf(api.CallerBadRequest, "invalid arguments for tool %s: got %s, want a JSON object%s", tool, jsonType(v), s.hint())
	}
	err = s.compiled.Validate(v)
	if err == nil {
		return nil
	}
	var ve *jsonschema.ValidationError
	if !errors.As(err, &ve) {
		return api.Wrap(api.CallerBadRequest, err, "invalid arguments for tool %s", tool)
	}
	var problems []string
	seen := map[string]bool{}
	collect(ve, func(p string) {
		if !seen[p] {
			seen[p] = true
			problems = append(problems, p)
		}
	})
	more := ""
	if len(problems) > maxProblems {
		more = fmt.Sprintf("; and %d more", len(problems)-maxProblems)
		problems = problems[:maxProblems]
	}
	return api.Errorf(api.CallerBadRequest, "invalid arguments for tool %s: %s%s%s", tool, strings.Join(problems, "; "), more, s.hint())
}

func (s *argSchema) hint() string {
	if s.wants == "" {
		return ""
	}
	return "; the tool takes " + s.wants
}

// collect reports the leaves of a validation error tree as "at <pointer>: <reason>".
// A missing or unexpected property is reported at the property's own pointer, which
// is where the model has to look.
func collect(e *jsonschema.ValidationError, report func(string)) {
	if len(e.Causes) > 0 {
		for _, c := range e.Causes {
			collect(c, report)
		}
		return
	}
	at := e.InstanceLocation
	switch k := e.ErrorKind.(type) {
	case *kind.Required:
		for _, p := range k.Missing {
			report(fmt.Sprintf("at %s: missing property", pointer(append(at[:len(at):len(at)], p))))
		}
	case *kind.AdditionalProperties:
		for _, p := range k.Properties {
			report(fmt.Sprintf("at %s: property not allowed", pointer(append(at[:len(at):len(at)], p))))
		}
	default:
		report(fmt.Sprintf("at %s: %s", pointer(at), k.LocalizedString(printer)))
	}
}

// pointer is the JSON pointer (RFC 6901) of a location; the whole arguments object,
// whose pointer is the empty string, is called (root) so the message reads.
func pointer(tokens []string) string {
	if len(tokens) == 0 {
		return "(root)"
	}
	var b strings.Builder
	for _, t := range tokens {
		b.WriteByte('/')
		b.WriteString(strings.NewReplacer("~", "~0", "/", "~1").Replace(t))
	}
	return b.String()
}

func jsonType(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case bool:
		return "a boolean"
	case json.Number:
		return "a number"
	case string:
		return "a string"
	case []any:
		return "an array"
	}
	return "an object"
}

// maxSummarized bounds the properties a summary names.
const maxSummarized = 25

// summarize writes a schema's top-level properties compactly, TypeScript-like:
// {expression: string, precision?: integer}. Required properties come first.
func summarize(doc any) string {
	obj, _ := doc.(map[string]any)
	props, _ := obj["properties"].(map[string]any)
	if len(props) == 0 {
		return ""
	}
	required := map[string]bool{}
	var names []string
	if req, ok := obj["required"].([]any); ok {
		for _, r := range req {
			if n, ok := r.(string); ok && !required[n] {
				if _, declared := props[n]; declared {
					required[n] = true
					names = append(names, n)
				}
			}
		}
	}
	var optional []string
	for n := range props {
		if !required[n] {
			optional = append(optional, n)
		}
	}
	sort.Strings(optional)
	names = append(names, optional...)
	var parts []string
	for i, n := range names {
		if i == maxSummarized {
			parts = append(parts, fmt.Sprintf("… %d more", len(names)-i))
			break
		}
		opt := "?"
		if required[n] {
			opt = ""
		}
		parts = append(parts, fmt.Sprintf("%s%s: %s", n, opt, typeOf(props[n])))
	}
	s := "{" + strings.Join(parts, ", ") + "}"
	if obj["additionalProperties"] == false {
		s += " and no other properties"
	}
	return s
}

// typeOf names what a property schema wants, in a word or two.
func typeOf(v any) string {
	s, ok := v.(map[string]any)
	if !ok {
		return "any"
	}
	if enum, ok := s["enum"].([]any); ok && len(enum) > 0 {
		var vals []string
		for i, e := range enum {
			if i == 6 {
				vals = append(vals, "…")
				break
			}
			b, _ := json.Marshal(e)
			vals = append(vals, string(b))
		}
		return "one of " + strings.Join(vals, "|")
	}
	var t string
	switch x := s["type"].(type) {
	case string:
		t = x
	case []any:
		var ts []string
		for _, e := range x {
			if n, ok := e.(string); ok {
				ts = append(ts, n)
			}
		}
		t = strings.Join(ts, "|")
	}
	if t == "array" {
		if it := typeOf(s["items"]); it != "any" {
			return "array of " + it
		}
	}
	if t != "" {
		return t
	}
	for _, kw := range []string{"anyOf", "oneOf"} {
		branches, _ := s[kw].([]any)
		var ts []string
		for _, b := range branches {
			ts = append(ts, typeOf(b))
		}
		if len(ts) > 0 && !slices.Contains(ts, "any") {
			return strings.Join(ts, "|")
		}
	}
	return "any"
}
