package sim

import (
	"fmt"
	"sort"
	"time"
)

// CostPoint is one measured step time: the time the linear layers (QKV/O projections and
// the MLP) take for a batch of Tokens new tokens.
type CostPoint struct {
	Tokens int
	Time   time.Duration
}

// Profile is a model on a GPU configuration: how much KV cache it has, the scheduler's
// limits, and the cost model that turns a batch into a step time.
type Profile struct {
	Name  string // profile key, e.g. "llama3-8b-h100"
	Model string // the model name the server reports in /v1/models

	// Memory. KV capacity follows vLLM's start-up arithmetic: per GPU,
	// memory × utilization − weights − activations, summed over GPUs.
	GPUs                 int
	GPUMemoryBytes       int64   // per GPU, as torch reports it
	GPUMemoryUtilization float64 // vLLM's --gpu-memory-utilization
	WeightBytes          int64   // all GPUs together
	ActivationBytes      int64   // per GPU: peak activations, CUDA graphs, non-torch memory
	KVBytesPerToken      int64   // all layers, K and V, all GPUs together
	BlockSize            int     // tokens per KV block

	// Scheduler limits, as vLLM's flags of the same names.
	MaxModelLen         int
	MaxNumSeqs          int
	MaxNumBatchedTokens int

	// Cost model. Step time = Linear(tokens) × LinearScale + attention, where attention is
	// the slower of reading the attended KV (memory-bound decode) and computing the score
	// pairs (compute-bound prefill).
	Linear           []CostPoint // ascending by Tokens; interpolated, extrapolated past the last
	LinearScale      float64
	AttnBandwidth    float64 // effective bytes/s of KV reads, all GPUs together
	AttnFLOPS        float64 // effective FLOP/s of attention kernels, all GPUs together; 0 = ignore
	AttnFLOPsPerPair float64 // FLOPs per (query, key) pair over all layers: 4 × heads × head_dim × layers

	// OffloadBandwidth is the effective host-to-device copy rate in bytes/s, all GPUs
	// together (each has its own PCIe link): what loading KV back from the CPU tier costs.
	OffloadBandwidth float64
}

// vidurA100 is the time of one iteration of Llama-3-8B's non-attention layers (projections,
// MLP, norms) on one A100-80GB by tokens in the batch: Vidur's profiled per-layer medians
// summed over the 32 layers (Agrawal et al., "Vidur: A Large-Scale Simulation Framework for
// LLM Inference", MLSys 2024; github.com/microsoft/vidur, data/profiling/compute/a100/
// meta-llama/Meta-Llama-3-8B/mlp.csv). The 1-token figure is the weight-bound decode
// floor; past 512 tokens the GPU is compute-bound and time grows about linearly, ≈15k
// prefill tokens/s.
var vidurA100 = []CostPoint{
	{1, 9800 * time.Microsecond},
	{128, 13300 * time.Microsecond},
	{512, 34900 * time.Microsecond},
	{1024, 75600 * time.Microsecond},
	{4096, 275000 * time.Microsecond},
}

const (
	gib = 1 << 30
	mib = 1 << 20

	// H100 SXM and A100 SXM 80GB as torch.cuda.mem_get_info reports them.
	h100Memory = 81559 * mib
	a100Memory = 81920 * mib

	// Llama-3-8B: 8.03e9 parameters in bf16; KV = 32 layers × 8 KV heads × 128 dims ×
	// 2 (K and V) × 2 bytes = 131,072 bytes a token.
	llama8BWeights = 8_030_261_248 * 2
	llama8BKV      = 32 * 8 * 128 * 2 * 2
	llama8BPair    = 4 * 32 * 128 * 32 // 32 query heads × 128 dims, 32 layers

	// Llama-3-70B: 70.55e9 parameters in bf16; KV = 80 layers × 8 KV heads × 128 × 2 × 2.
	llama70BWeights = 70_553_706_496 * 2
	llama70BKV      = 80 * 8 * 128 * 2 * 2
	llama70BPair    = 4 * 64 * 128 * 80

	// h100Scale maps the A100 curve to an H100: the decode floor is weight-bound, 16 GB of
	// weights / 3.35 TB/s ≈ 4.8 ms against Vidur's 9.8 ms. Scaling the whole curve by the
	// same factor puts H100 prefill at ≈28–30k tokens/s, the figure DESIGN.md works from
	// (the H100's 3.2× dense bf16 FLOPs are not fully usable at these shapes).
	h100Scale = 4.8 / 9.8

	// 70B with tensor parallelism 4: each GPU holds and multiplies 70.55/8.03/4 ≈ 2.2× the
	// 8B's weights, plus ≈20% for the two all-reduces per layer (an assumption; NCCL
	// all-reduce of a few MB over NVLink costs 10–20 µs, ×160 a step).
	tp4Scale = h100Scale * 2.2 * 1.2

	// Effective attention throughput: paged-attention decode kernels reach ~70% of HBM
	// bandwidth (A100 2.04 TB/s, H100 3.35 TB/s); FlashAttention-2 reaches ~180 TFLOP/s on
	// an A100 and ~350 on an H100 (Dao, "FlashAttention-2", 2023).
	a100AttnBW    = 0.7 * 2.039e12
	h100AttnBW    = 0.7 * 3.35e12
	a100AttnFLOPS = 180e12
	h100AttnFLOPS = 350e12

	// Host-to-device copies from pinned memory reach about 80% of a PCIe x16 link's
	// per-direction rate: Gen4 (A100 SXM's host link) carries 16 GT/s × 16 lanes ×
	// 128/130 ≈ 31.5 GB/s, Gen5 (H100 SXM's) twice that, so about 25 and 50 GB/s, what
	// CUDA's bandwidthTest typically reports on such hosts.
	a100PCIe = 25e9
	h100PCIe = 50e9
)

// The production profiles allow Llama-3.1's 128k context (same architecture and KV size
// as Llama-3), so coding-agent workloads with 16-32k contexts fit.
var profiles = map[string]Profile{
	"llama3-8b-h100": {
		Name: "llama3-8b-h100", Model: "meta-llama/Meta-Llama-3-8B-Instruct",
		GPUs: 1, GPUMemoryBytes: h100Memory, GPUMemoryUtilization: 0.9,
		WeightBytes: llama8BWeights, ActivationBytes: 2 * gib,
		KVBytesPerToken: llama8BKV, BlockSize: 16,
		MaxModelLen: 131072, MaxNumSeqs: 256, MaxNumBatchedTokens: 8192,
		Linear: vidurA100, LinearScale: h100Scale,
		AttnBandwidth: h100AttnBW, AttnFLOPS: h100AttnFLOPS, AttnFLOPsPerPair: llama8BPair,
		OffloadBandwidth: h100PCIe,
	},
	"llama3-8b-a100": {
		Name: "llama3-8b-a100", Model: "meta-llama/Meta-Llama-3-8B-Instruct",
		GPUs: 1, GPUMemoryBytes: a100Memory, GPUMemoryUtilization: 0.9,
		WeightBytes: llama8BWeights, ActivationBytes: 2 * gib,
		KVBytesPerToken: llama8BKV, BlockSize: 16,
		MaxModelLen: 131072, MaxNumSeqs: 256, MaxNumBatchedTokens: 8192,
		Linear: vidurA100, LinearScale: 1,
		AttnBandwidth: a100AttnBW, AttnFLOPS: a100AttnFLOPS, AttnFLOPsPerPair: llama8BPair,
		OffloadBandwidth: a100PCIe,
	},
	"llama3-70b-4xh100": {
		Name: "llama3-70b-4xh100", Model: "meta-llama/Meta-Llama-3-70B-Instruct",
		GPUs: 4, GPUMemoryBytes: h100Memory, GPUMemoryUtilization: 0.9,
		WeightBytes: llama70BWeights, ActivationBytes: 2 * gib,
		KVBytesPerToken: llama70BKV, BlockSize: 16,
		MaxModelLen: 131072, MaxNumSeqs: 256, MaxNumBatchedTokens: 8192,
		Linear: vidurA100, LinearScale: tp4Scale,
		AttnBandwidth: 4 * h100AttnBW, AttnFLOPS: 4 * h100AttnFLOPS, AttnFLOPsPerPair: llama70BPair,
		OffloadBandwidth: 4 * h100PCIe,
	},
	// test is deliberately tiny: 128 blocks (2,048 tokens) so a handful of requests
	// overflow it, round step times (1 ms + 1 µs per context token read) so expected
	// latencies are easy to write down, a MaxModelLen above the cache so tests can
	// submit a request larger than the whole cache, and an offload bandwidth that loads
	// one block (2 MiB) in 1 ms.
	"test": {
		Name: "test", Model: "sim-test",
		GPUs: 1, GPUMemoryBytes: 128 * 16 * llama8BKV, GPUMemoryUtilization: 1,
		KVBytesPerToken: llama8BKV, BlockSize: 16,
		MaxModelLen: 4096, MaxNumSeqs: 8, MaxNumBatchedTokens: 256,
		Linear:           []CostPoint{{1, time.Millisecond}, {257, 2 * time.Millisecond}},
		LinearScale:      1,
		AttnBandwidth:    llama8BKV * 1e6,
		OffloadBandwidth: 16 * llama8BKV * 1e3,
	},
}

// ProfileNames lists the built-in profiles, sorted.
func ProfileNames() []string {
	names := make([]string, 0, len(profiles))
	for n := range profiles {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// LookupProfile returns a built-in profile by name.
func LookupProfile(name string) (Profile, error) {
	p, ok := profiles[name]
	if !ok {
		return Profile{}, fmt.Errorf("sim: unknown profile %q (have %v)", name, ProfileNames())
	}
	p.Linear = append([]CostPoint(nil), p.Linear...)
	return p, nil
}

// KVBytes is the memory left for the KV cache once weights and activations are placed.
func (p Profile) KVBytes() int64 {
	perGPU := int64(float64(p.GPUMemoryBytes)*p.GPUMemoryUtilization) - p.ActivationBytes
	return perGPU*int64(p.GPUs) - p.WeightBytes
}

// NumBlocks is the KV cache's capacity in blocks.
func (p Profile) NumBlocks() int {
	if p.KVBytesPerToken <= 0 || p.BlockSize <= 0 {
		return 0
	}
	n := p.KVBytes() / (p.KVBytesPerToken * int64(p.BlockSize))
	if n < 0 {
		return 0
	}
	return int(n)
}

// Validate reports a profile that cannot run: no KV cache, or limits that admit nothing.
func (p Profile) Validate() error {
	switch {
	case p.BlockSize <= 0:
		return fmt.Errorf("sim: profile %q: block size must be positive", p.Name)
	case p.NumBlocks() < 1:
		return fmt.Errorf("sim: profile %q: no memory left for the KV cache (weights and activations take it all)", p.Name)
	case p.MaxNumSeqs <= 0 || p.MaxNumBatchedTokens <= 0 || p.MaxModelLen <= 0:
		return fmt.Errorf("sim: profile %q: max_num_seqs, max_num_batched_tokens and max_model_len must be positive", p.Name)
	case len(p.Linear) == 0 || p.LinearScale <= 0 || p.AttnBandwidth <= 0:
		return fmt.Errorf("sim: profile %q: the cost model needs linear points, a positive scale and attention bandwidth", p.Name)
	}
	for i := 1; i < len(p.Linear); i++ {
		if p.Linear[i].Tokens <= p.Linear[i-1].Tokens {
			return fmt.Errorf("sim: profile %q: linear cost points must ascend by tokens", p.Name)
		}
	}
	return nil
}

// BatchShape is what one step's cost depends on.
type BatchShape struct {
	Tokens    int   // new tokens processed: prefill chunks plus one per decoding request
	KVRead    int64 // tokens of KV attended, summed over requests (prior context + new)
	AttnPairs int64 // (query, key) pairs, summed over requests: new × (prior + (new+1)/2)
}

// StepTime is the simulated duration of one engine iteration over batch b.
func (p Profile) StepTime(b BatchShape) time.Duration {
	if b.Tokens <= 0 {
		return 0
	}
	linear := float64(p.linear(b.Tokens)) * p.LinearScale
	attn := float64(b.KVRead) * float64(p.KVBytesPerToken) / p.AttnBandwidth * 1e9
	if p.AttnFLOPS > 0 {
		if c := float64(b.AttnPairs) * p.AttnFLOPsPerPair / p.AttnFLOPS * 1e9; c > attn {
			attn = c
		}
	}
	return time.Duration(linear + attn + 0.5)
}

// linear interpolates the cost points piecewise-linearly; below the first point the GPU
// is weight-bound, so fewer tokens cost the same.
func (p Profile) linear(tokens int) time.Duration {
	pts := p.Linear
	if tokens <= pts[0].Tokens || len(pts) == 1 {
		return pts[0].Time
	}
	i := 1
	for i < len(pts)-1 && pts[i].Tokens < tokens {
		i++
	}
	a, b := pts[i-1], pts[i]
	slope := float64(b.Time-a.Time) / float64(b.Tokens-a.Tokens)
	return a.Time + time.Duration(slope*float64(tokens-a.Tokens))
}
