package sim

import (
	"container/heap"
	"fmt"
	"time"
)

// Mode is how the engine manages KV memory.
type Mode string

const (
	// ModeVLLM pages the KV cache, caches prefixes and preempts by recompute.
	ModeVLLM Mode = "vllm"
	// ModeNaive reserves prompt + max_tokens per request up front and fails what does
	// not fit, as an unmanaged HF-transformers server does: the AIOS paper's baseline.
	ModeNaive Mode = "naive"
)

// Policy orders the waiting queue.
type Policy string

const (
	PolicyFCFS     Policy = "fcfs"
	PolicyPriority Policy = "priority"
)

// EngineConfig builds an Engine.
type EngineConfig struct {
	Profile Profile
	Mode    Mode   // default vllm
	Policy  Policy // default fcfs
	// OffloadBytes is host memory for the CPU KV tier (vllm mode); 0 means no tier.
	OffloadBytes int64
	// RecordRefs keeps the prefix cache's block reference string (see RefString), for
	// comparing the engine's evictions with Bélády's MIN offline. Off, it costs a nil
	// check per block; on, 8 bytes and a bit per reference.
	RecordRefs bool
}

// Engine is vLLM V1's scheduler and KV cache manager as a pure state machine. It never
// reads the clock: every call takes the virtual time, and Step reports how long the
// iteration it ran takes. Not safe for concurrent use.
type Engine struct {
	p         Profile
	mode      Mode
	policy    Policy
	bs        int
	numBlocks int

	kv       *kvCache
	cpu      *cpuTier // nil: no offload tier
	waiting  waitQueue
	running  []*Request
	pins     pinHeap
	pinned   int // blocks held by pins, counted once per pin
	reserved int // naive mode: tokens reserved by admitted requests
	seq      uint64

	stats Stats
	refs  *RefString // nil unless recording

	// Reused per step; see StepResult.
	sched    []scheduled
	emitted  []*Request
	finished []*Request
	hitBuf   []int32
	stepLoad int // blocks copied back from the CPU tier for this step
	// prefetched are blocks Prefetch copied back since the last step, which the next
	// step pays for.
	prefetched int
}

type scheduled struct {
	r *Request
	n int
}

// Stats are the engine's gauges and counters, named after vLLM's metrics.
type Stats struct {
	Running, Waiting int
	KVUsage          float64 // vllm:kv_cache_usage_perc, 0..1
	NumBlocks        int
	FreeBlocks       int // vllm mode: free-queue length (cached-but-free blocks are free)
	PinnedBlocks     int
	Pins             int64 // finished requests whose prefix was kept for their KV TTL
	Preemptions      int64
	PrefixQueries    int64 // tokens looked up in the prefix cache
	PrefixHits       int64 // of those, tokens found
	PromptTokens     int64
	GenerationTokens int64
	Steps            int64

	// CPU offload tier (zero without one). External queries and hits are in tokens, as
	// vLLM counts a KV connector's: the tokens looked up past the GPU hit, and of those
	// the ones found and loaded back.
	OffloadCapacityBlocks int
	OffloadBlocks         int // occupancy
	OffloadStoredBlocks   int64
	OffloadLoadedBlocks   int64
	OffloadLoadTime       time.Duration // host-to-device copies added to step times
	PrefetchedBlocks      int64         // of the loaded blocks, those Prefetch copied ahead of use
	ExternalQueries       int64
	ExternalHits          int64
	// ForgottenBlocks counts cached blocks Forget put first in line for eviction: the
	// contexts of ended programs.
	ForgottenBlocks int64
}

// StepResult is one iteration. Its slices are reused by the next Step.
type StepResult struct {
	Start, End time.Duration
	Batch      BatchShape
	NumSeqs    int
	Emitted    []*Request // sampled a token this step
	Finished   []*Request // finished this step
}

// NewEngine validates the configuration and builds an empty engine.
func NewEngine(cfg EngineConfig) (*Engine, error) {
	p := cfg.Profile
	if err := p.Validate(); err != nil {
		return nil, err
	}
	if cfg.Mode == "" {
		cfg.Mode = ModeVLLM
	}
	if cfg.Policy == "" {
		cfg.Policy = PolicyFCFS
	}
	if cfg.Mode != ModeVLLM && cfg.Mode != ModeNaive {
		return nil, fmt.Errorf("sim: unknown mode %q (want vllm or naive)", cfg.Mode)
	}
	if cfg.Policy != PolicyFCFS && cfg.Policy != PolicyPriority {
		return nil, fmt.Errorf("sim: unknown scheduling policy %q (want fcfs or priority)", cfg.Policy)
	}
	if err := checkOffload(p, cfg); err != nil {
		return nil, err
	}
	e := &Engine{
		p:         p,
		mode:      cfg.Mode,
		policy:    cfg.Policy,
		bs:        p.BlockSize,
		numBlocks: p.NumBlocks(),
	}
	e.waiting.priority = cfg.Policy == PolicyPriority
	if e.mode == ModeVLLM {
		e.kv = newKVCache(e.numBlocks, true)
		if n := p.OffloadBlocks(cfg.OffloadBytes); n > 0 {
			e.cpu = newCPUTier(n)
			e.kv.evicted = e.evicted
			e.stats.OffloadCapacityBlocks = n
		}
		if cfg.RecordRefs {
			// Naive mode has no prefix cache, so nothing to record there.
			e.refs = &RefString{}
		}
	}
	e.stats.NumBlocks = e.numBlocks
	return e, nil
}

// Profile is the engine's profile.
func (e *Engine) Profile() Profile { return e.p }

// Mode is the engine's memory mode.
func (e *Engine) Mode() Mode { return e.mode }

// Policy is the engine's scheduling policy.
func (e *Engine) Policy() Policy { return e.policy }

// Idle reports that no request is waiting or running.
func (e *Engine) Idle() bool { return e.waiting.len() == 0 && len(e.running) == 0 }

// Submit queues r at virtual time now. It fails at once, leaving r unqueued, when r can
// never run (ErrInvalidRequest) or its memory does not fit (ErrOutOfMemory).
func (e *Engine) Submit(r *Request, now time.Duration) error {
	if r.State != StateNew {
		return fmt.Errorf("%w: request %d was already submitted", ErrInvalidRequest, r.ID)
	}
	if len(r.Prompt) == 0 {
		return fmt.Errorf("%w: the prompt is empty", ErrInvalidRequest)
	}
	if r.MaxTokens < 0 {
		return fmt.Errorf("%w: max_tokens must be at least 0, got %d", ErrInvalidRequest, r.MaxTokens)
	}
	if r.MaxTokens == 0 {
		r.MaxTokens = e.p.MaxModelLen - len(r.Prompt)
	}
	if len(r.Prompt)+r.MaxTokens > e.p.MaxModelLen || r.MaxTokens <= 0 {
		return fmt.Errorf("%w: this model's maximum context length is %d tokens, but %d were requested (%d in the prompt, %d for the completion); shorten the prompt or lower max_tokens",
			ErrInvalidRequest, e.p.MaxModelLen, len(r.Prompt)+r.MaxTokens, len(r.Prompt), r.MaxTokens)
	}
	r.target, r.FinishReason = r.MaxTokens, "length"
	if r.EOSAt >= 0 && r.EOSAt <= r.MaxTokens {
		r.target, r.FinishReason = r.EOSAt, "stop"
	}
	switch e.mode {
	case ModeNaive:
		need := len(r.Prompt) + r.MaxTokens
		capacity := e.numBlocks * e.bs
		if e.reserved+need > capacity {
			return fmt.Errorf("%w: the request reserves %d tokens (prompt + max_tokens) but only %d of %d are free; retry later or lower max_tokens",
				ErrOutOfMemory, need, capacity-e.reserved, capacity)
		}
		r.reserved = need
		e.reserved += need
	case ModeVLLM:
		// Real vLLM refuses to start unless max_model_len fits the cache, so no request
		// can outgrow it; here a profile may allow it, and such a request would wait for
		// memory that never comes, so it fails now.
		if need := ceilDiv(len(r.Prompt)+r.target, e.bs); need > e.numBlocks {
			return fmt.Errorf("%w: the request needs %d KV blocks and the whole cache holds %d",
				ErrOutOfMemory, need, e.numBlocks)
		}
	}
	e.seq++
	r.seq = e.seq
	r.heapIdx = -1
	r.Arrival = now
	r.State = StateWaiting
	e.waiting.push(r)
	return nil
}

// Cancel ends r wherever it is, returning its memory. Cancelling a finished request does
// nothing.
func (e *Engine) Cancel(r *Request, now time.Duration) {
	switch r.State {
	case StateWaiting:
		e.waiting.remove(r)
	case StateRunning:
		for i, x := range e.running {
			if x == r {
				e.running = append(e.running[:i], e.running[i+1:]...)
				break
			}
		}
		e.freeBlocks(r)
	default:
		return
	}
	e.reserved -= r.reserved
	r.reserved = 0
	r.State = StateCancelled
	r.FinishReason = "abort"
	r.Finished = now
}

// Step runs one iteration starting at now: schedule running requests (decodes and
// unfinished prefill chunks), then, if nothing had to be preempted, admit waiting ones,
// all within the token budget; then advance every scheduled request by its tokens. A step
// schedules nothing only when its sole running request had to preempt itself (memory
// held by pins); the next step readmits it, giving up pins if it must.
func (e *Engine) Step(now time.Duration) StepResult {
	e.ExpirePins(now)
	if e.kv != nil {
		e.kv.now = int64(now)
	}
	e.sched, e.emitted, e.finished = e.sched[:0], e.emitted[:0], e.finished[:0]
	e.stepLoad, e.prefetched = e.prefetched, 0
	budget := e.p.MaxNumBatchedTokens
	preempted := e.scheduleRunning(&budget, now)
	if !preempted {
		e.admitWaiting(&budget, now)
	}

	var shape BatchShape
	for _, s := range e.sched {
		prior := int64(s.r.numComputed)
		n := int64(s.n)
		shape.Tokens += s.n
		shape.KVRead += prior + n
		shape.AttnPairs += n * (prior + (n+1)/2)
	}
	// Loads from the CPU tier are not overlapped with compute: the step waits for them.
	load := e.p.LoadTime(e.stepLoad)
	e.stats.OffloadLoadTime += load
	end := now + e.p.StepTime(shape) + load
	if len(e.sched) > 0 {
		e.stats.Steps++
	}

	done := 0
	for _, s := range e.sched {
		r := s.r
		r.numComputed += s.n
		if r.numComputed < r.numTokens() {
			continue // a prefill chunk; the next one comes next step
		}
		if !r.prefilled {
			r.prefilled = true
			e.stats.PromptTokens += int64(len(r.Prompt))
		}
		if r.NumOutput < r.target {
			r.NumOutput++
			e.stats.GenerationTokens++
			if r.NumOutput == 1 {
				r.FirstToken = end
			}
			r.LastToken = end
			e.emitted = append(e.emitted, r)
		}
		if r.NumOutput >= r.target {
			e.finish(r, end)
			done++
		}
	}
	if done > 0 {
		kept := e.running[:0]
		for _, r := range e.running {
			if r.State == StateRunning {
				kept = append(kept, r)
			}
		}
		clear(e.running[len(kept):])
		e.running = kept
	}
	return StepResult{
		Start: now, End: end, Batch: shape, NumSeqs: len(e.sched),
		Emitted: e.emitted, Finished: e.finished,
	}
}

// scheduleRunning gives each running request its next tokens, preempting when the cache
// is full. It reports whether anything was preempted.
func (e *Engine) scheduleRunning(budget *int, now time.Duration) bool {
	preempted := false
	for i := 0; i < len(e.running) && *budget > 0; {
		r := e.running[i]
		n := min(r.numTokens()-r.numComputed, *budget)
		if n <= 0 {
			i++
			continue
		}
		for !e.allocate(r, nil, 0, n) {
			victim, vi := e.victim()
			e.running = append(e.running[:vi], e.running[vi+1:]...)
			if vi < i {
				// Already given tokens this step: take them back.
				*budget += e.unschedule(victim)
				i--
			}
			e.preempt(victim)
			preempted = true
			if victim == r {
				return true
			}
		}
		e.sched = append(e.sched, scheduled{r, n})
		*budget -= n
		i++
	}
	return preempted
}

// victim is the running request vLLM preempts: the last admitted under fcfs, the one
// with the highest priority value (then latest arrival) under priority.
func (e *Engine) victim() (*Request, int) {
	if e.policy != PolicyPriority {
		return e.running[len(e.running)-1], len(e.running) - 1
	}
	vi := 0
	for i, r := range e.running[1:] {
		v := e.running[vi]
		if r.Priority > v.Priority || (r.Priority == v.Priority && r.Arrival > v.Arrival) {
			vi = i + 1
		}
	}
	return e.running[vi], vi
}

func (e *Engine) unschedule(r *Request) int {
	for i, s := range e.sched {
		if s.r == r {
			e.sched = append(e.sched[:i], e.sched[i+1:]...)
			return s.n
		}
	}
	return 0
}

// preempt frees everything r computed and sends it back to wait; when readmitted it
// recomputes prompt and output so far, often mostly from its own still-cached blocks.
func (e *Engine) preempt(r *Request) {
	e.freeBlocks(r)
	r.State = StateWaiting
	r.Preemptions++
	e.stats.Preemptions++
	e.waiting.pushFront(r)
}

func (e *Engine) freeBlocks(r *Request) {
	if e.kv != nil {
		e.kv.release(r.blocks)
	}
	r.blocks = r.blocks[:0]
	r.numComputed, r.numCommitted = 0, 0
}

// admitWaiting moves requests from the waiting queue into the batch in queue order until
// the budget, max_num_seqs or memory runs out. The head blocks the queue when it does not
// fit, as in vLLM.
func (e *Engine) admitWaiting(budget *int, now time.Duration) {
	for e.waiting.len() > 0 && *budget > 0 && len(e.running) < e.p.MaxNumSeqs {
		r := e.waiting.peek()
		hit := e.hitBuf[:0]
		loaded := 0 // blocks past the GPU hit found in the CPU tier
		if e.kv != nil && r.numComputed == 0 {
			// A full hit still recomputes the last token, whose logits are needed.
			full := (r.numTokens() - 1) / e.bs
			r.ensureHashes(full, e.bs)
			hit = e.kv.lookup(hit, r.hashes[:full])
			if e.cpu != nil {
				loaded = e.cpu.lookup(r.hashes[len(hit):full])
			}
		}
		e.hitBuf = hit
		hitTokens := len(hit) * e.bs
		n := min(r.numTokens()-r.numComputed-hitTokens-loaded*e.bs, *budget)
		if !e.allocate(r, hit, loaded, n) {
			// Pins are a hint: when nothing runs, holding them would idle the GPU
			// forever, so give up the soonest-expiring one and retry.
			if len(e.running) == 0 && len(e.pins) > 0 {
				e.dropPin(heap.Pop(&e.pins).(*pin))
				continue
			}
			return
		}
		e.waiting.pop()
		if e.kv != nil {
			e.stats.PrefixQueries += int64(r.numTokens())
			e.stats.PrefixHits += int64(hitTokens)
		}
		if e.cpu != nil {
			e.stats.ExternalQueries += int64(r.numTokens() - hitTokens)
			e.stats.ExternalHits += int64(loaded * e.bs)
		}
		if !r.scheduled {
			r.scheduled = true
			r.Scheduled = now
			r.NumCached = min(hitTokens+loaded*e.bs, len(r.Prompt))
		}
		r.State = StateRunning
		e.running = append(e.running, r)
		e.sched = append(e.sched, scheduled{r, n})
		*budget -= n
	}
}

// allocate gives r the blocks for n more tokens after taking the cache hits and the
// loaded blocks that follow them, or reports that they do not fit, changing nothing.
func (e *Engine) allocate(r *Request, hit []int32, loaded, n int) bool {
	if e.kv == nil {
		return true
	}
	total := r.numComputed + (len(hit)+loaded)*e.bs + n
	need := ceilDiv(total, e.bs) - len(r.blocks) - len(hit)
	if need < 0 {
		need = 0
	}
	// Hit blocks nobody holds sit in the free queue; taking them leaves fewer to hand out.
	free := e.kv.numFree
	for _, id := range hit {
		if e.kv.blocks[id].ref == 0 {
			free--
		}
	}
	if need > free {
		return false
	}
	for _, id := range hit {
		e.kv.touch(id)
		if e.refs != nil {
			e.refs.add(e.kv.blocks[id].hash, true)
		}
	}
	r.blocks = append(r.blocks, hit...)
	if loaded > 0 {
		// Before alloc, whose evictions store into the CPU tier and must not push out
		// the blocks being loaded.
		e.load(r.hashes[len(hit) : len(hit)+loaded])
	}
	r.numComputed += (len(hit) + loaded) * e.bs
	r.numCommitted += len(hit)
	// The loaded blocks are the first of the fresh ones, and commit names them below.
	r.blocks = e.kv.alloc(r.blocks, need)
	// Register blocks that will be full once this step runs, as vLLM does at allocation.
	full := min(total, r.numTokens()) / e.bs
	r.ensureHashes(full, e.bs)
	for k := r.numCommitted; k < full; k++ {
		e.kv.commit(r.blocks[k], r.hashes[k])
		if e.refs != nil {
			// Computed here, so a miss even when another block already holds the
			// content: the engine does not share it, and pays for it again.
			e.refs.add(r.hashes[k], false)
		}
	}
	r.numCommitted = max(r.numCommitted, full)
	return true
}

func (e *Engine) finish(r *Request, end time.Duration) {
	r.State = StateFinished
	r.Finished = end
	e.reserved -= r.reserved
	r.reserved = 0
	if e.kv != nil && r.KVTTL > 0 && r.numCommitted > 0 {
		// Keep the full blocks (the reusable prefix); the partial tail is never a hit.
		p := &pin{expiry: int64(end + r.KVTTL), blocks: append([]int32(nil), r.blocks[:r.numCommitted]...),
			end: end, after: r.ReuseAfter}
		e.seq++
		p.seq = e.seq
		e.kv.release(r.blocks[r.numCommitted:])
		heap.Push(&e.pins, p)
		e.pinned += len(p.blocks)
		e.stats.Pins++
		r.blocks = r.blocks[:0]
		r.numComputed, r.numCommitted = 0, 0
	} else if e.kv != nil && r.ReuseAfter > 0 {
		e.kv.releaseHinted(r.blocks, end, r.ReuseAfter)
		r.blocks = r.blocks[:0]
		r.numComputed, r.numCommitted = 0, 0
	} else {
		e.freeBlocks(r)
	}
	if r.OffloadOnFinish {
		e.Offload(r)
	}
	e.finished = append(e.finished, r)
}

// ExpirePins releases pins whose time has come. Step calls it; a driver that idles may
// call it to free memory between requests.
func (e *Engine) ExpirePins(now time.Duration) {
	for len(e.pins) > 0 && e.pins[0].expiry <= int64(now) {
		e.dropPin(heap.Pop(&e.pins).(*pin))
	}
}

// NextPinExpiry is when the soonest pin expires, if any is held.
func (e *Engine) NextPinExpiry() (time.Duration, bool) {
	if len(e.pins) == 0 {
		return 0, false
	}
	return time.Duration(e.pins[0].expiry), true
}

func (e *Engine) dropPin(p *pin) {
	if p.after > 0 {
		e.kv.releaseHinted(p.blocks, p.end, p.after)
	} else {
		e.kv.release(p.blocks)
	}
	e.pinned -= len(p.blocks)
}

// Refs is the block reference string recorded so far, or nil when the engine was not
// asked to record one (EngineConfig.RecordRefs) or has no prefix cache (naive mode).
func (e *Engine) Refs() *RefString { return e.refs }

// Stats returns the current gauges and counters.
func (e *Engine) Stats() Stats {
	s := e.stats
	s.Running = len(e.running)
	s.Waiting = e.waiting.len()
	s.PinnedBlocks = e.pinned
	if e.kv != nil {
		s.FreeBlocks = e.kv.numFree
		s.KVUsage = 1 - float64(s.FreeBlocks)/float64(e.numBlocks)
		if e.cpu != nil {
			s.OffloadBlocks = e.cpu.len()
		}
	} else {
		capacity := e.numBlocks * e.bs
		s.FreeBlocks = (capacity - e.reserved) / e.bs
		s.KVUsage = float64(e.reserved) / float64(capacity)
	}
	return s
}

func ceilDiv(a, b int) int { return (a + b - 1) / b }
