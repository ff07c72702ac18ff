package builtin

import (
	"context"
	"encoding/json"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/aios-go/aios/internal/tool"
)

func TestEvaluate(t *testing.T) {
	cases := []struct {
		expr string
		want string
	}{
		{"1+2", "3"},
		{"2+3*4", "14"},
		{"(2+3)*4", "20"},
		{"10/4", "2.5"},
		{"10 % 4", "2"},
		{"-7 % 3", "-1"},
		{"2^10", "1024"},
		{"2**10", "1024"},
		{"2^3^2", "512"},
		{"-2^2", "-4"},
		{"(-2)^2", "4"},
		{"2^-1", "0.5"},
		{"--3", "3"},
		{"+4", "4"},
		{"-(1+2)*3", "-9"},
		{"1.5e3 + .5", "1500.5"},
		{"1E-3", "0.001"},
		{"3.", "3"},
		{"sqrt(16)", "4"},
		{"abs(-3.5)", "3.5"},
		{"ln(e)", "1"},
		{"log10(1000)", "3"},
		{"sin(0)+cos(0)", "1"},
		{"tan(0)", "0"},
		{"min(3, 1, 2)", "1"},
		{"max(3, -1, 2)", "3"},
		{"max(7)", "7"},
		{"round(2.5)", "3"},
		{"round(-2.5)", "-3"},
		{"floor(-1.5)", "-2"},
		{"ceil(1.2)", "2"},
		{"PI", "3.141592653589793"},
		{"2*pi", "6.283185307179586"},
		{"0.1+0.2", "0.30000000000000004"},
		{"1e300*1e10", "error: too large"},
		{"-0", "0"},
		{"0*-1", "0"},
		{"1e21", "1e+21"},
		{" \t1 +\n 2 ", "3"},
		{"sqrt(max(9, 4)) * (3 + 4)^2 / 7", "21"},
		// Refusals the model can act on.
		{"1/0", "error: division by zero (at column 2)"},
		{"5 % 0", "error: modulo by zero"},
		{"0^-1", "error: zero to a negative power"},
		{"(-8)^(1/3)", "error: -8^0.3333333333333333 is not a real number"},
		{"sqrt(-1)", "error: square root of a negative number"},
		{"ln(0)", "error: ln(0): the logarithm is defined for positive numbers only"},
		{"log10(-5)", "error: log10(-5)"},
		{"", "error: ends where a number was expected"},
		{"1+", "error: ends where a number was expected"},
		{"(1+2", "error: expected ) to close"},
		{"1+2)", "error: unexpected \")\""},
		{"2 3", "error: unexpected \"3\""},
		{"2pi", "error: unexpected \"pi\""},
		{"log(10)", "error: unknown name \"log\""},
		{"x+1", "error: unknown name \"x\""},
		{"sqrt 4", "error: sqrt needs its argument in parentheses"},
		{"sqrt(1, 2)", "error: sqrt takes 1 argument, got 2"},
		{"min()", "error: min needs at least one argument"},
		{"max(1 2)", "error: expected , or )"},
		{".", "error: a lone . is not a number"},
		{"2e", "error: an exponent needs digits"},
		{"1e999", "error: 1e999 is too large"},
		{"1 & 2", "error: unexpected \"& 2\""},
		{"ö", "error: unexpected"},
		{strings.Repeat("(", 64) + "1" + strings.Repeat(")", 64), "error: nests deeper than 64"},
		{strings.Repeat("(", 63) + "1" + strings.Repeat(")", 63), "1"},
		{strings.Repeat("-", 100) + "1", "error: nests deeper than 64"},
		{strings.Repeat("1+", 600) + "1", "error: the expression is 1201 bytes long; the limit is 1024"},
		{strings.Repeat("1+", 500) + "1", "501"},
	}
	for _, c := range cases {
		v, err := evaluate(c.expr)
		got := ""
		if err != nil {
			got = "error: " + err.Error()
		} else {
			got = num(v)
		}
		if rest, isErr := strings.CutPrefix(c.want, "error: "); isErr {
			if err == nil || !strings.Contains(err.Error(), rest) {
				t.Errorf("evaluate(%.40q) = %s, want an error containing %q", c.expr, got, rest)
			}
			continue
		}
		if got != c.want {
			t.Errorf("evaluate(%.40q) = %s, want %s", c.expr, got, c.want)
		}
	}
}

func TestCalculatorTool(t *testing.T) {
	m := newManager(t, Calculator())
	res, err := m.Run(context.Background(), "calculator", tool.Input{Args: json.RawMessage(`{"expression":"6*7"}`)})
	if err != nil || res.Content != "42" || res.IsError || string(res.Structured) != `{"value":42}` {
		t.Fatalf("6*7: %+v, %v", res, err)
	}
	res, err = m.Run(context.Background(), "calculator", tool.Input{Args: json.RawMessage(`{"expression":"1/(2-2)"}`)})
	if err != nil || !res.IsError || res.Content != `cannot evaluate "1/(2-2)": division by zero (at column 2)` {
		t.Fatalf("1/(2-2): %+v, %v", res, err)
	}
	// The schema refuses what the tool cannot take before it runs.
	if _, err := m.Run(context.Background(), "calculator", tool.Input{Args: json.RawMessage(`{"expr":"1"}`)}); err == nil {
		t.Fatal("calculator ran with a wrong argument name")
	}
}

func FuzzCalculator(f *testing.F) {
	for _, s := range []string{"1+2*3", "-(2^3^2)", "sqrt(max(1,2,3))", "1e308*10", "((((1))))", "2**-0.5", "min(", "pi e", "..1", "1e+", "\x00", "9" + strings.Repeat("^9", 30)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, expr string) {
		start := time.Now()
		v, err := evaluate(expr)
		if err == nil && (math.IsNaN(v) || math.IsInf(v, 0)) {
			t.Fatalf("%q = %v without an error", expr, v)
		}
		// Linear in the input: a 1024-byte expression is microseconds of work.
		if d := time.Since(start); d > time.Second {
			t.Fatalf("%q took %v", expr, d)
		}
	})
}
