package sim

// Strings: free text of the output sequence's words, sized to the request, and strings
// drawn from simple regular expressions.

import (
	"regexp"
	"regexp/syntax"
	"strings"
	"unicode/utf8"
)

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
