package sim

// Numbers inside their bounds, in exact decimal arithmetic so multipleOf never fails on
// rounding.

import (
	"encoding/json"
	"math/big"
	"strconv"
	"strings"
)

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
