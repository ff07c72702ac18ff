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
	"errors"
	"io"
	"math/big"
	"net/url"
	"regexp"
	"regexp/syntax"
	"strconv"
	"strings"
	"unicode/utf8"
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
type jobj struct {
	keys []string
	vals map[string]any
}

// decodeOrdered decodes one JSON value: nil, bool, json.Number, string, []any, *jobj.
// A repeated key keeps its first place and its last value, as encoding/json keeps it.
func decodeOrdered(data []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	v, err := decodeValue(dec, 0)
	if err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("data after the JSON value")
	}
	return v, nil
}

func decodeValue(dec *json.Decoder, depth int) (any, error) {
	if depth > 10000 {
		return nil, errors.New("nested too deeply")
	}
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	d, ok := tok.(json.Delim)
	if !ok {
		return tok, nil
	}
	switch d {
	case '{':
		o := &jobj{vals: map[string]any{}}
		for dec.More() {
			kt, err := dec.Token()
			if err != nil {
				return nil, err
			}
			k, _ := kt.(string)
			v, err := decodeValue(dec, depth+1)
			if err != nil {
				return nil, err
			}
			if _, dup := o.vals[k]; !dup {
				o.keys = append(o.keys, k)
			}
			o.vals[k] = v
		}
		_, err := dec.Token()
		return o, err
	case '[':
		arr := []any{}
		for dec.More() {
			v, err := decodeValue(dec, depth+1)
			if err != nil {
				return nil, err
			}
			arr = append(arr, v)
		}
		_, err := dec.Token()
		return arr, err
	}
	return nil, errors.New("unexpected delimiter")
}

// draftOf reads $schema as the validator does; without one, 2020-12.
func draftOf(root any) int {
	o, ok := root.(*jobj)
	if !ok {
		return 2020
	}
	s, _ := o.vals["$schema"].(string)
	s = strings.TrimSuffix(s, "#")
	if t, ok := strings.CutPrefix(s, "http://"); ok {
		s = t
	} else {
		s = strings.TrimPrefix(s, "https://")
	}
	switch s {
	case "json-schema.org/draft-04/schema":
		return 4
	case "json-schema.org/draft-06/schema":
		return 6
	case "json-schema.org/draft-07/schema":
		return 7
	case "json-schema.org/draft/2019-09/schema":
		return 2019
	}
	return 2020
}

// hasForeignIDs reports an identifier below the root. It starts a resource of its own,
// against which "#/..." references inside it resolve, so pointers from the document
// root would be wrong there; the generator then treats every $ref as unresolved. (It
// also matches such keys inside enum or const values: a false alarm is only caution.)
func hasForeignIDs(v any, draft int, root bool) bool {
	switch v := v.(type) {
	case *jobj:
		if !root {
			if _, ok := v.vals["$id"].(string); ok {
				return true
			}
			if _, ok := v.vals["id"].(string); ok && draft == 4 {
				return true
			}
		}
		for _, k := range v.keys {
			if hasForeignIDs(v.vals[k], draft, false) {
				return true
			}
		}
	case []any:
		for _, e := range v {
			if hasForeignIDs(e, draft, false) {
				return true
			}
		}
	}
	return false
}

// gen is one document's generation.
type gen struct {
	root       any
	draft      int
	seed       uint64
	draws      uint64
	budget     int
	foreignIDs bool
	words      int         // output words given to strings so far
	leaves     []*textLeaf // strings that take extra words, in document order
	regexps    map[string]*regexp.Regexp
	avoid      []any // values the next value should differ from (uniqueItems)
	chars      int   // characters of strings made so far
	tooDeep    bool  // nesting passed hardDepth: retrying other branches will not help
}

func (g *gen) draw() uint64 {
	g.draws++
	return mix64(g.seed ^ g.draws*0x9e3779b97f4a7c15 ^ 0x736368656d61)
}

// regexp compiles a pattern as the validator does (Go's regexp); nil if it does not compile.
func (g *gen) regexp(p string) *regexp.Regexp {
	re, ok := g.regexps[p]
	if !ok {
		re, _ = regexp.Compile(p)
		g.regexps[p] = re
	}
	return re
}

// resolve follows a local reference: "#", or a JSON pointer from the document root.
func (g *gen) resolve(ref string) (any, bool) {
	if g.foreignIDs {
		return nil, false
	}
	if ref == "#" || ref == "" {
		return g.root, true
	}
	frag, ok := strings.CutPrefix(ref, "#/")
	if !ok {
		return nil, false // an anchor or another document
	}
	frag, err := url.PathUnescape(frag)
	if err != nil {
		return nil, false
	}
	cur := g.root
	for _, tok := range strings.Split(frag, "/") {
		tok = strings.ReplaceAll(strings.ReplaceAll(tok, "~1", "/"), "~0", "~")
		switch c := cur.(type) {
		case *jobj:
			v, ok := c.vals[tok]
			if !ok {
				return nil, false
			}
			cur = v
		case []any:
			i, err := strconv.Atoi(tok)
			if err != nil || i < 0 || i >= len(c) || strconv.Itoa(i) != tok {
				return nil, false
			}
			cur = c[i]
		default:
			return nil, false
		}
	}
	return cur, true
}

// Generation.

// value makes an instance of the conjunction of schemas ss at nesting depth d. ok is
// false when the conjunction proved unsatisfiable here or work ran out; the value is then
// a best effort.
func (g *gen) value(ss []any, d int) (any, bool) {
	avoid := g.avoid
	g.avoid = nil
	if d > hardDepth {
		g.tooDeep = true
	}
	if g.budget--; g.budget < 0 || g.tooDeep {
		return nil, false
	}
	base, ok := g.expand(nil, ss)
	if !ok {
		return nil, false
	}
	var best any
	tried := false
	salt := g.draw()
	for attempt := range attempts(base) {
		leaves := len(g.leaves)
		c, ok := g.choose(base, d, attempt, salt)
		if !ok {
			continue
		}
		v, ok := g.instance(c, d, avoid)
		if ok && (!needsCheck(c) || g.checkAll(c, v) != no) {
			return v, true
		}
		if !tried {
			best, tried = v, true
		}
		g.leaves = g.leaves[:leaves] // the attempt's strings are not in the document
		if g.tooDeep || g.budget < 0 {
			break
		}
	}
	return best, false
}

// attempts is how many branch choices value tries: enough to go round a oneOf whose
// branches overlap, a few at most.
func attempts(c []*jobj) int {
	n := 3
	for _, m := range c {
		for _, k := range [...]string{"oneOf", "anyOf"} {
			if b, ok := m.vals[k].([]any); ok {
				n = max(n, min(len(b), 8))
			}
		}
	}
	return n
}

// needsCheck reports keywords a constructed value may still violate (another oneOf
// branch also matching, not, if, duplicates, ...): such a value is checked before it is
// taken, and another branch tried if it fails.
func needsCheck(c []*jobj) bool {
	for _, m := range c {
		for _, k := range [...]string{"oneOf", "not", "if", "uniqueItems", "contains", "dependentSchemas", "dependencies", "propertyNames"} {
			if _, ok := m.vals[k]; ok {
				return true
			}
		}
	}
	return false
}

func (g *gen) checkAll(c []*jobj, v any) tri {
	r := yes
	for _, m := range c {
		if r = min(r, g.check(m, v, 0)); r == no {
			break
		}
	}
	return r
}

// expand adds schemas to a conjunction, following $ref and allOf. false makes it
// unsatisfiable; a schema met twice (a reference cycle) is there once.
func (g *gen) expand(dst []*jobj, ss []any) ([]*jobj, bool) {
	for _, s := range ss {
		var ok bool
		if dst, ok = g.expandOne(dst, s, 0); !ok {
			return dst, false
		}
	}
	return dst, true
}

func (g *gen) expandOne(dst []*jobj, s any, hops int) ([]*jobj, bool) {
	switch s := s.(type) {
	case bool:
		return dst, s
	case *jobj:
		for _, m := range dst {
			if m == s {
				return dst, true
			}
		}
		if len(dst) >= maxExpand || hops > 64 {
			return dst, true
		}
		dst = append(dst, s)
		ok := true
		if ref, isStr := s.vals["$ref"].(string); isStr {
			if t, found := g.resolve(ref); found {
				dst, ok = g.expandOne(dst, t, hops+1)
			}
		}
		if all, isArr := s.vals["allOf"].([]any); isArr && ok {
			for _, a := range all {
				if dst, ok = g.expandOne(dst, a, hops+1); !ok {
					break
				}
			}
		}
		return dst, ok
	}
	return dst, true // not a schema: nothing to follow
}

// choose picks one branch of each anyOf and oneOf in the conjunction and adds it, until
// none is left unchosen; for if/then/else it adds if and then (so the condition holds and
// its consequence with it) or, on other attempts, else (the check then tells whether the
// condition failed as it must). Choices are drawn from salt; attempt k turns each choice
// k branches on, so retries go round every branch.
func (g *gen) choose(base []*jobj, d, attempt int, salt uint64) ([]*jobj, bool) {
	c := append([]*jobj(nil), base...)
	for i := 0; i < len(c); i++ {
		h := mix64(salt ^ uint64(i+1)*0x2545f4914f6cdd1d)
		if cond, ok := c[i].vals["if"]; ok {
			then, hasThen := c[i].vals["then"]
			els, hasElse := c[i].vals["else"]
			elseFirst := (h+uint64(attempt))%2 == 1
			if !hasThen {
				elseFirst = attempt%2 == 1
			}
			var path []any
			switch {
			case hasElse && elseFirst:
				path = []any{els}
			case hasThen:
				path = []any{cond, then}
			case hasElse:
				path = []any{cond}
			}
			n := len(c)
			next, ok := g.expand(c, path)
			if ok {
				c = next
			} else {
				c = next[:n]
			}
		}
		for j, key := range [...]string{"anyOf", "oneOf"} {
			branches, _ := c[i].vals[key].([]any)
			if len(branches) == 0 {
				continue
			}
			picked := false
			for _, k := range branchOrder(branches, d, mix64(h+uint64(j)), attempt) {
				n := len(c)
				next, ok := g.expandOne(c, branches[k], 0)
				if ok {
					c, picked = next, true
					break
				}
				c = next[:n]
			}
			if !picked {
				return c, false
			}
		}
	}
	return c, true
}

// branchOrder is the order in which to try branches: from one drawn by the seed, with a
// branch that is only null put last three times in four (an Optional field is mostly
// filled in), and, deep in a recursive schema, branches without a reference first so
// the recursion ends.
func branchOrder(branches []any, d int, h uint64, attempt int) []int {
	n := len(branches)
	start := int((h%uint64(n) + uint64(attempt)) % uint64(n))
	order := make([]int, 0, n)
	var later []int
	nullLast := (h>>32)%4 != 0
	for i := range n {
		k := (start + i) % n
		b, _ := branches[k].(*jobj)
		switch {
		case d >= softDepth && b != nil && b.vals["$ref"] != nil:
			later = append(later, k)
		case d < softDepth && nullLast && b != nil && b.vals["type"] == "null":
			later = append(later, k)
		default:
			order = append(order, k)
		}
	}
	return append(order, later...)
}

// JSON types as bits; integer is a subset of number.
const (
	tNull = 1 << iota
	tBool
	tInt  // numbers without a fractional part
	tFrac // numbers with one
	tStr
	tArr
	tObj
	tAll = 1<<iota - 1
)

var typeBits = map[string]int{
	"null": tNull, "boolean": tBool, "integer": tInt, "number": tInt | tFrac,
	"string": tStr, "array": tArr, "object": tObj,
}

// Keywords that say which type a schema without "type" is about.
var typeHints = []struct {
	bits int
	kws  []string
}{
	{tObj, []string{"properties", "required", "additionalProperties", "patternProperties", "minProperties", "maxProperties", "propertyNames", "dependentRequired"}},
	{tArr, []string{"items", "prefixItems", "minItems", "maxItems", "contains", "uniqueItems", "additionalItems"}},
	{tStr, []string{"minLength", "maxLength", "pattern", "format"}},
	{tInt | tFrac, []string{"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf"}},
}

// instance makes a value of the conjunction c, whose branches are chosen, preferring one
// equal to none of avoid.
func (g *gen) instance(c []*jobj, d int, avoid []any) (any, bool) {
	var cands []any
	for _, m := range c {
		if v, ok := m.vals["const"]; ok {
			cands = []any{v}
			break
		}
		if e, ok := m.vals["enum"].([]any); ok && cands == nil {
			cands = e
		}
	}
	if cands != nil {
		if len(cands) == 0 {
			return nil, false
		}
		start := g.draw()
		for _, fresh := range [...]bool{true, false} {
			for i := range cands {
				v := cands[(start+uint64(i))%uint64(len(cands))]
				if (!fresh || !containsEqual(avoid, v)) && g.checkAll(c, v) == yes {
					return v, true
				}
			}
		}
		return cands[start%uint64(len(cands))], false
	}
	for _, m := range c {
		if dv, ok := m.vals["default"]; ok {
			if g.draw()%2 == 0 && g.checkAll(c, dv) == yes {
				return dv, true
			}
			break
		}
	}

	mask := tAll
	var listed []int
	nullable := false
	for _, m := range c {
		if t, ok := m.vals["type"]; ok {
			bits, order := parseType(t)
			mask &= bits
			if listed == nil {
				listed = order
			}
		}
		if b, _ := m.vals["nullable"].(bool); b {
			nullable = true
		}
	}
	// Order: the types the first "type" lists, then those keywords hint at, then the
	// rest, null last: a schema that allows null and something else gets the something.
	var order []int
	seen := 0
	add := func(b int) {
		if b&mask != 0 && b&seen == 0 {
			order = append(order, b)
			seen |= b
		}
	}
	for _, b := range listed {
		if b != tNull {
			add(b)
		}
	}
	for _, h := range typeHints {
		for _, m := range c {
			for _, k := range h.kws {
				if _, ok := m.vals[k]; ok {
					add(h.bits)
				}
			}
		}
	}
	for _, b := range [...]int{tStr, tInt | tFrac, tInt, tBool, tObj, tArr, tNull} {
		add(b)
	}
	var best any
	for i, t := range order {
		v, ok := g.ofType(t, mask, c, d, avoid)
		if ok {
			return v, true
		}
		if i == 0 {
			best = v // the nearest miss, if nothing fits
		}
	}
	// nullable (OpenAPI) is not JSON Schema: null is a last resort, when nothing else fits.
	if nullable || mask&tNull != 0 {
		return nil, mask&tNull != 0
	}
	return best, false
}

func parseType(t any) (bits int, order []int) {
	switch t := t.(type) {
	case string:
		if b, ok := typeBits[t]; ok {
			return b, []int{b}
		}
		return 0, nil
	case []any:
		for _, e := range t {
			s, _ := e.(string)
			if b, ok := typeBits[s]; ok {
				bits |= b
				order = append(order, b)
			}
		}
		return bits, order
	}
	return tAll, nil
}

func (g *gen) ofType(t, mask int, c []*jobj, d int, avoid []any) (any, bool) {
	switch {
	case t == tNull:
		return nil, true
	case t == tBool:
		b := g.draw()&1 == 1
		if containsEqual(avoid, b) {
			b = !b
		}
		return b, true
	case t&(tInt|tFrac) != 0:
		return g.number(c, mask&tFrac == 0 || t == tInt)
	case t == tStr:
		return g.str(c)
	case t == tArr:
		return g.array(c, d)
	case t == tObj:
		return g.object(c, d)
	}
	return nil, false
}

// Numbers are exact (math/big), as the validator's multipleOf and bounds are: a float
// would make 0.1 × 3 fail a multipleOf of 0.1.

// ratOf reads a JSON number; an exponent beyond ±400 is refused, since its exact value
// would take unbounded memory.
func ratOf(v any) (*big.Rat, bool) {
	n, ok := v.(json.Number)
	if !ok || len(n) > 400 {
		return nil, false
	}
	s := string(n)
	if i := strings.IndexAny(s, "eE"); i >= 0 {
		e, err := strconv.Atoi(s[i+1:])
		if err != nil || e > 400 || e < -400 {
			return nil, false
		}
	}
	return new(big.Rat).SetString(s)
}

// countOf reads a non-negative integer keyword (minLength, maxItems, ...).
func countOf(v any) (int, bool) {
	r, ok := ratOf(v)
	if !ok || !r.IsInt() || r.Sign() < 0 || r.Num().BitLen() > 62 {
		return 0, false
	}
	return int(r.Num().Int64()), true
}

// ratString renders a number exactly, without an exponent.
func ratString(r *big.Rat) json.Number {
	if r.IsInt() {
		return json.Number(r.Num().String())
	}
	d := new(big.Int).Set(r.Denom())
	two, five, zero := big.NewInt(2), big.NewInt(5), new(big.Int)
	var a, b int
	m := new(big.Int)
	for m.Mod(d, two).Cmp(zero) == 0 {
		d.Quo(d, two)
		a++
	}
	for m.Mod(d, five).Cmp(zero) == 0 {
		d.Quo(d, five)
		b++
	}
	prec := max(a, b)
	if d.Cmp(big.NewInt(1)) != 0 {
		prec = 20 // not a finite decimal; cannot come from decimal bounds
	}
	return json.Number(r.FloatString(prec))
}

func lcmRat(a, b *big.Rat) *big.Rat {
	if a == nil {
		return b
	}
	// lcm(p/q, r/s) = lcm(p, r) / gcd(q, s), both in lowest terms.
	p, r := new(big.Int).Abs(a.Num()), new(big.Int).Abs(b.Num())
	gcd := new(big.Int).GCD(nil, nil, p, r)
	num := new(big.Int).Mul(p, r)
	num.Quo(num, gcd)
	den := new(big.Int).GCD(nil, nil, a.Denom(), b.Denom())
	return new(big.Rat).SetFrac(num, den)
}

func (g *gen) number(c []*jobj, intOnly bool) (any, bool) {
	var lo, hi *big.Rat
	var loEx, hiEx bool
	lower := func(r *big.Rat, ex bool) {
		if lo == nil || r.Cmp(lo) > 0 || (r.Cmp(lo) == 0 && ex) {
			lo, loEx = r, ex
		}
	}
	upper := func(r *big.Rat, ex bool) {
		if hi == nil || r.Cmp(hi) < 0 || (r.Cmp(hi) == 0 && ex) {
			hi, hiEx = r, ex
		}
	}
	var step *big.Rat
	if intOnly {
		step = big.NewRat(1, 1)
	}
	for _, m := range c {
		if r, ok := ratOf(m.vals["minimum"]); ok {
			ex, _ := m.vals["exclusiveMinimum"].(bool)
			lower(r, ex)
		}
		if r, ok := ratOf(m.vals["exclusiveMinimum"]); ok {
			lower(r, true)
		}
		if r, ok := ratOf(m.vals["maximum"]); ok {
			ex, _ := m.vals["exclusiveMaximum"].(bool)
			upper(r, ex)
		}
		if r, ok := ratOf(m.vals["exclusiveMaximum"]); ok {
			upper(r, true)
		}
		if r, ok := ratOf(m.vals["multipleOf"]); ok && r.Sign() > 0 {
			if step = lcmRat(step, r); step.Num().BitLen() > 4096 {
				return nil, false
			}
		}
	}
	inside := func(v *big.Rat) bool {
		if lo != nil && (v.Cmp(lo) < 0 || (loEx && v.Cmp(lo) == 0)) {
			return false
		}
		return hi == nil || !(v.Cmp(hi) > 0 || (hiEx && v.Cmp(hi) == 0))
	}
	h := g.draw()
	want := big.NewRat(int64(h%100), 1)
	if !intOnly {
		want = big.NewRat(int64(h%10000), 100)
	}
	if step != nil {
		// Multiples k·step with k in [kmin, kmax]; the one nearest the drawn value.
		k := new(big.Int)
		q := new(big.Rat).Quo(want, step)
		k.Quo(q.Num(), q.Denom())
		if lo != nil {
			kmin := ceilRat(new(big.Rat).Quo(lo, step), loEx)
			if k.Cmp(kmin) < 0 {
				k = kmin
			}
		}
		if hi != nil {
			kmax := floorRat(new(big.Rat).Quo(hi, step), hiEx)
			if k.Cmp(kmax) > 0 {
				k = kmax
			}
		}
		v := new(big.Rat).Mul(new(big.Rat).SetInt(k), step)
		return ratString(v), inside(v)
	}
	if inside(want) {
		return ratString(want), true
	}
	off := big.NewRat(int64(h%10)+1, 1)
	var cands []*big.Rat
	if lo != nil {
		cands = append(cands, new(big.Rat).Add(lo, off))
	}
	if hi != nil {
		cands = append(cands, new(big.Rat).Sub(hi, off))
	}
	if lo != nil && hi != nil {
		mid := new(big.Rat).Add(lo, hi)
		cands = append(cands, mid.Quo(mid, big.NewRat(2, 1)))
	}
	if lo != nil {
		cands = append(cands, lo)
	}
	for _, v := range cands {
		if inside(v) {
			return ratString(v), true
		}
	}
	return ratString(want), false
}

// ceilRat is the least integer above q (at or above it unless strict).
func ceilRat(q *big.Rat, strict bool) *big.Int {
	k := new(big.Int)
	m := new(big.Int)
	k.DivMod(q.Num(), q.Denom(), m) // Euclidean: floor for a positive denominator
	if m.Sign() != 0 || strict {
		k.Add(k, big.NewInt(1))
	}
	return k
}

// floorRat is the greatest integer below q (at or below it unless strict).
func floorRat(q *big.Rat, strict bool) *big.Int {
	k := new(big.Int)
	m := new(big.Int)
	k.DivMod(q.Num(), q.Denom(), m)
	if m.Sign() == 0 && strict {
		k.Sub(k, big.NewInt(1))
	}
	return k
}

// textLeaf is a free-text string: base words when generated, extra words from the
// request's output budget later (stretch), within its length bounds.
type textLeaf struct {
	words    []string
	extra    []string
	min, max int // in characters (all words are ASCII); max < 0: none
	s        string
}

func (l *textLeaf) render() {
	all := append(append([]string(nil), l.words...), l.extra...)
	s := strings.Join(all, " ")
	if l.max >= 0 && len(s) > l.max {
		s = s[:l.max]
		if i := strings.LastIndexByte(s, ' '); i >= l.min && i > 0 {
			s = s[:i]
		}
	}
	if len(s) < l.min {
		var b strings.Builder
		b.WriteString(s)
		for i := 0; b.Len() < l.min; i++ {
			if b.Len() > 0 {
				b.WriteByte(' ')
			}
			b.WriteString(all[i%len(all)])
		}
		s = b.String()
	}
	if l.max >= 0 && len(s) > l.max {
		s = s[:l.max]
	}
	l.s = s
}

func (g *gen) newLeaf(minL, maxL int) *textLeaf {
	l := &textLeaf{min: minL, max: maxL}
	for range 1 + g.draw()%3 {
		l.words = append(l.words, OutputWord(g.seed, g.words))
		g.words++
	}
	l.render()
	g.leaves = append(g.leaves, l)
	return l
}

// stretch deals n more words of the sequence (from word index from on) round-robin to
// the leaves, as the simulator has always shared words among string arguments; a leaf
// at its maxLength takes no more.
func stretch(leaves []*textLeaf, seed uint64, from, n int) {
	lens := make([]int, len(leaves))
	open := 0
	for i, l := range leaves {
		l.extra = l.extra[:0]
		lens[i] = len(strings.Join(l.words, " "))
		if l.max < 0 || lens[i] < l.max {
			open++
		} else {
			lens[i] = -1
		}
	}
	for j, i := 0, 0; j < n && open > 0; i++ {
		k := i % len(leaves)
		if lens[k] < 0 {
			continue
		}
		l, w := leaves[k], OutputWord(seed, from+j)
		if l.max >= 0 && lens[k]+1+len(w) > l.max {
			lens[k] = -1
			open--
			continue
		}
		l.extra = append(l.extra, w)
		lens[k] += 1 + len(w)
		j++
	}
	for _, l := range leaves {
		l.render()
	}
}

func (g *gen) str(c []*jobj) (any, bool) {
	minL, maxL := 0, -1
	var pats []*regexp.Regexp
	format := ""
	for _, m := range c {
		if n, ok := countOf(m.vals["minLength"]); ok {
			minL = max(minL, n)
		}
		if n, ok := countOf(m.vals["maxLength"]); ok && (maxL < 0 || n < maxL) {
			maxL = n
		}
		if p, ok := m.vals["pattern"].(string); ok {
			if re := g.regexp(p); re != nil {
				pats = append(pats, re)
			}
		}
		if f, ok := m.vals["format"].(string); ok && format == "" {
			format = f
		}
	}
	if g.chars += minL; (maxL >= 0 && minL > maxL) || minL > maxOutChars || g.chars > maxDocChars {
		return "", false
	}
	fits := func(s string) bool {
		n := utf8.RuneCountInString(s)
		if n < minL || (maxL >= 0 && n > maxL) {
			return false
		}
		for _, re := range pats {
			if !re.MatchString(s) {
				return false
			}
		}
		return true
	}
	f, known := formats[format]
	if known {
		if s := f.make(g); fits(s) {
			return s, true
		}
	}
	if len(pats) == 0 && !known {
		return g.newLeaf(minL, maxL), true
	}
	// Short plain candidates first, then one made from the pattern itself.
	w, w2 := OutputWord(g.seed, g.words), OutputWord(g.seed, g.words+1)
	g.words += 2
	cands := []string{w, w + " " + w2, strings.ToUpper(w), strings.ToUpper(w[:1]) + w[1:], w + "_" + w2, w + "-" + w2, "0", "1", w + "1", ""}
	for _, re := range pats {
		cands = append(cands, sampleRegexp(re.String(), g))
	}
	for _, s := range cands {
		if fits(s) {
			return s, true
		}
	}
	for _, s := range cands {
		for _, p := range []string{padTo(s, minL), truncTo(s, maxL)} {
			if fits(p) {
				return p, true
			}
		}
	}
	return w, false
}

// padTo repeats the last character of s up to n characters.
func padTo(s string, n int) string {
	if s == "" {
		s = "a"
	}
	if k := n - utf8.RuneCountInString(s); k > 0 {
		r, _ := utf8.DecodeLastRuneInString(s)
		s += strings.Repeat(string(r), k)
	}
	return s
}

// truncTo cuts s to n characters (n < 0: no limit).
func truncTo(s string, n int) string {
	for i := range s {
		if n == 0 {
			return s[:i]
		}
		n--
	}
	return s
}

// sampleRegexp makes a short string from a pattern's syntax: the least repetitions, the
// first alternative, a plain character of each class. The caller checks it matches.
func sampleRegexp(p string, g *gen) string {
	re, err := syntax.Parse(p, syntax.Perl)
	if err != nil {
		return ""
	}
	var b strings.Builder
	var walk func(re *syntax.Regexp)
	walk = func(re *syntax.Regexp) {
		if b.Len() > maxOutChars {
			return
		}
		switch re.Op {
		case syntax.OpLiteral:
			b.WriteString(string(re.Rune))
		case syntax.OpCharClass:
			b.WriteRune(classRune(re.Rune, g.draw()))
		case syntax.OpAnyChar, syntax.OpAnyCharNotNL:
			b.WriteByte('a')
		case syntax.OpCapture:
			walk(re.Sub[0])
		case syntax.OpConcat:
			for _, s := range re.Sub {
				walk(s)
			}
		case syntax.OpAlternate:
			walk(re.Sub[0])
		case syntax.OpPlus:
			walk(re.Sub[0])
		case syntax.OpRepeat:
			for i := 0; i < re.Min && b.Len() <= maxOutChars; i++ {
				walk(re.Sub[0])
			}
		}
	}
	walk(re)
	return b.String()
}

// classRune picks a character of a class (pairs of range bounds): a lower-case letter,
// digit or upper-case letter if the class has one, else its first character.
func classRune(ranges []rune, h uint64) rune {
	for _, want := range [][2]rune{{'a', 'z'}, {'0', '9'}, {'A', 'Z'}} {
		for i := 0; i+1 < len(ranges); i += 2 {
			lo, hi := max(ranges[i], want[0]), min(ranges[i+1], want[1])
			if lo <= hi {
				return lo + rune(h%uint64(hi-lo+1))
			}
		}
	}
	if len(ranges) > 0 {
		return ranges[0]
	}
	return 'a'
}

// position is the conjunction that constrains item i of an array.
func (g *gen) position(c []*jobj, i int) []any {
	var ss []any
	for _, m := range c {
		items, hasItems := m.vals["items"]
		prefix, _ := m.vals["prefixItems"].([]any)
		if i < len(prefix) {
			ss = append(ss, prefix[i]) // ignored before 2020-12; honouring it only narrows
		}
		if tuple, ok := items.([]any); ok {
			if i < len(tuple) {
				ss = append(ss, tuple[i])
			} else if ai, ok := m.vals["additionalItems"]; ok {
				ss = append(ss, ai)
			}
			continue
		}
		if hasItems && (i >= len(prefix) || g.draft < 2020) {
			ss = append(ss, items)
		}
	}
	return ss
}

func (g *gen) array(c []*jobj, d int) (any, bool) {
	minI, maxI := 0, -1
	unique := false
	var contains []any
	for _, m := range c {
		if n, ok := countOf(m.vals["minItems"]); ok {
			minI = max(minI, n)
		}
		if n, ok := countOf(m.vals["maxItems"]); ok && (maxI < 0 || n < maxI) {
			maxI = n
		}
		if b, _ := m.vals["uniqueItems"].(bool); b {
			unique = true
		}
		if s, ok := m.vals["contains"]; ok {
			if n, ok := countOf(m.vals["minContains"]); !ok || n > 0 {
				contains = append(contains, s)
			}
		}
	}
	if (maxI >= 0 && minI > maxI) || minI > maxOutItems {
		return []any{}, false
	}
	n := 1 + int(g.draw()%3)
	if d >= softDepth {
		n = 0
	}
	if len(contains) > 0 {
		n = max(n, 1)
	}
	n = max(n, minI)
	if maxI >= 0 {
		n = min(n, maxI)
	}
	out := make([]any, 0, n)
	ok := true
	for i := range n {
		if g.budget < 0 {
			return out, false
		}
		ss := g.position(c, i)
		if i == 0 {
			ss = append(ss, contains...)
		}
		if hasFalse(ss) {
			ok = ok && i >= minI
			break
		}
		var v any
		var vok bool
		for range 3 {
			if unique {
				g.avoid = out
			}
			v, vok = g.value(ss, d+1)
			if !unique || !containsEqual(out, v) {
				break
			}
		}
		ok = ok && vok
		out = append(out, v)
	}
	return out, ok
}

func hasFalse(ss []any) bool {
	for _, s := range ss {
		if b, ok := s.(bool); ok && !b {
			return true
		}
	}
	return false
}

func containsEqual(list []any, v any) bool {
	for _, e := range list {
		if equalJSON(e, v) != no {
			return true
		}
	}
	return false
}

// propSchemas is the conjunction for property name in the objects of c: its
// properties entry, the patternProperties it matches, else additionalProperties.
func (g *gen) propSchemas(c []*jobj, name string) (ss []any, forbidden bool) {
	for _, m := range c {
		matched := false
		if props, ok := m.vals["properties"].(*jobj); ok {
			if s, ok := props.vals[name]; ok {
				ss, matched = append(ss, s), true
			}
		}
		if pp, ok := m.vals["patternProperties"].(*jobj); ok {
			for _, p := range pp.keys {
				if re := g.regexp(p); re != nil && re.MatchString(name) {
					ss, matched = append(ss, pp.vals[p]), true
				}
			}
		}
		if ap, ok := m.vals["additionalProperties"]; ok && !matched {
			ss = append(ss, ap)
		}
	}
	return ss, hasFalse(ss)
}

func (g *gen) object(c []*jobj, d int) (any, bool) {
	var names []string
	known := map[string]bool{}
	required := map[string]bool{}
	deps := map[string][]string{}
	note := func(n string) {
		if !known[n] {
			known[n] = true
			names = append(names, n)
		}
	}
	minP, maxP := 0, -1
	for _, m := range c {
		if props, ok := m.vals["properties"].(*jobj); ok {
			for _, k := range props.keys {
				note(k)
			}
		}
		if n, ok := countOf(m.vals["minProperties"]); ok {
			minP = max(minP, n)
		}
		if n, ok := countOf(m.vals["maxProperties"]); ok && (maxP < 0 || n < maxP) {
			maxP = n
		}
		for _, kw := range [...]string{"dependentRequired", "dependencies"} {
			if dm, ok := m.vals[kw].(*jobj); ok {
				for _, k := range dm.keys {
					if list, ok := dm.vals[k].([]any); ok {
						for _, e := range list {
							if s, ok := e.(string); ok {
								deps[k] = append(deps[k], s)
							}
						}
					}
				}
			}
		}
	}
	for _, m := range c {
		if req, ok := m.vals["required"].([]any); ok {
			for _, e := range req {
				if s, ok := e.(string); ok {
					required[s] = true
					note(s)
				}
			}
		}
	}
	if minP > maxOutItems {
		return &jobj{vals: map[string]any{}}, false
	}
	// A property whose presence brings a schema along (dependentSchemas, dependencies
	// with a schema) is left out unless required; the check covers the required ones.
	bringsSchema := func(n string) bool {
		for _, m := range c {
			for _, kw := range [...]string{"dependentSchemas", "dependencies"} {
				if dm, ok := m.vals[kw].(*jobj); ok {
					if s, ok := dm.vals[n]; ok {
						if _, isList := s.([]any); !isList {
							return true
						}
					}
				}
			}
		}
		return false
	}
	// propertyNames: a name the names schema refuses cannot be used.
	nameOK := func(n string) bool {
		for _, m := range c {
			if pn, ok := m.vals["propertyNames"]; ok && g.check(pn, n, 0) == no {
				return false
			}
		}
		return true
	}
	minimal := d >= softDepth
	in := map[string]bool{}
	var list []string
	ok := true
	include := func(n string) bool {
		if in[n] {
			return true
		}
		if _, forbidden := g.propSchemas(c, n); forbidden || !nameOK(n) {
			return false
		}
		in[n] = true
		list = append(list, n)
		return true
	}
	for _, n := range names {
		switch {
		case required[n]:
			ok = include(n) && ok
		case !minimal && !bringsSchema(n):
			include(n)
		}
	}
	for i := 0; i < len(list); i++ { // dependentRequired, to a fixed point
		for _, dep := range deps[list[i]] {
			ok = include(dep) && ok
		}
	}
	for _, n := range names { // minProperties: the optional ones left out, then new names
		if len(list) >= minP {
			break
		}
		if !in[n] && !bringsSchema(n) && len(deps[n]) == 0 {
			include(n)
		}
	}
	for k := 0; len(list) < minP && k < 4*minP+16 && g.budget >= 0; k++ {
		n := OutputWord(g.seed, g.words+k) + strconv.Itoa(k)
		if !known[n] && len(deps[n]) == 0 && !bringsSchema(n) {
			include(n)
		}
	}
	if maxP >= 0 && len(list) > maxP {
		// Drop optional properties, the last first.
		drop := len(list) - maxP
		for i := len(list) - 1; i >= 0 && drop > 0; i-- {
			if !required[list[i]] {
				in[list[i]] = false
				drop--
			}
		}
		kept := make([]string, 0, maxP)
		for _, n := range list {
			if in[n] {
				kept = append(kept, n)
			}
		}
		list = kept
	}
	ok = ok && len(list) >= minP && (maxP < 0 || len(list) <= maxP)
	o := &jobj{vals: make(map[string]any, len(list))}
	for _, n := range list {
		if g.budget < 0 {
			return o, false
		}
		ss, _ := g.propSchemas(c, n)
		v, vok := g.value(ss, d+1)
		ok = ok && vok
		o.keys = append(o.keys, n)
		o.vals[n] = v
	}
	return o, ok
}

// Formats: a generator for each format the validator knows, and the shape of what it
// makes. The checker accepts a string of that shape (valid by construction) and cannot
// tell about any other, so an enum value with a format is only "don't know".
type formatGen struct {
	make  func(g *gen) string
	shape *regexp.Regexp
}

var formats = func() map[string]formatGen {
	day := func(g *gen) string {
		h := g.draw()
		return "20" + two(h%30) + "-" + two(1+h/30%12) + "-" + two(1+h/360%28)
	}
	clock := func(g *gen) string {
		h := g.draw()
		return two(h%24) + ":" + two(h/24%60) + ":" + two(h/1440%60) + "Z"
	}
	word := func(g *gen) string {
		w := OutputWord(g.seed, g.words)
		g.words++
		return w
	}
	uri := func(g *gen) string { return "https://example.com/" + word(g) }
	email := func(g *gen) string { return word(g) + "@example.com" }
	host := func(g *gen) string { return word(g) + ".example.com" }
	const (
		dayRE   = `20\d\d-(0[1-9]|1[0-2])-(0[1-9]|1\d|2[0-8])`
		clockRE = `([01]\d|2[0-3]):[0-5]\d:[0-5]\dZ`
		octetRE = `(\d|[1-9]\d|1\d\d|2[0-4]\d|25[0-5])`
	)
	f := func(make func(*gen) string, shape string) formatGen {
		return formatGen{make, regexp.MustCompile(`^(?:` + shape + `)$`)}
	}
	return map[string]formatGen{
		"date-time": f(func(g *gen) string { return day(g) + "T" + clock(g) }, dayRE+`T`+clockRE),
		"date":      f(day, dayRE),
		"time":      f(clock, clockRE),
		"duration":  f(func(g *gen) string { return "P" + strconv.Itoa(1+int(g.draw()%30)) + "D" }, `P[1-9]\d?D`),
		"period": f(func(g *gen) string { return day(g) + "T" + clock(g) + "/P" + strconv.Itoa(1+int(g.draw()%30)) + "D" },
			dayRE+`T`+clockRE+`/P[1-9]\d?D`),
		"email":        f(email, `[a-z]{1,32}@example\.com`),
		"idn-email":    f(email, `[a-z]{1,32}@example\.com`),
		"hostname":     f(host, `[a-z]{1,32}\.example\.com`),
		"idn-hostname": f(host, `[a-z]{1,32}\.example\.com`),
		"ipv4": f(func(g *gen) string {
			h := g.draw()
			return "10." + u(h%256) + "." + u(h/256%256) + "." + u(h/65536%256)
		}, `10(\.`+octetRE+`){3}`),
		"ipv6":          f(func(g *gen) string { return "2001:db8::" + strconv.FormatUint(1+g.draw()%0xfffe, 16) }, `2001:db8::[0-9a-f]{1,4}`),
		"uri":           f(uri, `https://example\.com/[a-z]{1,32}`),
		"iri":           f(uri, `https://example\.com/[a-z]{1,32}`),
		"uri-reference": f(uri, `https://example\.com/[a-z]{1,32}`),
		"iri-reference": f(uri, `https://example\.com/[a-z]{1,32}`),
		"uri-template":  f(func(g *gen) string { return "https://example.com/{" + word(g) + "}" }, `https://example\.com/\{[a-z]{1,32}\}`),
		"uuid": f(func(g *gen) string {
			h1, h2 := g.draw(), g.draw()
			s := hex16(h1) + hex16(h2)
			return s[:8] + "-" + s[8:12] + "-4" + s[13:16] + "-" + string("89ab"[h2>>62]) + s[17:20] + "-" + s[20:32]
		}, `[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}`),
		"json-pointer":          f(func(g *gen) string { return "/" + word(g) }, `/[a-z]{1,32}`),
		"relative-json-pointer": f(func(g *gen) string { return "0/" + word(g) }, `0/[a-z]{1,32}`),
		"semver":                f(func(g *gen) string { h := g.draw(); return u(1+h%9) + "." + u(h/9%10) + "." + u(h/90%10) }, `[1-9]\.\d\.\d`),
		"regex":                 f(func(g *gen) string { return "^" + word(g) + "$" }, `\^[a-z]{1,32}\$`),
	}
}()

func two(n uint64) string {
	s := strconv.FormatUint(n, 10)
	if len(s) < 2 {
		s = "0" + s
	}
	return s
}

func u(n uint64) string { return strconv.FormatUint(n, 10) }

func hex16(h uint64) string {
	s := strconv.FormatUint(h, 16)
	return strings.Repeat("0", 16-len(s)) + s
}

// The checker.

// tri is a checker's answer, ordered so that min is "and" and max is "or".
type tri int8

const (
	no tri = iota
	maybe
	yes
)

// check validates v against schema s as santhosh-tekuri/jsonschema/v6 does, for the
// draft the document declares. yes and no are certain; anything the checker does not
// implement ($dynamicRef, unevaluated*, remote references, a format string of unknown
// shape, numbers too large to hold) makes its part maybe.
func (g *gen) check(s any, v any, depth int) tri {
	if g.budget--; g.budget < 0 || depth > 512 {
		return maybe
	}
	switch s := s.(type) {
	case bool:
		if s {
			return yes
		}
		return no
	case *jobj:
		return g.checkSchema(s, v, depth)
	}
	return maybe
}

func (g *gen) checkSchema(m *jobj, v any, depth int) tri {
	r := yes
	and := func(t tri) bool {
		r = min(r, t)
		return r == no
	}
	if ref, ok := m.vals["$ref"]; ok {
		rs, isStr := ref.(string)
		t, found := g.resolve(rs)
		if !isStr || !found {
			r = maybe
		} else if and(g.check(t, v, depth+1)) {
			return no
		}
		if g.draft < 2019 {
			return r // before 2019-09, $ref's siblings are ignored
		}
	}
	for _, k := range [...]string{"$dynamicRef", "$recursiveRef", "unevaluatedProperties", "unevaluatedItems"} {
		if _, ok := m.vals[k]; ok && g.draft >= 2019 {
			r = min(r, maybe)
		}
	}
	if all, ok := m.vals["allOf"]; ok {
		list, isArr := all.([]any)
		if !isArr {
			r = min(r, maybe)
		}
		for _, s := range list {
			if and(g.check(s, v, depth+1)) {
				return no
			}
		}
	}
	if anyOf, ok := m.vals["anyOf"]; ok {
		list, _ := anyOf.([]any)
		t := no
		if len(list) == 0 {
			t = maybe
		}
		for _, s := range list {
			if t = max(t, g.check(s, v, depth+1)); t == yes {
				break
			}
		}
		if and(t) {
			return no
		}
	}
	if oneOf, ok := m.vals["oneOf"]; ok {
		list, _ := oneOf.([]any)
		yeses, maybes := 0, 0
		if len(list) == 0 {
			maybes++
		}
		for _, s := range list {
			switch g.check(s, v, depth+1) {
			case yes:
				yeses++
			case maybe:
				maybes++
			}
		}
		switch {
		case yeses >= 2:
			return no
		case maybes > 0:
			r = min(r, maybe)
		case yeses == 0:
			return no
		}
	}
	if not, ok := m.vals["not"]; ok && and(yes-g.check(not, v, depth+1)) {
		return no
	}
	if cond, ok := m.vals["if"]; ok && g.draft >= 7 {
		then, hasThen := m.vals["then"]
		els, hasElse := m.vals["else"]
		switch g.check(cond, v, depth+1) {
		case yes:
			if hasThen && and(g.check(then, v, depth+1)) {
				return no
			}
		case no:
			if hasElse && and(g.check(els, v, depth+1)) {
				return no
			}
		default:
			if hasThen || hasElse {
				r = min(r, maybe)
			}
		}
	}
	if t, ok := m.vals["type"]; ok && and(g.checkType(t, v)) {
		return no
	}
	if e, ok := m.vals["enum"]; ok {
		list, isArr := e.([]any)
		t := no
		if !isArr {
			t = maybe
		}
		for _, x := range list {
			if t = max(t, equalJSON(x, v)); t == yes {
				break
			}
		}
		if and(t) {
			return no
		}
	}
	if c, ok := m.vals["const"]; ok && g.draft >= 6 && and(equalJSON(c, v)) {
		return no
	}
	switch v := v.(type) {
	case json.Number:
		and(g.checkNumber(m, v))
	case string:
		and(g.checkString(m, v))
	case *textLeaf:
		and(g.checkString(m, v.s))
	case []any:
		and(g.checkArray(m, v, depth))
	case *jobj:
		and(g.checkObject(m, v, depth))
	}
	return r
}

func kindOf(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case bool:
		return "boolean"
	case json.Number:
		return "number"
	case string, *textLeaf:
		return "string"
	case []any:
		return "array"
	case *jobj:
		return "object"
	}
	return ""
}

func (g *gen) checkType(t any, v any) tri {
	var names []string
	switch t := t.(type) {
	case string:
		names = []string{t}
	case []any:
		for _, e := range t {
			s, ok := e.(string)
			if !ok {
				return maybe
			}
			names = append(names, s)
		}
	default:
		return maybe
	}
	k := kindOf(v)
	r := no
	for _, n := range names {
		if _, ok := typeBits[n]; !ok {
			return maybe
		}
		switch {
		case n == k:
			return yes
		case n == "integer" && k == "number":
			q, ok := ratOf(v)
			if !ok {
				r = maybe
			} else if q.IsInt() {
				return yes
			}
		}
	}
	return r
}

func (g *gen) checkNumber(m *jobj, n json.Number) tri {
	var q *big.Rat
	num := func() (*big.Rat, bool) {
		if q == nil {
			var ok bool
			if q, ok = ratOf(n); !ok {
				return nil, false
			}
		}
		return q, true
	}
	r := yes
	bound := func(kw string, ok func(cmp int) bool) {
		x, present := m.vals[kw]
		if !present {
			return
		}
		if _, isBool := x.(bool); isBool {
			return // draft-04's exclusive flags, read with minimum and maximum
		}
		b, okb := ratOf(x)
		v, okv := num()
		switch {
		case !okb || !okv:
			r = min(r, maybe)
		case !ok(v.Cmp(b)):
			r = no
		}
	}
	exMin, _ := m.vals["exclusiveMinimum"].(bool)
	exMax, _ := m.vals["exclusiveMaximum"].(bool)
	bound("minimum", func(c int) bool { return c > 0 || (c == 0 && !exMin) })
	bound("maximum", func(c int) bool { return c < 0 || (c == 0 && !exMax) })
	bound("exclusiveMinimum", func(c int) bool { return c > 0 })
	bound("exclusiveMaximum", func(c int) bool { return c < 0 })
	if x, ok := m.vals["multipleOf"]; ok {
		d, okd := ratOf(x)
		v, okv := num()
		switch {
		case !okd || !okv || d.Sign() <= 0:
			r = min(r, maybe)
		case !new(big.Rat).Quo(v, d).IsInt():
			r = no
		}
	}
	return r
}

func (g *gen) checkString(m *jobj, s string) tri {
	r := yes
	n := -1
	for _, kw := range [...]string{"minLength", "maxLength"} {
		x, ok := m.vals[kw]
		if !ok {
			continue
		}
		limit, ok := countOf(x)
		if !ok {
			r = min(r, maybe)
			continue
		}
		if n < 0 {
			n = utf8.RuneCountInString(s)
		}
		if (kw == "minLength" && n < limit) || (kw == "maxLength" && n > limit) {
			return no
		}
	}
	if p, ok := m.vals["pattern"]; ok {
		ps, _ := p.(string)
		if re := g.regexp(ps); re == nil {
			r = min(r, maybe)
		} else if !re.MatchString(s) {
			return no
		}
	}
	if f, ok := m.vals["format"].(string); ok {
		if fg, known := formats[f]; known {
			if !fg.shape.MatchString(s) {
				r = min(r, maybe)
			}
		} else if assertedFormats[f] {
			r = min(r, maybe)
		}
	}
	return r
}

// assertedFormats are the validator's formats (it asserts them for drafts before 2019-09
// or when told to); all of them are in formats, so this only guards a future addition.
var assertedFormats = map[string]bool{
	"json-pointer": true, "relative-json-pointer": true, "uuid": true, "duration": true, "period": true,
	"ipv4": true, "ipv6": true, "hostname": true, "email": true, "date": true, "time": true,
	"date-time": true, "uri": true, "iri": true, "uri-reference": true, "iri-reference": true,
	"uri-template": true, "semver": true, "regex": true,
}

func (g *gen) checkArray(m *jobj, arr []any, depth int) tri {
	r := yes
	and := func(t tri) bool {
		r = min(r, t)
		return r == no
	}
	each := func(s any, from int) bool {
		for i := from; i < len(arr); i++ {
			if and(g.check(s, arr[i], depth+1)) {
				return true
			}
		}
		return false
	}
	items, hasItems := m.vals["items"]
	if g.draft < 2020 {
		if tuple, ok := items.([]any); ok {
			for i := 0; i < len(tuple) && i < len(arr); i++ {
				if and(g.check(tuple[i], arr[i], depth+1)) {
					return no
				}
			}
			if ai, ok := m.vals["additionalItems"]; ok && each(ai, len(tuple)) {
				return no
			}
		} else if hasItems && each(items, 0) {
			return no
		}
	} else {
		prefix, isArr := m.vals["prefixItems"].([]any)
		if _, present := m.vals["prefixItems"]; present && !isArr {
			r = maybe
		}
		for i := 0; i < len(prefix) && i < len(arr); i++ {
			if and(g.check(prefix[i], arr[i], depth+1)) {
				return no
			}
		}
		if hasItems {
			if _, isArr := items.([]any); isArr {
				r = min(r, maybe)
			} else if each(items, len(prefix)) {
				return no
			}
		}
	}
	for _, kw := range [...]string{"minItems", "maxItems"} {
		if x, ok := m.vals[kw]; ok {
			n, ok := countOf(x)
			switch {
			case !ok:
				r = min(r, maybe)
			case kw == "minItems" && len(arr) < n, kw == "maxItems" && len(arr) > n:
				return no
			}
		}
	}
	if b, _ := m.vals["uniqueItems"].(bool); b {
		for i := range arr {
			for j := i + 1; j < len(arr); j++ {
				if and(yes - equalJSON(arr[i], arr[j])) {
					return no
				}
			}
		}
	}
	if s, ok := m.vals["contains"]; ok && g.draft >= 6 {
		yeses, maybes := 0, 0
		for _, e := range arr {
			switch g.check(s, e, depth+1) {
			case yes:
				yeses++
			case maybe:
				maybes++
			}
		}
		lo, hi := 1, -1
		if g.draft >= 2019 {
			if x, ok := m.vals["minContains"]; ok {
				if lo, ok = countOf(x); !ok {
					return min(r, maybe)
				}
			}
			if x, ok := m.vals["maxContains"]; ok {
				if hi, ok = countOf(x); !ok {
					return min(r, maybe)
				}
			}
		}
		switch {
		case yeses+maybes < lo || (hi >= 0 && yeses > hi):
			return no
		case yeses < lo || (hi >= 0 && yeses+maybes > hi):
			r = min(r, maybe)
		}
	}
	return r
}

func (g *gen) checkObject(m *jobj, o *jobj, depth int) tri {
	r := yes
	and := func(t tri) bool {
		r = min(r, t)
		return r == no
	}
	requireAll := func(list any) bool {
		names, ok := list.([]any)
		if !ok {
			r = min(r, maybe)
			return false
		}
		for _, e := range names {
			s, ok := e.(string)
			if !ok {
				r = min(r, maybe)
				continue
			}
			if _, present := o.vals[s]; !present {
				return true
			}
		}
		return false
	}
	if req, ok := m.vals["required"]; ok && requireAll(req) {
		return no
	}
	props, _ := m.vals["properties"].(*jobj)
	if _, ok := m.vals["properties"]; ok && props == nil {
		r = min(r, maybe)
	}
	pp, _ := m.vals["patternProperties"].(*jobj)
	ap, hasAP := m.vals["additionalProperties"]
	pn, hasPN := m.vals["propertyNames"]
	for _, k := range o.keys {
		v := o.vals[k]
		matched := false
		if props != nil {
			if s, ok := props.vals[k]; ok {
				matched = true
				if and(g.check(s, v, depth+1)) {
					return no
				}
			}
		}
		if pp != nil {
			for _, p := range pp.keys {
				re := g.regexp(p)
				if re == nil {
					r = min(r, maybe)
					continue
				}
				if re.MatchString(k) {
					matched = true
					if and(g.check(pp.vals[p], v, depth+1)) {
						return no
					}
				}
			}
		}
		if hasAP && !matched && and(g.check(ap, v, depth+1)) {
			return no
		}
		if hasPN && g.draft >= 6 && and(g.check(pn, k, depth+1)) {
			return no
		}
	}
	for _, kw := range [...]string{"minProperties", "maxProperties"} {
		if x, ok := m.vals[kw]; ok {
			n, ok := countOf(x)
			switch {
			case !ok:
				r = min(r, maybe)
			case kw == "minProperties" && len(o.keys) < n, kw == "maxProperties" && len(o.keys) > n:
				return no
			}
		}
	}
	for _, kw := range [...]string{"dependencies", "dependentRequired", "dependentSchemas"} {
		x, ok := m.vals[kw]
		if !ok || (kw != "dependencies" && g.draft < 2019) {
			continue
		}
		dm, ok := x.(*jobj)
		if !ok {
			r = min(r, maybe)
			continue
		}
		for _, k := range dm.keys {
			if _, present := o.vals[k]; !present {
				continue
			}
			dep := dm.vals[k]
			if _, isList := dep.([]any); isList && kw != "dependentSchemas" {
				if requireAll(dep) {
					return no
				}
			} else if kw != "dependentRequired" {
				if and(g.check(dep, o, depth+1)) {
					return no
				}
			} else {
				r = min(r, maybe)
			}
		}
	}
	return r
}

// equalJSON compares as the validator does: numbers by value (1 and 1.0 are equal).
func equalJSON(a, b any) tri {
	if l, ok := a.(*textLeaf); ok {
		a = l.s
	}
	if l, ok := b.(*textLeaf); ok {
		b = l.s
	}
	switch a := a.(type) {
	case nil:
		return triOf(b == nil)
	case bool:
		bb, ok := b.(bool)
		return triOf(ok && a == bb)
	case string:
		bs, ok := b.(string)
		return triOf(ok && a == bs)
	case json.Number:
		bn, ok := b.(json.Number)
		if !ok {
			return no
		}
		x, okx := ratOf(a)
		y, oky := ratOf(bn)
		if !okx || !oky {
			return maybe
		}
		return triOf(x.Cmp(y) == 0)
	case []any:
		bl, ok := b.([]any)
		if !ok || len(a) != len(bl) {
			return no
		}
		r := yes
		for i := range a {
			if r = min(r, equalJSON(a[i], bl[i])); r == no {
				return no
			}
		}
		return r
	case *jobj:
		bo, ok := b.(*jobj)
		if !ok || len(a.keys) != len(bo.keys) {
			return no
		}
		r := yes
		for _, k := range a.keys {
			bv, ok := bo.vals[k]
			if !ok {
				return no
			}
			if r = min(r, equalJSON(a.vals[k], bv)); r == no {
				return no
			}
		}
		return r
	}
	return maybe
}

func triOf(b bool) tri {
	if b {
		return yes
	}
	return no
}

// appendJSON renders a generated value. Separators have a space after them, as models
// write JSON and as the simulator's tool calls always have; spaces are not tokens.
func appendJSON(b []byte, v any) []byte {
	switch v := v.(type) {
	case nil:
		return append(b, "null"...)
	case bool:
		return strconv.AppendBool(b, v)
	case json.Number:
		return append(b, v...)
	case string:
		return appendQuoted(b, v)
	case *textLeaf:
		return appendQuoted(b, v.s)
	case []any:
		b = append(b, '[')
		for i, e := range v {
			if i > 0 {
				b = append(b, ", "...)
			}
			b = appendJSON(b, e)
		}
		return append(b, ']')
	case *jobj:
		b = append(b, '{')
		for i, k := range v.keys {
			if i > 0 {
				b = append(b, ", "...)
			}
			b = appendQuoted(b, k)
			b = append(b, ": "...)
			b = appendJSON(b, v.vals[k])
		}
		return append(b, '}')
	}
	return append(b, "null"...)
}

func appendQuoted(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			b = append(b, '\\', c)
		case c == '\n':
			b = append(b, '\\', 'n')
		case c == '\r':
			b = append(b, '\\', 'r')
		case c == '\t':
			b = append(b, '\\', 't')
		case c < 0x20:
			b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
		case c < utf8.RuneSelf:
			b = append(b, c)
		default:
			r, n := utf8.DecodeRuneInString(s[i:])
			if r == utf8.RuneError && n == 1 {
				b = append(b, `\ufffd`...)
			} else {
				b = append(b, s[i:i+n]...)
			}
			i += n
			continue
		}
		i++
	}
	return append(b, '"')
}
