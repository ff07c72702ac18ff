package sim

import (
	"context"
	"fmt"
	"math"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Config builds a Live engine (and a Server).
type Config struct {
	Profile string  // a built-in profile name; default llama3-8b-h100
	Mode    Mode    // vllm (default) or naive
	Policy  Policy  // fcfs (default) or priority
	Speed   float64 // virtual seconds per wall second; 0 means 1 (real time)
	Model   string  // the served model name; default the profile's model
	// EmbedDim is the dimension of /v1/embeddings vectors when a request does not ask
	// for one; 0 means DefaultEmbedDim.
	EmbedDim int
	// KVOffloadGiB is host memory for the CPU KV offload tier, as vLLM's
	// --kv-offloading-size; 0 means none.
	KVOffloadGiB float64
}

// GenRequest is one generation.
type GenRequest struct {
	// Messages is a chat; when nil, Prompt is a raw completion prompt.
	Messages []Message
	Prompt   string
	// NoGenerationPrompt leaves out the assistant header after the messages
	// (add_generation_prompt=false).
	NoGenerationPrompt bool
	// ContinueFinal is assistant text already produced: the output continues it, so a
	// generation cut after k tokens and resumed with its text joins to exactly the
	// uninterrupted one (vLLM's continue_final_message).
	ContinueFinal string

	Model     string
	MaxTokens int  // 0: up to max_model_len
	IgnoreEOS bool // generate exactly MaxTokens
	// Priority orders requests under the priority policy (lower first); other policies
	// ignore it.
	Priority int
	KVTTL    time.Duration // keep the finished request's prefix cached this long
	// ReuseAfter: when after it ends its session expects to be back (an eviction hint).
	ReuseAfter time.Duration

	Tools []Tool
	// ToolChoice is "", "none", "auto" or "required". With "required" the output is a
	// call to one of Tools; "auto" answers in text.
	ToolChoice string
	// ForceTool names the function to call (tool_choice {"type": "function", ...}).
	ForceTool string
	// ResponseFormat, when it asks for JSON, makes the answer a JSON document (conforming
	// to its schema, if it has one) instead of text; a tool call still wins.
	ResponseFormat *ResponseFormat

	Seed    uint64 // varies the output; same request and seed, same output
	Session string // varies the output per session
	// KVSession names the session for EndSession and SwapSession, without varying the
	// output: the server's kv_session, which a client sends so its hints find the
	// context, as vLLM's output does not depend on who asks. Only requests that carry it
	// are remembered (livesession.go), so an engine no one sends hints to keeps nothing.
	KVSession string
}

// GenResult is how a generation ended. Times are virtual.
type GenResult struct {
	Text             string
	ToolCall         *ToolCall
	FinishReason     string // stop, length or tool_calls
	PromptTokens     int
	CachedTokens     int
	CompletionTokens int
	Preemptions      int
	QueueTime        time.Duration // arrival to first scheduled
	TTFT             time.Duration // arrival to first token
	Latency          time.Duration // arrival to end
}

// Live runs an Engine in one goroutine, mapping its virtual time to the wall clock: a
// step the cost model says takes d completes d/speed of wall time after it starts. Many
// goroutines may call Generate at once.
type Live struct {
	eng      *Engine
	model    string
	embedDim int
	speed    float64
	offloads bool // the engine has a CPU KV tier
	metrics  *metrics
	nextID   atomic.Uint64

	mu     sync.Mutex
	cmds   []command
	closed bool
	stats  Stats

	wake chan struct{}
	quit chan struct{}
	done chan struct{}

	// Owned by the loop goroutine.
	reqs       map[uint64]*liveReq
	sess       sessions
	vnow       time.Duration
	anchorWall time.Time
	anchorVirt time.Duration
}

type command struct {
	submit *liveReq
	cancel *liveReq
	end    string // a session that has ended (EndSession)
	swap   string // a session to move through the CPU tier (SwapSession)
	swapIn bool
	reply  chan SessionHint // for end and swap: what it did, when a caller waits
	at     time.Time
}

// liveReq joins a caller's Generate to its engine request. The loop writes the guarded
// fields; Generate reads them when notified.
type liveReq struct {
	r      *Request
	tool   *Tool
	out    *shaped // a tool call's arguments or a JSON answer, decided in advance
	notify chan struct{}
	prevAt time.Duration // loop-owned: the last token's time, for inter-token latency
	// session and keep, the tokens it shares with other sessions, for EndSession.
	session string
	keep    int

	mu       sync.Mutex
	produced int
	done     bool
	err      error
	result   GenResult
}

// NewLive builds the engine and starts its goroutine; Close stops it.
func NewLive(cfg Config) (*Live, error) {
	if cfg.Profile == "" {
		cfg.Profile = "llama3-8b-h100"
	}
	if cfg.Speed == 0 {
		cfg.Speed = 1
	}
	if cfg.Speed < 0 || math.IsNaN(cfg.Speed) || math.IsInf(cfg.Speed, 0) {
		return nil, fmt.Errorf("sim: speed must be a positive number, got %v", cfg.Speed)
	}
	if cfg.EmbedDim == 0 {
		cfg.EmbedDim = DefaultEmbedDim
	}
	if cfg.EmbedDim < 1 || cfg.EmbedDim > MaxEmbedDim {
		return nil, fmt.Errorf("sim: embedding dimension must be between 1 and %d, got %d", MaxEmbedDim, cfg.EmbedDim)
	}
	p, err := LookupProfile(cfg.Profile)
	if err != nil {
		return nil, err
	}
	if cfg.KVOffloadGiB < 0 || math.IsNaN(cfg.KVOffloadGiB) || math.IsInf(cfg.KVOffloadGiB, 0) {
		return nil, fmt.Errorf("sim: the KV offload size must be a number of GiB, 0 or more, got %v", cfg.KVOffloadGiB)
	}
	eng, err := NewEngine(EngineConfig{Profile: p, Mode: cfg.Mode, Policy: cfg.Policy, OffloadBytes: GiBBytes(cfg.KVOffloadGiB)})
	if err != nil {
		return nil, err
	}
	if cfg.Model == "" {
		cfg.Model = p.Model
	}
	l := &Live{
		eng:        eng,
		model:      cfg.Model,
		embedDim:   cfg.EmbedDim,
		speed:      cfg.Speed,
		offloads:   eng.cpu != nil,
		wake:       make(chan struct{}, 1),
		quit:       make(chan struct{}),
		done:       make(chan struct{}),
		reqs:       make(map[uint64]*liveReq),
		anchorWall: time.Now(),
	}
	l.stats = eng.Stats()
	l.metrics = newMetrics(cfg.Model, p, cfg.Mode, l.Stats)
	go l.loop()
	return l, nil
}

// Model is the served model name.
func (l *Live) Model() string { return l.model }

// EmbedDim is the dimension of embeddings a request does not give one for.
func (l *Live) EmbedDim() int { return l.embedDim }

// Profile is the engine's profile.
func (l *Live) Profile() Profile { return l.eng.Profile() }

// Mode is the engine's memory mode.
func (l *Live) Mode() Mode { return l.eng.Mode() }

// Policy is the engine's scheduling policy.
func (l *Live) Policy() Policy { return l.eng.Policy() }

// Stats is the engine's state as of its last step.
func (l *Live) Stats() Stats {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.stats
}

// Metrics gathers the vLLM-named Prometheus metrics.
func (l *Live) Metrics() prometheus.Gatherer { return l.metrics.reg }

// Close fails requests still in flight with ErrClosed and stops the goroutine.
func (l *Live) Close() error {
	l.mu.Lock()
	if !l.closed {
		l.closed = true
		close(l.quit)
	}
	l.mu.Unlock()
	<-l.done
	return nil
}

func (l *Live) send(c command) bool {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return false
	}
	l.cmds = append(l.cmds, c)
	l.mu.Unlock()
	select {
	case l.wake <- struct{}{}:
	default:
	}
	return true
}

// Generate runs req and returns when it finishes, fails (ErrOutOfMemory,
// ErrInvalidRequest, ErrClosed) or ctx ends (ctx.Err(); the request is cancelled in the
// engine). onToken, if not nil, receives the text as it is generated, possibly several
// tokens at a time, always on the calling goroutine and never after Generate returns; a
// tool call is not streamed, it comes in the result.
func (l *Live) Generate(ctx context.Context, req GenRequest, onToken func(text string)) (GenResult, error) {
	if err := ctx.Err(); err != nil {
		return GenResult{}, err
	}
	lr, err := l.prepare(&req)
	if err != nil {
		return GenResult{}, err
	}
	if !l.send(command{submit: lr, at: time.Now()}) {
		return GenResult{}, ErrClosed
	}
	var text strings.Builder
	emitted := 0
	for {
		select {
		case <-lr.notify:
		case <-ctx.Done():
			l.send(command{cancel: lr})
			return GenResult{}, ctx.Err()
		}
		lr.mu.Lock()
		produced, done, res, err := lr.produced, lr.done, lr.result, lr.err
		lr.mu.Unlock()
		if produced > emitted && lr.tool == nil {
			s := lr.text(emitted, produced)
			text.WriteString(s)
			if onToken != nil && s != "" {
				onToken(s)
			}
			emitted = produced
		}
		if done {
			if err != nil {
				return GenResult{}, err
			}
			if lr.out != nil && lr.tool == nil && produced < lr.out.tokens {
				// A JSON answer is whole even when max_tokens stopped it ("length").
				s := lr.out.piece(produced, lr.out.tokens)
				text.WriteString(s)
				if onToken != nil {
					onToken(s)
				}
			}
			res.Text = text.String()
			return res, nil
		}
	}
}

// prepare tokenizes and decides everything about the output that is known in advance.
func (l *Live) prepare(req *GenRequest) (*liveReq, error) {
	r, out, err := buildRequest(req)
	if err != nil {
		return nil, err
	}
	r.ID = l.nextID.Add(1)
	lr := &liveReq{r: r, out: out, notify: make(chan struct{}, 1), session: req.KVSession}
	if req.KVSession != "" && req.Messages != nil {
		lr.keep = sharedPrefix(req.Messages, req.Tools)
	}
	if out != nil {
		lr.tool = out.tool
	}
	return lr, nil
}

// text is generated tokens [from, to) of the answer.
func (lr *liveReq) text(from, to int) string {
	if lr.out != nil {
		return lr.out.piece(from, to)
	}
	return OutputText(lr.r.Seed, lr.r.Offset+from, lr.r.Offset+to)
}

// BuildRequest turns a generation into an engine request exactly as Live does —
// template, tokens, output seed and length — for simulations that drive an Engine in
// virtual time. The caller sets ID.
func BuildRequest(g GenRequest) (*Request, error) {
	r, _, err := buildRequest(&g)
	return r, err
}

func buildRequest(req *GenRequest) (*Request, *shaped, error) {
	var ids []uint32
	var base int
	offset := 0
	if req.Messages != nil {
		ids, base = encodeChat(req.Messages, req.Tools, req.ContinueFinal, !req.NoGenerationPrompt || req.ContinueFinal != "")
		offset = CountTokens(req.ContinueFinal)
	} else {
		if req.ContinueFinal != "" {
			return nil, nil, fmt.Errorf("%w: continuing a final message needs chat messages", ErrInvalidRequest)
		}
		ids = encodeCompletion(req.Prompt)
		base = len(ids)
	}
	seed := outputSeed(ids[:base], req.Seed, req.Session)
	tool, err := chooseTool(req, seed)
	if err != nil {
		return nil, nil, err
	}
	out := shapeOutput(req, tool, seed)
	if out != nil && tool == nil && req.ContinueFinal != "" {
		return nil, nil, fmt.Errorf("%w: a JSON response_format cannot continue a final message; the document is generated whole", ErrInvalidRequest)
	}
	// Priority matters only to an engine running the priority policy.
	r := &Request{
		Prompt:     ids,
		MaxTokens:  req.MaxTokens,
		Priority:   req.Priority,
		KVTTL:      req.KVTTL,
		ReuseAfter: req.ReuseAfter,
		Seed:       seed,
		Offset:     offset,
	}
	switch {
	case req.IgnoreEOS:
		r.EOSAt = -1
	case out != nil:
		r.EOSAt = out.tokens
	default:
		r.EOSAt = max(0, NaturalLength(seed)-offset)
	}
	return r, out, nil
}

func chooseTool(req *GenRequest, seed uint64) (*Tool, error) {
	if req.ForceTool != "" {
		for i := range req.Tools {
			if req.Tools[i].Name == req.ForceTool {
				return &req.Tools[i], nil
			}
		}
		return nil, fmt.Errorf("%w: tool_choice names function %q, which is not among the request's tools", ErrInvalidRequest, req.ForceTool)
	}
	switch req.ToolChoice {
	case "", "none", "auto":
		return nil, nil
	case "required":
		if len(req.Tools) == 0 {
			return nil, fmt.Errorf("%w: tool_choice is \"required\" but the request has no tools", ErrInvalidRequest)
		}
		return &req.Tools[mix64(seed^0x7265717569726564)%uint64(len(req.Tools))], nil
	}
	return nil, fmt.Errorf("%w: tool_choice must be none, auto, required or a function, got %q", ErrInvalidRequest, req.ToolChoice)
}

func (l *Live) loop() {
	defer close(l.done)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	idleSteps := 0
	for {
		l.mu.Lock()
		cmds, closed := l.cmds, l.closed
		l.cmds = nil
		l.mu.Unlock()
		if closed {
			for _, c := range cmds {
				if c.submit != nil {
					l.complete(c.submit, ErrClosed)
				}
			}
			l.failAll()
			return
		}
		for _, c := range cmds {
			l.apply(c)
		}
		l.publish()

		if l.eng.Idle() {
			var expiry <-chan time.Time
			if t, ok := l.eng.NextPinExpiry(); ok {
				timer.Reset(max(0, time.Until(l.wallOf(t))))
				expiry = timer.C
			}
			select {
			case <-l.wake:
			case <-l.quit:
			case <-expiry:
			}
			timer.Stop()
			l.catchUp()
			l.eng.ExpirePins(l.vnow)
			continue
		}

		st := l.eng.Step(l.vnow)
		if st.NumSeqs == 0 {
			// A step that ran nothing (its only runner preempted itself) is followed by
			// one that runs; two in a row would be an engine bug, so wait rather than spin.
			if idleSteps++; idleSteps > 1 {
				select {
				case <-l.wake:
				case <-l.quit:
				}
			}
		} else {
			idleSteps = 0
		}
		if wait := time.Until(l.wallOf(st.End)); wait > minSleep {
			timer.Reset(wait)
			select {
			case <-timer.C:
			case <-l.quit:
				timer.Stop()
			}
		} else if wait < -maxLag {
			// Running behind (the host is slower than speed asks): carry on from here
			// rather than rushing to make the lost time up.
			l.anchorWall, l.anchorVirt = time.Now(), st.End
		}
		l.vnow = st.End
		l.deliver(&st)
	}
}

// Steps shorter than minSleep run back to back and are slept off together, since a timer
// cannot wait a few microseconds; a lag beyond maxLag is forgiven rather than made up.
const (
	minSleep = 500 * time.Microsecond
	maxLag   = 50 * time.Millisecond
)

func (l *Live) wallOf(v time.Duration) time.Time {
	return l.anchorWall.Add(time.Duration(float64(v-l.anchorVirt) / l.speed))
}

func (l *Live) virtOf(t time.Time) time.Duration {
	return l.anchorVirt + time.Duration(float64(t.Sub(l.anchorWall))*l.speed)
}

// catchUp moves virtual time to the wall clock after an idle spell.
func (l *Live) catchUp() {
	now := time.Now()
	if v := l.virtOf(now); v > l.vnow {
		l.vnow = v
	}
	l.anchorWall, l.anchorVirt = now, l.vnow
}

func (l *Live) apply(c command) {
	if c.end != "" || c.swap != "" {
		var h SessionHint
		if c.end != "" {
			h = l.endSession(c.end)
		} else {
			h = l.swapSession(c.swap, c.swapIn)
		}
		if c.reply != nil {
			c.reply <- h
		}
		return
	}
	if lr := c.cancel; lr != nil {
		if _, ok := l.reqs[lr.r.ID]; ok {
			l.eng.Cancel(lr.r, l.vnow)
			delete(l.reqs, lr.r.ID)
		}
		return
	}
	lr := c.submit
	arrival := min(l.virtOf(c.at), l.vnow)
	if err := l.eng.Submit(lr.r, arrival); err != nil {
		l.complete(lr, err)
		return
	}
	l.reqs[lr.r.ID] = lr
}

func (l *Live) deliver(st *StepResult) {
	// Publish first: a caller woken below must see the state its request ended in.
	l.publish()
	m := l.metrics
	for _, r := range st.Emitted {
		lr := l.reqs[r.ID]
		if r.NumOutput == 1 {
			m.ttft.Observe((r.FirstToken - r.Arrival).Seconds())
		} else {
			m.itl.Observe((r.LastToken - lr.prevAt).Seconds())
		}
		lr.prevAt = r.LastToken
		lr.mu.Lock()
		lr.produced = r.NumOutput
		lr.mu.Unlock()
		signal(lr.notify)
	}
	for _, r := range st.Finished {
		lr := l.reqs[r.ID]
		delete(l.reqs, r.ID)
		m.e2e.Observe((r.Finished - r.Arrival).Seconds())
		m.queue.Observe((r.Scheduled - r.Arrival).Seconds())
		res := GenResult{
			FinishReason:     r.FinishReason,
			PromptTokens:     len(r.Prompt),
			CachedTokens:     r.NumCached,
			CompletionTokens: r.NumOutput,
			Preemptions:      r.Preemptions,
			QueueTime:        r.Scheduled - r.Arrival,
			TTFT:             r.FirstToken - r.Arrival,
			Latency:          r.Finished - r.Arrival,
		}
		if r.NumOutput == 0 {
			res.TTFT = res.Latency
		}
		if lr.tool != nil {
			res.ToolCall = &ToolCall{
				ID:        fmt.Sprintf("chatcmpl-tool-%016x", mix64(r.Seed^0x6964)),
				Name:      lr.tool.Name,
				Arguments: lr.out.text,
			}
			res.FinishReason = "tool_calls"
			if r.NumOutput < lr.out.tokens {
				res.FinishReason = "length" // the arguments did not fit in max_tokens; sent whole all the same
			}
		}
		m.successes.WithLabelValues(res.FinishReason).Inc()
		lr.mu.Lock()
		lr.produced = r.NumOutput
		lr.result = res
		lr.mu.Unlock()
		l.remember(lr)
		l.complete(lr, nil)
	}
}

func (l *Live) complete(lr *liveReq, err error) {
	lr.mu.Lock()
	lr.done, lr.err = true, err
	lr.mu.Unlock()
	signal(lr.notify)
}

func (l *Live) failAll() {
	for id, lr := range l.reqs {
		l.eng.Cancel(lr.r, l.vnow)
		delete(l.reqs, id)
		l.complete(lr, ErrClosed)
	}
	l.publish()
}

func (l *Live) publish() {
	s := l.eng.Stats()
	l.mu.Lock()
	l.stats = s
	l.mu.Unlock()
}

func signal(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}
