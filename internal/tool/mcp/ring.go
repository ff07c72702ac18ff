package mcp

import (
	"strings"
	"sync"
)

// ring keeps the last bytes a server wrote to stderr: a crashing server says why there,
// and the kernel must not hold an unbounded log of a chatty one.
type ring struct {
	mu   sync.Mutex
	buf  []byte
	size int
}

func newRing(size int) *ring { return &ring{size: size} }

func (r *ring) Write(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := len(p)
	if len(p) >= r.size {
		p = p[len(p)-r.size:]
		r.buf = r.buf[:0]
	}
	if over := len(r.buf) + len(p) - r.size; over > 0 {
		r.buf = append(r.buf[:0], r.buf[over:]...)
	}
	r.buf = append(r.buf, p...)
	return n, nil
}

// tail is the last n non-empty lines, joined by " | " to fit in one error message.
func (r *ring) tail(n int) string {
	r.mu.Lock()
	s := string(r.buf)
	r.mu.Unlock()
	var lines []string
	for _, l := range strings.Split(s, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			lines = append(lines, l)
		}
	}
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, " | ")
}
