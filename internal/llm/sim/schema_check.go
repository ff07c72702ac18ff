package sim

// The checker: validates a generated document with jsonschema/v6's rules, answering yes,
// no or "don't know".

import (
	"encoding/json"
	"math/big"
	"unicode/utf8"
)

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
