package sched

import (
	"container/heap"
	"hash/fnv"
	"math"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// sjf is shortest-predicted-job-first for LLM calls. A call's output length is unknown
// until it ends, so it is predicted from the most similar recent calls (agents repeat
// the same kinds of request: a classifier step answers in a few tokens, a code-writing
// step in hundreds). Its predicted time is prefill (∝ prompt tokens) plus decode (∝
// predicted output tokens); the smallest goes first. Aging keeps long calls from
// starving: the order is by predicted time − Aging × time waited. Since every queued
// call ages at the same rate, that order equals the order of predicted time + Aging ×
// arrival, a constant per call, so a heap keeps it without re-sorting as time passes.
// A call of predicted time T therefore waits at most for calls that arrived before it or
// within T/Aging after it and were predicted shorter.
//
// Learned output-length prediction is how LLM schedulers approximate SJF (Qiu et al.,
// "Efficient Interactive LLM Serving with Proxy Model-based Sequence Length Prediction",
// 2024, train a small proxy model for it). We need no model: the prediction is the mean
// output of the nearest past calls, where a call's embedding is the hashed character
// trigrams of its Text and nearness is cosine similarity.
type sjf struct {
	prefill time.Duration
	decode  time.Duration
	aging   float64
	pred    *predictor
	h       sjfHeap
	calls   map[*Call]*sjfCall
}

type sjfCall struct {
	c   *Call
	vec []float32 // the call's embedding, kept to learn from it when it ends
	key time.Duration
	idx int // heap position; -1 when not queued
}

func newSJF(cfg Config) (Policy, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	return &sjf{
		prefill: cfg.PrefillTime,
		decode:  cfg.DecodeTime,
		aging:   cfg.Aging,
		pred:    newPredictor(cfg.History, cfg.Neighbors, cfg.DefaultOutput),
		calls:   make(map[*Call]*sjfCall),
	}, nil
}

func (s *sjf) Name() string                { return "sjf" }
func (s *sjf) Len() int                    { return len(s.h) }
func (s *sjf) Quantum(*Call) time.Duration { return 0 }

// predictedTime is how long c is expected to hold a core.
func (s *sjf) predictedTime(c *Call, vec []float32) time.Duration {
	out := s.pred.predict(vec, c.MaxOutput)
	return time.Duration(c.InputTokens)*s.prefill + time.Duration(out*float64(s.decode))
}

func (s *sjf) Push(c *Call, _ time.Duration) {
	sc := s.calls[c]
	if sc == nil {
		sc = &sjfCall{c: c, vec: embed(c.Text)}
		// Arrival, not the time of this push: a requeued call keeps the age it has.
		sc.key = s.predictedTime(c, sc.vec) + time.Duration(s.aging*float64(c.Arrival))
		s.calls[c] = sc
	}
	heap.Push(&s.h, sc)
}

func (s *sjf) Pick(_ time.Duration, accept func(*Call) Verdict) *Call { return s.h.pick(accept) }

func (s *sjf) Remove(c *Call) bool {
	sc := s.calls[c]
	if sc == nil || sc.idx < 0 {
		return false
	}
	heap.Remove(&s.h, sc.idx)
	delete(s.calls, c)
	return true
}

func (s *sjf) Started(*Call, time.Duration) {}

// Stopped learns the output length of a call that ended. A call that produced nothing
// (failed, cancelled) teaches nothing about how long such calls run.
func (s *sjf) Stopped(c *Call, _ time.Duration, done bool) {
	sc := s.calls[c]
	if !done || sc == nil {
		return
	}
	delete(s.calls, c)
	if c.OutputTokens > 0 {
		s.pred.record(sc.vec, c.OutputTokens)
	}
}

func (s *sjf) live() int { return len(s.calls) }

// sjfHeap orders calls by key (sjf's and psjf's), then by arrival.
type sjfHeap []*sjfCall

// pick removes and returns the first call in key order that accept takes.
func (h *sjfHeap) pick(accept func(*Call) Verdict) *Call {
	var skipped []*sjfCall
	var got *Call
	for len(*h) > 0 {
		sc := heap.Pop(h).(*sjfCall)
		v := accept(sc.c)
		if v == Take {
			got = sc.c
			break
		}
		skipped = append(skipped, sc)
		if v == Stop {
			break
		}
	}
	for _, sc := range skipped {
		heap.Push(h, sc)
	}
	return got
}

func (h sjfHeap) Len() int { return len(h) }
func (h sjfHeap) Less(i, j int) bool {
	if h[i].key != h[j].key {
		return h[i].key < h[j].key
	}
	return h[i].c.seq < h[j].c.seq
}
func (h sjfHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].idx = i
	h[j].idx = j
}
func (h *sjfHeap) Push(x any) {
	sc := x.(*sjfCall)
	sc.idx = len(*h)
	*h = append(*h, sc)
}
func (h *sjfHeap) Pop() any {
	old := *h
	n := len(old)
	sc := old[n-1]
	old[n-1] = nil
	sc.idx = -1
	*h = old[:n-1]
	return sc
}

// embedDim is the size of a prompt embedding: large enough that the trigrams of two
// unrelated short prompts rarely collide, small enough that comparing a call with the
// whole history costs microseconds.
const embedDim = 256

// embedMaxRunes bounds the text embedded, so one huge prompt cannot stall Push.
const embedMaxRunes = 4096

// embed maps text to a unit vector of hashed character trigrams (with a sign hash, so
// collisions cancel out on average instead of adding up). Case and runs of spaces and
// punctuation are folded, so small formatting differences do not matter. nil for empty
// text.
func embed(text string) []float32 {
	var b strings.Builder
	space := true
	n := 0
	for _, r := range text {
		if n >= embedMaxRunes {
			break
		}
		n++
		if unicode.IsLetter(r) || unicode.IsDigit(r) {
			b.WriteRune(unicode.ToLower(r))
			space = false
		} else if !space {
			b.WriteByte(' ')
			space = true
		}
	}
	rs := []rune(" " + strings.TrimSpace(b.String()) + " ")
	if len(rs) < 3 {
		return nil
	}
	v := make([]float32, embedDim)
	h := fnv.New32a()
	var buf [12]byte
	for i := 0; i+3 <= len(rs); i++ {
		h.Reset()
		k := 0
		for _, r := range rs[i : i+3] {
			k += utf8.EncodeRune(buf[k:], r)
		}
		h.Write(buf[:k])
		x := h.Sum32()
		if x&(1<<31) != 0 {
			v[x%embedDim]--
		} else {
			v[x%embedDim]++
		}
	}
	var norm float64
	for _, x := range v {
		norm += float64(x) * float64(x)
	}
	if norm == 0 {
		return nil
	}
	inv := float32(1 / math.Sqrt(norm))
	for i := range v {
		v[i] *= inv
	}
	return v
}

// predictor guesses a call's output tokens from the k most similar of the last calls
// that ended (a ring, so memory is fixed and it follows a changing workload).
type predictor struct {
	k    int
	def  int
	vecs [][]float32 // ring of embeddings (nil: the call had no text)
	outs []int
	next int
	sum  int // of outs, for the running mean
}

func newPredictor(size, k, def int) *predictor {
	return &predictor{k: k, def: def, vecs: make([][]float32, 0, size), outs: make([]int, 0, size)}
}

func (p *predictor) record(vec []float32, out int) {
	if len(p.outs) < cap(p.outs) {
		p.vecs = append(p.vecs, vec)
		p.outs = append(p.outs, out)
		p.sum += out
		return
	}
	p.sum += out - p.outs[p.next]
	p.vecs[p.next], p.outs[p.next] = vec, out
	p.next = (p.next + 1) % len(p.outs)
}

// predict is the similarity-weighted mean output of the k nearest past calls. With no
// similar call it is the mean of the history, and with no history the call's own
// output limit (the most it can produce), else a default. It never exceeds maxOut.
func (p *predictor) predict(vec []float32, maxOut int) float64 {
	clamp := func(x float64) float64 {
		if maxOut > 0 {
			return min(x, float64(maxOut))
		}
		return x
	}
	if len(p.outs) == 0 {
		if maxOut > 0 {
			return float64(maxOut)
		}
		return float64(p.def)
	}
	if vec != nil {
		type nb struct {
			sim float32
			out int
		}
		best := make([]nb, 0, p.k)
		for i, v := range p.vecs {
			if v == nil {
				continue
			}
			var sim float32
			for j := range v {
				sim += v[j] * vec[j]
			}
			if sim <= 0 || (len(best) == p.k && sim <= best[len(best)-1].sim) {
				continue
			}
			// Insertion into a short sorted list: k is tiny.
			if len(best) < p.k {
				best = append(best, nb{})
			}
			j := len(best) - 1
			for ; j > 0 && best[j-1].sim < sim; j-- {
				best[j] = best[j-1]
			}
			best[j] = nb{sim: sim, out: p.outs[i]}
		}
		var w, s float64
		for _, b := range best {
			w += float64(b.sim)
			s += float64(b.sim) * float64(b.out)
		}
		if w > 0 {
			return clamp(s / w)
		}
	}
	return clamp(float64(p.sum) / float64(len(p.outs)))
}
