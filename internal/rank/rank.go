// Package rank fuses rankings from several retrievers (keyword, vector, recency) into
// one, for the storage and memory managers.
package rank

import "sort"

// DefaultK is reciprocal rank fusion's constant: Cormack, Clarke and Büttcher (SIGIR
// 2009) found k = 60 robust across collections.
const DefaultK = 60

// Scored is one fused result.
type Scored struct {
	Key   string
	Score float64
}

// Fuse combines rankings (each a list of keys, best first) by reciprocal rank fusion:
// score(d) = Σ w_i / (k + rank_i(d)), ranks from 1. weights may be nil (all 1) or give
// one weight per list. Ties keep the order in which keys were first seen.
func Fuse(k float64, weights []float64, lists ...[]string) []Scored {
	if k <= 0 {
		k = DefaultK
	}
	score := make(map[string]float64)
	var order []string
	for i, l := range lists {
		w := 1.0
		if i < len(weights) {
			w = weights[i]
		}
		for r, key := range l {
			if _, seen := score[key]; !seen {
				order = append(order, key)
			}
			score[key] += w / (k + float64(r+1))
		}
	}
	out := make([]Scored, len(order))
	for i, key := range order {
		out[i] = Scored{Key: key, Score: score[key]}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Score > out[j].Score })
	return out
}
