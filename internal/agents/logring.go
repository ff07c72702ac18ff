package agents

import (
	"bytes"
	"strings"
	"unicode/utf8"

	"github.com/aios-go/aios/api"
)

// maxLogLine bounds one kept log line; a longer one is cut and marked.
const maxLogLine = 4 << 10

// maxLine bounds a line being assembled from an agent's output: the result line may be
// this long (1 MiB), and a longer run of bytes without a newline is split.
const maxLine = 1 << 20

// logRing keeps the newest lines of a run. Guarded by its run's mutex.
type logRing struct {
	lines   []api.AgentLogLine
	next    int // where the next line goes once the ring is full
	full    bool
	dropped int64
}

func newLogRing(n int) *logRing { return &logRing{lines: make([]api.AgentLogLine, 0, n)} }

func (r *logRing) add(l api.AgentLogLine) {
	if len(l.Text) > maxLogLine {
		cut := maxLogLine
		for cut > 0 && !utf8.RuneStart(l.Text[cut]) {
			cut--
		}
		l.Text = l.Text[:cut] + " …[line cut]"
	}
	if !r.full {
		r.lines = append(r.lines, l)
		if len(r.lines) == cap(r.lines) {
			r.full = true
		}
		return
	}
	r.lines[r.next] = l
	r.next = (r.next + 1) % len(r.lines)
	r.dropped++
}

// tail returns the newest n lines (all when n <= 0), oldest first.
func (r *logRing) tail(n int) []api.AgentLogLine {
	all := make([]api.AgentLogLine, 0, len(r.lines))
	all = append(all, r.lines[r.next:]...)
	all = append(all, r.lines[:r.next]...)
	if n > 0 && n < len(all) {
		all = all[len(all)-n:]
	}
	return all
}

// lineWriter splits what a process writes into lines. It is an io.Writer for one
// stream; exec.Cmd's copying goroutine is its only writer, and Flush is called after
// Wait, when that goroutine is done.
type lineWriter struct {
	buf  []byte
	line func(string)
}

func (w *lineWriter) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			w.buf = append(w.buf, p...)
			if len(w.buf) >= maxLine {
				w.Flush()
			}
			break
		}
		w.buf = append(w.buf, p[:i]...)
		w.Flush()
		p = p[i+1:]
	}
	return n, nil
}

// Flush hands on what is buffered as a line, if anything.
func (w *lineWriter) Flush() {
	if len(w.buf) == 0 {
		return
	}
	s := strings.ToValidUTF8(strings.TrimSuffix(string(w.buf), "\r"), "\uFFFD")
	w.buf = w.buf[:0]
	w.line(s)
}
