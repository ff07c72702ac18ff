package sim

// Structured outputs. A real engine with guided decoding (vLLM's xgrammar, OpenAI's
// strict mode) only samples tokens the schema allows; the simulator has no logits to mask,
// so it builds the document the schema describes directly, from the request's seed:
//
//   - the generator (gen.value) walks the schema and makes an instance by construction:
//     $ref and allOf are merged into one conjunction, anyOf/oneOf pick a branch, each type
//     gets a value inside its bounds, and strings that take free text are filled with
//     the output sequence's words (OutputWord), so a document grows with the request's
//     output length as plain text does;
//   - a checker (gen.check) then validates the result against the schema with the same
//     rules as github.com/santhosh-tekuri/jsonschema/v6, answering yes, no or "don't
//     know" for anything it does not implement. Only a yes is reported as conforming,
//     so a schema the generator misreads, or one that is unsatisfiable, shows up as
//     ok == false (the fuzz target holds the two to that) and never as a wrong claim.
//
// Everything is a pure function of (schema, seed, size): the same request gives the same
// bytes. Nothing panics on any input; work, depth and sizes are bounded.

import (
	"bytes"
	"encoding/json"
	"regexp"
	"strings"
)

// ResponseFormat is a chat request's response_format as the engine reads it.
type ResponseFormat struct {
	// Type is "text" (or empty), "json_object" or "json_schema". Any other type is
	// answered as json_object: some JSON object is better than prose a client will parse.
	Type string
	// JSONSchema is OpenAI's json_schema member, {"name", "schema", "strict"}, or a bare
	// JSON Schema (as the Responses API's text.format carries it once unwrapped).
	JSONSchema json.RawMessage
}

// anyObjectSchema is what json_object (or a json_schema without a schema) produces: an
// object with the answer in one string, as the simulator has always answered in JSON.
var anyObjectSchema = []byte(`{"type":"object","properties":{"answer":{"type":"string"}},"required":["answer"],"additionalProperties":false}`)

// noParamsSchema shapes the arguments of a tool that declares no parameters at all.
var noParamsSchema = []byte(`{"type":"object","properties":{"input":{"type":"string"}},"required":["input"]}`)

// schema is the JSON Schema the output must follow, or nil for free text.
func (f *ResponseFormat) schema() []byte {
	if f == nil || f.Type == "" || f.Type == "text" {
		return nil
	}
	if f.Type == "json_schema" && len(f.JSONSchema) > 0 {
		var w map[string]json.RawMessage
		if json.Unmarshal(f.JSONSchema, &w) == nil {
			if s, ok := w["schema"]; ok && !bytes.Equal(bytes.TrimSpace(s), []byte("null")) {
				return s
			}
			for _, k := range [...]string{"type", "properties", "$ref", "anyOf", "oneOf", "allOf", "enum", "const", "items", "required"} {
				if _, ok := w[k]; ok {
					return f.JSONSchema
				}
			}
		}
	}
	return anyObjectSchema
}

func toolSchema(params json.RawMessage) []byte {
	if t := bytes.TrimSpace(params); len(t) == 0 || bytes.Equal(t, []byte("null")) {
		return noParamsSchema
	}
	return params
}

// shaped is an output decided whole before generation starts: a tool call's arguments or
// a response_format document. The engine generates exactly as many tokens as the
// document has under the simulator's tokenizer (not just its words, as text output
// counts), so usage, decode steps and KV use are what a real engine would spend writing
// it out, punctuation and keys included.
type shaped struct {
	tool   *Tool
	text   string
	tokens int
	starts []int // byte offset where each token begins
}

// piece is the text of tokens [from, to): what a stream sends as they are generated.
// Pieces join to the whole document; tokens past its end are empty.
func (s *shaped) piece(from, to int) string {
	at := func(k int) int {
		switch {
		case k <= 0:
			return 0
		case k >= s.tokens:
			return len(s.text)
		}
		return s.starts[k]
	}
	return s.text[at(from):at(to)]
}

// shapeOutput decides a structured output: the arguments of the tool chosen, or the
// document response_format asks for; nil for free text.
//
// Sizing, and why: the document is kept whole and valid under any max_tokens. Its free
// text takes as many words as the plain answer would have had (NaturalLength, or the
// short toolCallLength for tool calls, or max_tokens with ignore_eos), and fewer when
// the whole document would exceed max_tokens, down to none. Only when even the smallest
// conforming document does not fit is it sent whole anyway with finish reason "length"
// (the engine stops at max_tokens, so usage reports max_tokens): a truncated JSON text
// is what a real engine returns there, but nothing a client can parse, and the point of
// simulating structured outputs is that clients get documents they can use.
func shapeOutput(req *GenRequest, tool *Tool, seed uint64) *shaped {
	var schema []byte
	words := NaturalLength(seed)
	if tool != nil {
		schema, words = toolSchema(tool.Parameters), toolCallLength(seed)
	} else if schema = req.ResponseFormat.schema(); schema == nil {
		return nil
	}
	if req.IgnoreEOS && req.MaxTokens > 0 {
		words = req.MaxTokens
	}
	text, _ := schemaValue(schema, seed, words, req.MaxTokens)
	if tool != nil && !strings.HasPrefix(text, "{") {
		text = "{}" // arguments are an object whatever a malformed parameters schema says
	}
	starts := tokenStarts(text)
	return &shaped{tool: tool, text: text, tokens: len(starts), starts: starts}
}

// tokenStarts is where each token of text begins, by the rules of AppendTokens.
func tokenStarts(text string) []int {
	var out []int
	for i := 0; i < len(text); {
		c := byteClass[text[i]]
		if c == clsSpace {
			i++
			continue
		}
		out = append(out, i)
		j := i
		for j < len(text) && j-i < pieceLimit[c] && byteClass[text[j]] == c {
			j++
		}
		i = j
	}
	return out
}

// Bounds on the work and the document, whatever the schema asks for.
const (
	maxWork     = 1 << 16 // schema nodes visited while generating, and again while checking
	softDepth   = 6       // from this nesting on: required properties only, fewest items
	hardDepth   = 32      // a schema that needs deeper nesting (required recursion) fails
	maxOutItems = 1024
	maxOutChars = 1 << 16 // in one string
	maxDocChars = 1 << 20 // in all strings before the output's words are dealt out
	maxExpand   = 256     // schemas merged into one conjunction
)

// schemaValue renders a JSON document conforming to schema (the bytes of a JSON Schema)
// for the output sequence seed. Strings that take free text are made of the sequence's
// words and together hold about words of them; with limit > 0 they hold fewer, down to
// none, so that the document counts at most limit tokens if it can. ok reports that the
// document is known to conform; when false the schema was malformed, unsatisfiable or
// used something the generator does not handle, and the document is a best effort
// (always complete, valid JSON).
func schemaValue(schema []byte, seed uint64, words, limit int) (doc string, ok bool) {
	root, err := decodeOrdered(schema)
	if err != nil {
		return "{}", false
	}
	g := &gen{root: root, seed: seed, draft: draftOf(root), budget: maxWork, regexps: map[string]*regexp.Regexp{}}
	g.foreignIDs = hasForeignIDs(root, g.draft, true)
	v, _ := g.value([]any{root}, 0)

	extra := max(0, words-g.words)
	render := func(extra int) string {
		stretch(g.leaves, seed, g.words, extra)
		return string(appendJSON(nil, v))
	}
	doc = render(extra)
	if limit > 0 {
		// Each extra word is one token, so this closes in a step or two.
		for n := CountTokens(doc); n > limit && extra > 0; n = CountTokens(doc) {
			extra = max(0, extra-(n-limit))
			doc = render(extra)
		}
	}
	g.budget = maxWork
	if ok = g.check(root, v, 0) == yes; !ok && extra > 0 {
		// Longer strings can break what held for the short ones (a oneOf whose branches
		// differ only in string lengths now matching twice, say); the document without
		// them is the one checked while it was built.
		doc = render(0)
		g.budget = maxWork
		ok = g.check(root, v, 0) == yes
	}
	return doc, ok
}

// jobj is a JSON object that keeps its keys in order, so a generated object lists its
// properties in the order the schema declares them, as a model writing it would.
