package fakegen

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"time"
)

// Base is the running server the fakes share: a loopback httptest server, the queue of
// injected faults, counts of generation requests, and the last one for tests to
// inspect. A fake embeds it in its Server, whose methods then include Base's; Start
// must be called before any other method. Its methods are safe for concurrent use.
type Base struct {
	ts        *httptest.Server
	closing   chan struct{}
	closeOnce sync.Once
	faults    Faults

	requests atomic.Int64
	inflight atomic.Int64
	ids      atomic.Uint64

	mu         sync.Mutex
	lastBody   []byte
	lastHeader http.Header
}

// Start serves h on a loopback port.
func (b *Base) Start(h http.Handler) {
	b.closing = make(chan struct{})
	b.ts = httptest.NewServer(h)
}

// URL is the server's root.
func (b *Base) URL() string { return b.ts.URL }

// Close stops the server, ending hung and in-progress requests.
func (b *Base) Close() {
	b.closeOnce.Do(func() {
		close(b.closing)
		b.ts.CloseClientConnections()
		b.ts.Close()
	})
}

// InjectFault queues f for the next generation requests.
func (b *Base) InjectFault(f Fault) { b.faults.Inject(f) }

// ClearFaults drops every queued fault.
func (b *Base) ClearFaults() { b.faults.Clear() }

// Requests is the number of generation requests received, failed ones included.
func (b *Base) Requests() int { return int(b.requests.Load()) }

// InFlight is the number of generation requests being answered now.
func (b *Base) InFlight() int { return int(b.inflight.Load()) }

// LastBody is the body of the last generation request.
func (b *Base) LastBody() []byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	return bytes.Clone(b.lastBody)
}

// LastHeader is the header of the last generation request.
func (b *Base) LastHeader() http.Header {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.lastHeader.Clone()
}

// Receive counts r as a generation request received and in flight until done is
// called, and reads and records its body and header.
func (b *Base) Receive(r *http.Request) (body []byte, done func(), err error) {
	b.requests.Add(1)
	b.inflight.Add(1)
	body, err = io.ReadAll(r.Body)
	b.mu.Lock()
	b.lastBody, b.lastHeader = body, r.Header.Clone()
	b.mu.Unlock()
	return body, func() { b.inflight.Add(-1) }, err
}

// NextFault takes the fault for the request arriving now, if any.
func (b *Base) NextFault() (Fault, bool) { return b.faults.Next() }

// NextID numbers the server's responses and request ids: 1, 2, ...
func (b *Base) NextID() uint64 { return b.ids.Add(1) }

// Hang waits until r ends or the server closes: the Hang fault.
func (b *Base) Hang(r *http.Request) {
	select {
	case <-r.Context().Done():
	case <-b.closing:
	}
}

// Pace waits before output token i of r, latency for the first and tokenDelay for
// the others; false means the request ended or the server closed, so stop.
func (b *Base) Pace(r *http.Request, i int, latency, tokenDelay time.Duration) bool {
	d := tokenDelay
	if i == 0 {
		d = latency
	}
	return Wait(r.Context().Done(), b.closing, d)
}
