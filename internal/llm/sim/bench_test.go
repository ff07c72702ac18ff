package sim

import (
	"math"
	"math/rand/v2"
	"testing"
	"time"
)

type benchRequest struct {
	arrival time.Duration
	prompt  []uint32
	eosAt   int
}

// benchWorkload is 1,000 chat-like requests arriving as a Poisson process at 20/s: one of
// ten 512-token system prompts, a 100–1,500-token user part, natural output lengths
// (mean 200). It keeps the H100 profile busy with batches of tens to a few hundred.
func benchWorkload() []benchRequest {
	rng := rand.New(rand.NewPCG(1, 2))
	systems := make([][]uint32, 10)
	for i := range systems {
		systems[i] = ids(uint64(i), 512)
	}
	out := make([]benchRequest, 1000)
	now := time.Duration(0)
	for i := range out {
		now += time.Duration(-math.Log(1-rng.Float64()) / 20 * 1e9)
		p := append(append([]uint32{}, systems[rng.IntN(len(systems))]...), ids(uint64(100+i), 100+rng.IntN(1400))...)
		out[i] = benchRequest{arrival: now, prompt: p, eosAt: NaturalLength(uint64(i))}
	}
	return out
}

// runWorkload simulates w to completion in virtual time and returns the tokens processed
// (prompt and generated), those generated, and the virtual time it took.
func runWorkload(tb testing.TB, e *Engine, w []benchRequest) (tokens, generated int64, virtual time.Duration) {
	next := 0
	now := time.Duration(0)
	for next < len(w) || !e.Idle() {
		for next < len(w) && w[next].arrival <= now {
			r := &Request{ID: uint64(next), Prompt: w[next].prompt, MaxTokens: 1024, EOSAt: w[next].eosAt}
			if err := e.Submit(r, w[next].arrival); err != nil {
				tb.Fatal(err)
			}
			next++
		}
		if e.Idle() {
			now = w[next].arrival
			continue
		}
		now = e.Step(now).End
	}
	s := e.Stats()
	return s.PromptTokens + s.GenerationTokens, s.GenerationTokens, now
}

// BenchmarkVirtualThroughput measures how fast the engine simulates: simulated tokens
// (prompt + generated, and generated alone) per wall-clock second, and virtual seconds
// per wall second.
//
//	go test ./internal/llm/sim -run '^$' -bench VirtualThroughput -benchtime 20x
func BenchmarkVirtualThroughput(b *testing.B) {
	w := benchWorkload()
	p := mustProfile(b, "llama3-8b-h100")
	var tokens, generated int64
	var virtual time.Duration
	for b.Loop() {
		e, err := NewEngine(EngineConfig{Profile: p})
		if err != nil {
			b.Fatal(err)
		}
		t, g, v := runWorkload(b, e, w)
		tokens += t
		generated += g
		virtual += v
	}
	wall := b.Elapsed().Seconds()
	b.ReportMetric(float64(tokens)/wall, "sim-tokens/s")
	b.ReportMetric(float64(generated)/wall, "sim-gen-tokens/s")
	b.ReportMetric(virtual.Seconds()/wall, "virtual-s/wall-s")
}
