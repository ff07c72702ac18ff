package embed

import (
	"context"
	"fmt"
	"hash/fnv"
	"math"
	"strings"
	"unicode"
)

// Hashed embeds text with no model: lower-cased word unigrams and bigrams and character
// trigrams are hashed into Dim buckets with a sign bit (the hashing trick of Weinberger
// et al., 2009), then L2-normalised. Texts that share words or spellings land near each
// other; it knows nothing of synonyms, which is why retrieval fuses it with keyword
// scores rather than trusting it alone.
type Hashed struct {
	Dim int // 0 means 256
}

func (h Hashed) dim() int {
	if h.Dim <= 0 {
		return 256
	}
	return h.Dim
}

// Name names the space: the method and its dimension.
func (h Hashed) Name() string { return fmt.Sprintf("hashed-ngram-%d", h.dim()) }

// Embed never fails; ctx is only checked between texts.
func (h Hashed) Embed(ctx context.Context, texts []string) ([][]float32, error) {
	out := make([][]float32, len(texts))
	for i, t := range texts {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		out[i] = h.one(t)
	}
	return out, nil
}

func (h Hashed) one(text string) []float32 {
	v := make([]float32, h.dim())
	add := func(feature string, weight float32) {
		f := fnv.New64a()
		f.Write([]byte(feature))
		s := f.Sum64()
		idx := int(s % uint64(len(v)))
		if s>>63 == 1 {
			weight = -weight
		}
		v[idx] += weight
	}
	words := strings.FieldsFunc(strings.ToLower(text), func(r rune) bool {
		return !unicode.IsLetter(r) && !unicode.IsDigit(r)
	})
	for i, w := range words {
		add("w:"+w, 1)
		if i > 0 {
			add("b:"+words[i-1]+" "+w, 0.5)
		}
		r := []rune(" " + w + " ")
		for j := 0; j+3 <= len(r); j++ {
			add("c:"+string(r[j:j+3]), 0.25)
		}
	}
	Normalize(v)
	return v
}

// Normalize scales v to unit length in place; a zero vector stays zero.
func Normalize(v []float32) {
	var sum float64
	for _, x := range v {
		sum += float64(x) * float64(x)
	}
	if sum == 0 {
		return
	}
	n := float32(1 / math.Sqrt(sum))
	for i := range v {
		v[i] *= n
	}
}

// Cosine is the dot product of two normalised vectors of equal length (0 when they differ).
func Cosine(a, b []float32) float64 {
	if len(a) != len(b) {
		return 0
	}
	var s float64
	for i := range a {
		s += float64(a[i]) * float64(b[i])
	}
	return s
}
