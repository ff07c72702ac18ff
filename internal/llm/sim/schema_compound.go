package sim

// Arrays and objects.

import (
	"strconv"
)

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
