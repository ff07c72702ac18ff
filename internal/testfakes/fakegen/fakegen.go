// Package fakegen holds what the fake provider upstreams (fakeanthropic, fakegemini)
// share: deterministic text, values that fit a JSON schema, a queue of injected faults,
// and the running server with its request counts (Base). Each fake speaks its own provider's wire format; only the model behind it is
// common, so a resumed call can be compared byte for byte with an uninterrupted one on
// any of them.
package fakegen

import (
	"encoding/binary"
	"hash"
	"hash/fnv"
	"strings"
	"sync"
	"time"

	"github.com/aios-go/aios/internal/testfakes/fakeopenai"
)

// Hasher builds the seed of a conversation from its parts.
type Hasher struct{ h hash.Hash64 }

func NewHasher() *Hasher { return &Hasher{h: fnv.New64a()} }

// Add hashes each string with its length, so ("ab","c") and ("a","bc") differ.
func (h *Hasher) Add(parts ...string) {
	for _, s := range parts {
		var n [8]byte
		binary.LittleEndian.PutUint64(n[:], uint64(len(s)))
		_, _ = h.h.Write(n[:])
		_, _ = h.h.Write([]byte(s))
	}
}

func (h *Hasher) Sum() uint64 { return h.h.Sum64() }

// Word is output word i of the conversation with this seed.
func Word(seed uint64, i int) string { return fakeopenai.Word(seed, i) }

// Token is output token i as the fakes stream it: a word, with the space that separates
// it from the previous one in front, as BPE tokenizers split text.
func Token(seed uint64, i int) string {
	if i == 0 {
		return Word(seed, 0)
	}
	return " " + Word(seed, i)
}

// Text is tokens [from, to) joined: what an uninterrupted answer holds there.
func Text(seed uint64, from, to int) string {
	var sb strings.Builder
	for i := from; i < to; i++ {
		sb.WriteString(Token(seed, i))
	}
	return sb.String()
}

// Continues is the index of the token that follows prefix, a partial answer the client
// asks the model to continue.
func Continues(prefix string) int { return len(strings.Fields(prefix)) }

// FaultKind selects how a request fails.
type FaultKind int

const (
	// RateLimited answers 429 with the provider's rate-limit error and Retry-After.
	RateLimited FaultKind = iota + 1
	// Internal answers 500.
	Internal
	// Overloaded answers the provider's overload status (Anthropic 529, Gemini 503).
	Overloaded
	// Status answers Fault.Status with Fault.Message.
	Status
	// Hang never answers; the request ends when the client gives up or the server closes.
	Hang
	// Disconnect streams Fault.AfterTokens tokens, then drops the connection without the
	// stream's proper end.
	Disconnect
	// StreamError streams Fault.AfterTokens tokens, then sends the provider's in-stream
	// error event (an overload, as both providers report engine trouble mid-stream).
	StreamError
)

// Fault is a failure applied to the next Count generation requests.
type Fault struct {
	Kind  FaultKind
	Count int // requests it applies to; 0 means 1
	// RetryAfter is how long RateLimited asks the client to wait (default 1s).
	RetryAfter time.Duration
	// Status and Message are used by Status (Message also by the other status faults).
	Status  int
	Message string
	// AfterTokens is how many tokens Disconnect and StreamError stream first.
	AfterTokens int
}

// Faults is a queue of faults, each applied to its Count requests in order. It is safe
// for concurrent use.
type Faults struct {
	mu sync.Mutex
	q  []Fault
}

// Inject queues f.
func (fs *Faults) Inject(f Fault) {
	if f.Count <= 0 {
		f.Count = 1
	}
	fs.mu.Lock()
	fs.q = append(fs.q, f)
	fs.mu.Unlock()
}

// Clear drops every queued fault.
func (fs *Faults) Clear() {
	fs.mu.Lock()
	fs.q = nil
	fs.mu.Unlock()
}

// Next takes the fault for the request arriving now, if any.
func (fs *Faults) Next() (Fault, bool) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if len(fs.q) == 0 {
		return Fault{}, false
	}
	f := fs.q[0]
	if fs.q[0].Count--; fs.q[0].Count == 0 {
		fs.q = fs.q[1:]
	}
	return f, true
}

// Prefixes remembers conversation prefixes already served, to report cached prompt
// tokens as an engine with prefix caching does, at message granularity.
type Prefixes struct {
	mu   sync.Mutex
	seen map[uint64]struct{}
}

// Cached records the prefixes whose hashes are given (in order, each including the ones
// before) and returns the index of the longest one served before, or -1.
func (p *Prefixes) Cached(hashes []uint64) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.seen == nil || len(p.seen) > 1<<16 {
		p.seen = make(map[uint64]struct{})
	}
	hit := -1
	for i := len(hashes) - 1; i >= 0; i-- {
		if _, ok := p.seen[hashes[i]]; ok {
			hit = i
			break
		}
	}
	for _, h := range hashes {
		p.seen[h] = struct{}{}
	}
	return hit
}

// Wait sleeps d unless done closes first; false means stop.
func Wait(done <-chan struct{}, closing <-chan struct{}, d time.Duration) bool {
	if d <= 0 {
		select {
		case <-done:
			return false
		default:
			return true
		}
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-done:
		return false
	case <-closing:
		return false
	}
}
