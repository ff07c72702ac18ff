package builtin

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// Limits of an expression: both keep a hostile or looping model from spending the
// kernel's stack or time.
const (
	maxExprLen   = 1024
	maxExprDepth = 64
)

// calcError is a mistake in the expression, with the 1-based column it is at.
type calcError struct {
	pos int
	msg string
}

func (e *calcError) Error() string {
	if e.pos > 0 {
		return fmt.Sprintf("%s (at column %d)", e.msg, e.pos)
	}
	return e.msg
}

// evaluate computes an arithmetic expression. The grammar, loosest first:
//
//	sum     = product { ("+" | "-") product }
//	product = unary { ("*" | "/" | "%") unary }
//	unary   = ("-" | "+") unary | power
//	power   = primary [ ("^" | "**") unary ]    right-associative: 2^3^2 = 2^9
//	primary = number | constant | function "(" sum { "," sum } ")" | "(" sum ")"
//
// so -2^2 is -4 and 2^-1 is 0.5, as in mathematics.
func evaluate(expr string) (float64, error) {
	if len(expr) > maxExprLen {
		return 0, &calcError{msg: fmt.Sprintf("the expression is %d bytes long; the limit is %d", len(expr), maxExprLen)}
	}
	p := &parser{s: expr}
	v, err := p.sum()
	if err != nil {
		return 0, err
	}
	p.space()
	if p.i < len(p.s) {
		return 0, p.errorf("unexpected %q", p.rest())
	}
	if math.IsInf(v, 0) || math.IsNaN(v) {
		return 0, &calcError{msg: "the result is too large to represent"}
	}
	return v, nil
}

type parser struct {
	s     string
	i     int
	depth int
}

func (p *parser) errorf(format string, args ...any) *calcError {
	return &calcError{pos: p.i + 1, msg: fmt.Sprintf(format, args...)}
}

// rest is the text from the current position, shortened for messages.
func (p *parser) rest() string {
	r := p.s[p.i:]
	if len(r) > 12 {
		r = r[:12] + "…"
	}
	return r
}

func (p *parser) space() {
	for p.i < len(p.s) && strings.IndexByte(" \t\r\n", p.s[p.i]) >= 0 {
		p.i++
	}
}

// eat consumes tok if it comes next.
func (p *parser) eat(tok string) bool {
	p.space()
	if strings.HasPrefix(p.s[p.i:], tok) {
		p.i += len(tok)
		return true
	}
	return false
}

func (p *parser) sum() (float64, error) {
	v, err := p.product()
	for err == nil {
		switch {
		case p.eat("+"):
			var r float64
			if r, err = p.product(); err == nil {
				v += r
			}
		case p.eat("-"):
			var r float64
			if r, err = p.product(); err == nil {
				v -= r
			}
		default:
			return v, nil
		}
	}
	return 0, err
}

func (p *parser) product() (float64, error) {
	v, err := p.unary()
	for err == nil {
		p.space()
		at := p.i + 1
		var op byte
		switch {
		case p.eat("*"):
			op = '*'
		case p.eat("/"):
			op = '/'
		case p.eat("%"):
			op = '%'
		default:
			return v, nil
		}
		var r float64
		if r, err = p.unary(); err != nil {
			break
		}
		switch op {
		case '*':
			v *= r
		case '/':
			if r == 0 {
				return 0, &calcError{pos: at, msg: "division by zero"}
			}
			v /= r
		case '%':
			if r == 0 {
				return 0, &calcError{pos: at, msg: "modulo by zero"}
			}
			v = math.Mod(v, r)
		}
	}
	return 0, err
}

func (p *parser) unary() (float64, error) {
	p.depth++
	defer func() { p.depth-- }()
	if p.depth > maxExprDepth {
		return 0, p.errorf("the expression nests deeper than %d levels", maxExprDepth)
	}
	switch {
	case p.eat("-"):
		v, err := p.unary()
		return -v, err
	case p.eat("+"):
		return p.unary()
	}
	return p.power()
}

func (p *parser) power() (float64, error) {
	base, err := p.primary()
	if err != nil {
		return 0, err
	}
	at := p.i + 1
	if !p.eat("**") && !p.eat("^") {
		return base, nil
	}
	exp, err := p.unary()
	if err != nil {
		return 0, err
	}
	v := math.Pow(base, exp)
	switch {
	case math.IsNaN(v):
		return 0, &calcError{pos: at, msg: fmt.Sprintf("%s^%s is not a real number", num(base), num(exp))}
	case math.IsInf(v, 0) && base == 0:
		return 0, &calcError{pos: at, msg: "zero to a negative power is a division by zero"}
	}
	return v, nil
}

func (p *parser) primary() (float64, error) {
	p.space()
	if p.i >= len(p.s) {
		return 0, p.errorf("the expression ends where a number was expected")
	}
	c := p.s[p.i]
	switch {
	case c == '(':
		p.i++
		v, err := p.sum()
		if err != nil {
			return 0, err
		}
		if !p.eat(")") {
			return 0, p.errorf("expected ) to close the ( at column %d", p.i+1)
		}
		return v, nil
	case c >= '0' && c <= '9' || c == '.':
		return p.number()
	case isLetter(c):
		return p.name()
	}
	return 0, p.errorf("unexpected %q where a number was expected", p.rest())
}

func (p *parser) number() (float64, error) {
	start := p.i
	digits := func() int {
		n := 0
		for p.i < len(p.s) && p.s[p.i] >= '0' && p.s[p.i] <= '9' {
			p.i++
			n++
		}
		return n
	}
	n := digits()
	if p.i < len(p.s) && p.s[p.i] == '.' {
		p.i++
		n += digits()
	}
	if n == 0 {
		p.i = start
		return 0, p.errorf("a lone . is not a number")
	}
	if p.i < len(p.s) && (p.s[p.i] == 'e' || p.s[p.i] == 'E') {
		save := p.i
		p.i++
		if p.i < len(p.s) && (p.s[p.i] == '+' || p.s[p.i] == '-') {
			p.i++
		}
		if digits() == 0 {
			p.i = save
			return 0, p.errorf("an exponent needs digits after the e, as in 2e10")
		}
	}
	v, err := strconv.ParseFloat(p.s[start:p.i], 64)
	if err != nil {
		// Only range errors reach here: the lexeme is a well-formed number.
		return 0, &calcError{pos: start + 1, msg: fmt.Sprintf("%s is too large to represent", p.s[start:p.i])}
	}
	return v, nil
}

func isLetter(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_' }

var constants = map[string]float64{"pi": math.Pi, "e": math.E}

// function is a named function: its arity (-1: one or more) and how it computes.
type function struct {
	arity int
	eval  func(args []float64) (float64, string) // a non-empty string is a domain error
}

func one(f func(float64) float64, domain func(float64) string) function {
	return function{1, func(a []float64) (float64, string) {
		if domain != nil {
			if msg := domain(a[0]); msg != "" {
				return 0, msg
			}
		}
		return f(a[0]), ""
	}}
}

var functions = map[string]function{
	"sqrt": one(math.Sqrt, func(x float64) string {
		if x < 0 {
			return fmt.Sprintf("sqrt(%s): the square root of a negative number is not real", num(x))
		}
		return ""
	}),
	"abs": one(math.Abs, nil),
	"ln": one(math.Log, func(x float64) string {
		if x <= 0 {
			return fmt.Sprintf("ln(%s): the logarithm is defined for positive numbers only", num(x))
		}
		return ""
	}),
	"log10": one(math.Log10, func(x float64) string {
		if x <= 0 {
			return fmt.Sprintf("log10(%s): the logarithm is defined for positive numbers only", num(x))
		}
		return ""
	}),
	"sin":   one(math.Sin, nil),
	"cos":   one(math.Cos, nil),
	"tan":   one(math.Tan, nil),
	"round": one(math.Round, nil),
	"floor": one(math.Floor, nil),
	"ceil":  one(math.Ceil, nil),
	"min":   {-1, func(a []float64) (float64, string) { return minOf(a), "" }},
	"max":   {-1, func(a []float64) (float64, string) { return -minOf(negated(a)), "" }},
}

func minOf(a []float64) float64 {
	m := a[0]
	for _, x := range a[1:] {
		m = math.Min(m, x)
	}
	return m
}

func negated(a []float64) []float64 {
	out := make([]float64, len(a))
	for i, x := range a {
		out[i] = -x
	}
	return out
}

func (p *parser) name() (float64, error) {
	start := p.i
	for p.i < len(p.s) && (isLetter(p.s[p.i]) || p.s[p.i] >= '0' && p.s[p.i] <= '9') {
		p.i++
	}
	word := strings.ToLower(p.s[start:p.i])
	f, isFunc := functions[word]
	if !isFunc {
		if v, ok := constants[word]; ok {
			return v, nil
		}
		p.i = start
		return 0, p.errorf("unknown name %q: the constants are pi and e, the functions sqrt, abs, ln, log10, sin, cos, tan, min, max, round, floor, ceil", word)
	}
	if !p.eat("(") {
		return 0, p.errorf("%s needs its argument in parentheses, as in %s(2)", word, word)
	}
	var args []float64
	if !p.eat(")") {
		for {
			v, err := p.sum()
			if err != nil {
				return 0, err
			}
			args = append(args, v)
			if p.eat(")") {
				break
			}
			if !p.eat(",") {
				return 0, p.errorf("expected , or ) in the arguments of %s", word)
			}
		}
	}
	switch {
	case f.arity == -1 && len(args) == 0:
		return 0, &calcError{pos: start + 1, msg: fmt.Sprintf("%s needs at least one argument", word)}
	case f.arity >= 0 && len(args) != f.arity:
		return 0, &calcError{pos: start + 1, msg: fmt.Sprintf("%s takes %d argument, got %d", word, f.arity, len(args))}
	}
	v, domain := f.eval(args)
	if domain != "" {
		return 0, &calcError{pos: start + 1, msg: domain}
	}
	return v, nil
}

// num formats a number as the calculator answers it.
func num(v float64) string {
	if v == 0 {
		v = 0 // no "-0"
	}
	return strconv.FormatFloat(v, 'g', -1, 64)
}
