package sim

// Valid strings for the formats clients ask for (date-time, email, uri, uuid, ...).

import (
	"regexp"
	"strconv"
	"strings"
)

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
