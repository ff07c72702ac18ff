package sim

// The generator: resolving $ref, merging conjunctions, choosing branches, and building an
// instance of each type.

import (
	"net/url"
	"regexp"
	"strconv"
	"strings"
)

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
