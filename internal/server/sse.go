package server

import (
	"encoding/json"
	"net/http"
	"sync"
)

// sseWriter writes server-sent events and flushes them from its own goroutine. A core
// emits deltas one by one; when several arrive while a flush is in progress they leave in
// one write, so a burst costs one syscall instead of one per token, while a lone delta
// is still flushed at once.
type sseWriter struct {
	mu      sync.Mutex
	w       http.ResponseWriter
	f       http.Flusher
	started bool
	dirty   bool
	kick    chan struct{}
	stop    chan struct{}
	stopped chan struct{}
}

func newSSEWriter(w http.ResponseWriter) *sseWriter {
	s := &sseWriter{w: w, kick: make(chan struct{}, 1), stop: make(chan struct{}), stopped: make(chan struct{})}
	s.f, _ = w.(http.Flusher)
	go s.loop()
	return s
}

func (s *sseWriter) loop() {
	defer close(s.stopped)
	for {
		select {
		case <-s.kick:
			s.mu.Lock()
			s.flushLocked()
			s.mu.Unlock()
		case <-s.stop:
			return
		}
	}
}

func (s *sseWriter) flushLocked() {
	if s.dirty && s.f != nil {
		s.f.Flush()
	}
	s.dirty = false
}

// Started reports whether the response headers went out.
func (s *sseWriter) Started() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.started
}

// Begin sends the headers of an event stream once; first runs after them, under the lock.
func (s *sseWriter) Begin(first func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.beginLocked(first)
}

func (s *sseWriter) beginLocked(first func()) {
	if s.started {
		return
	}
	s.started = true
	h := s.w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	s.w.WriteHeader(http.StatusOK)
	if first != nil {
		first()
	}
}

// Event writes one `data:` event with v as JSON (or raw when v is a string).
func (s *sseWriter) Event(v any) {
	s.mu.Lock()
	s.eventLocked(v)
	s.mu.Unlock()
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

func (s *sseWriter) eventLocked(v any) {
	var b []byte
	if raw, ok := v.(string); ok {
		b = []byte(raw)
	} else {
		b, _ = json.Marshal(v)
	}
	buf := make([]byte, 0, len(b)+8)
	buf = append(buf, "data: "...)
	buf = append(buf, b...)
	buf = append(buf, '\n', '\n')
	_, _ = s.w.Write(buf)
	s.dirty = true
}

// Named writes one event with a name line before its data, as Anthropic's streams have
// them: `event: name` then `data: {json}`.
func (s *sseWriter) Named(name string, v any) {
	s.mu.Lock()
	s.namedLocked(name, v)
	s.mu.Unlock()
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

func (s *sseWriter) namedLocked(name string, v any) {
	_, _ = s.w.Write([]byte("event: " + name + "\n"))
	s.eventLocked(v)
}

// Close stops the flusher and flushes what is left. No event may follow.
func (s *sseWriter) Close() {
	close(s.stop)
	<-s.stopped
	s.mu.Lock()
	s.flushLocked()
	s.mu.Unlock()
}
