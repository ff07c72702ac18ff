package sim

import "time"

// State is where a request is in its life.
type State uint8

const (
	StateNew State = iota
	StateWaiting
	StateRunning
	StateFinished
	StateCancelled
)

func (s State) String() string {
	switch s {
	case StateNew:
		return "new"
	case StateWaiting:
		return "waiting"
	case StateRunning:
		return "running"
	case StateFinished:
		return "finished"
	case StateCancelled:
		return "cancelled"
	}
	return "unknown"
}

// Request is one sequence in the engine. The caller fills the first group of fields and
// submits it; the engine owns the rest, which the caller may read between calls.
type Request struct {
	ID     uint64
	Prompt []uint32 // token ids, chat template included
	// MaxTokens caps new tokens; 0 means up to max_model_len, as vLLM defaults it.
	MaxTokens int
	// EOSAt is the number of new tokens after which the sequence ends by itself; negative
	// means never (ignore_eos), so the request runs to MaxTokens.
	EOSAt    int
	Priority int           // lower runs first under the priority policy
	KVTTL    time.Duration // keep the finished request's full blocks cached this long
	// ReuseAfter is when, after the request ends, its program expects to use its
	// context again (0: no hint): the finished request's blocks are evicted after
	// unhinted ones, those expected back furthest ahead first (kvhint.go).
	ReuseAfter time.Duration
	// OffloadOnFinish swaps the finished request's full blocks out to the CPU tier at
	// once (Engine.Offload): the hint for a program that suspends after this call.
	OffloadOnFinish bool
	// Seed and Offset name the output: generated token i is output token Offset+i of the
	// sequence Seed (see OutputWord). A continuation sets Offset to its prefix's length.
	Seed   uint64
	Offset int

	State        State
	FinishReason string // "stop" or "length"
	NumOutput    int    // tokens generated so far
	NumCached    int    // prompt tokens found in the prefix cache when first scheduled
	Preemptions  int
	// Virtual times: arrival, first scheduled, first and latest token, end.
	Arrival, Scheduled, FirstToken, LastToken, Finished time.Duration

	seq          uint64
	target       int // tokens this request will generate
	numComputed  int // tokens whose KV is in the cache
	numCommitted int // leading blocks registered in the prefix cache
	prefilled    bool
	scheduled    bool
	blocks       []int32
	hashes       []uint64 // chained hashes of full blocks, grown on demand
	reserved     int      // naive mode: tokens reserved at submission
	heapIdx      int
}

func (r *Request) numTokens() int { return len(r.Prompt) + r.NumOutput }

// tokenAt is the id at position p of prompt followed by output: generated ids come from
// the output function, so block hashes over output match a later prompt that repeats it.
func (r *Request) tokenAt(p int) uint32 {
	if p < len(r.Prompt) {
		return r.Prompt[p]
	}
	return outputToken(r.Seed, r.Offset+p-len(r.Prompt))
}

// hashRoot seeds every chain, so a block hash always covers the whole prefix before it.
const hashRoot uint64 = 0x6b76636163686521

// ensureHashes extends the chained block hashes to cover n full blocks. vLLM hashes
// (parent hash, block token ids); a 64-bit FNV-style chain finished by mix64 stands in.
func (r *Request) ensureHashes(n, blockSize int) {
	for k := len(r.hashes); k < n; k++ {
		h := hashRoot
		if k > 0 {
			h = r.hashes[k-1]
		}
		base := k * blockSize
		if base+blockSize <= len(r.Prompt) {
			for _, t := range r.Prompt[base : base+blockSize] {
				h = (h ^ uint64(t)) * 0x100000001b3
			}
		} else {
			for p := base; p < base+blockSize; p++ {
				h = (h ^ uint64(r.tokenAt(p))) * 0x100000001b3
			}
		}
		r.hashes = append(r.hashes, mix64(h))
	}
}
