package bench

import (
	"testing"
	"time"

	"github.com/aios-go/aios/internal/bench/workload"
	"github.com/aios-go/aios/internal/llm/sim"
)

// A program that forked: step 0 (system prompt and 32 more tokens), then steps 1 and 2
// each extend it by 48 tokens of their own. With 16-token blocks and a 32-token system
// prompt, ending it demotes step 0's 2 blocks past the system prompt and each branch's
// 3 blocks, 8 in all, each once: the older rule named only the longest context (5).
func TestAEGForgetsEveryBranch(t *testing.T) {
	p, err := sim.LookupProfile("llama3-8b-h100")
	if err != nil {
		t.Fatal(err)
	}
	if p.BlockSize != 16 {
		t.Fatalf("block size %d: the counts below assume 16", p.BlockSize)
	}
	e, err := sim.NewEngine(sim.EngineConfig{Profile: p, Mode: sim.ModeVLLM})
	if err != nil {
		t.Fatal(err)
	}
	tokens := func(from uint32, n int) []uint32 {
		out := make([]uint32, n)
		for i := range out {
			out[i] = 1000 + from + uint32(i)
		}
		return out
	}
	trunk := tokens(0, 64)
	a := append(append([]uint32(nil), trunk...), tokens(100, 48)...)
	b := append(append([]uint32(nil), trunk...), tokens(200, 48)...)
	var now time.Duration
	for _, prompt := range [][]uint32{a, b} {
		if err := e.Submit(&sim.Request{Prompt: prompt, MaxTokens: 1, EOSAt: -1}, now); err != nil {
			t.Fatal(err)
		}
		for !e.Idle() {
			now = e.Step(now).End
		}
	}
	prog := &workload.Program{System: 32, Steps: []workload.Step{
		{Kind: workload.LLM, Parent: -1}, {Kind: workload.LLM, Parent: 0}, {Kind: workload.LLM, Parent: 0}}}
	vp := newVProg(prog, 0)
	vp.ctx = [][]uint32{trunk, a, b}
	vp.eng = &vengine{e: e}
	v := &vsim{arm: Arm{Kernel: true, AEG: true}}
	v.forget(vp)
	if got := e.Stats().ForgottenBlocks; got != 8 {
		t.Errorf("forgotten %d blocks, want 8", got)
	}
}
