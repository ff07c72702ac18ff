package server

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aios-go/aios/api"
	"github.com/aios-go/aios/internal/kernel"
	"github.com/aios-go/aios/internal/llm"
)

// Response headers with the kernel's share of a request's time, summed over the
// syscalls it made (which may overlap, as a request's tool calls do). A streamed
// response sends its headers before its syscalls end, so it carries them as trailers.
const (
	HeaderQueueMs = "X-AIOS-Queue-Ms"
	HeaderExecMs  = "X-AIOS-Exec-Ms"
)

// errorPeek is how much of an error response's body the log reads for its kind.
const errorPeek = 2 << 10

// logRequests logs one line per request: at info, or at warn when it failed (an HTTP
// status of 400 or more, or a syscall that ended in an error inside an AIOS 200). The
// request's context carries a reqStats, into which noteSyscall adds the syscalls the
// handler waited on.
func logRequests(log *slog.Logger, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		st := &reqStats{w: &statusWriter{w: w}}
		r = r.WithContext(context.WithValue(r.Context(), reqStatsKey{}, st))
		next.ServeHTTP(st.w, r)
		st.finish()
		st.log(log, r, time.Since(start))
	})
}

type reqStatsKey struct{}

// reqStats is what the log and the timing headers know of one request.
type reqStats struct {
	w *statusWriter

	mu       sync.Mutex
	syscalls []*kernel.Syscall
	sent     string // the timings that went out with the headers, if any
}

// noteSyscall adds sc, which the request waited on, to the request's timings and log
// line. The timing headers are set at once when the response has not started, so a
// response written after its syscalls carries them; a later note updates them.
func noteSyscall(ctx context.Context, sc *kernel.Syscall) {
	st, _ := ctx.Value(reqStatsKey{}).(*reqStats)
	if st == nil || sc == nil {
		return
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	st.syscalls = append(st.syscalls, sc)
	st.w.beforeHeader(func(h http.Header) {
		q, e, _ := st.sumsLocked()
		st.sent = ms(q) + " " + ms(e)
		h.Set(HeaderQueueMs, ms(q))
		h.Set(HeaderExecMs, ms(e))
	})
}

// notedTurn is a /v1 tool-loop turn whose model call is noted.
func notedTurn(do turn) turn {
	return func(ctx context.Context, call kernel.LLMCall) (*llm.Result, *kernel.Syscall, error) {
		res, sc, err := do(ctx, call)
		noteSyscall(ctx, sc)
		return res, sc, err
	}
}

// sumsLocked adds up the ended syscalls' queue and execution times and names the first
// error kind among them.
func (st *reqStats) sumsLocked() (queue, exec time.Duration, kind api.Kind) {
	for _, sc := range st.syscalls {
		if sc.State() == kernel.StatePending {
			continue // noted before it ended; counted once it has
		}
		t := sc.Timings()
		queue += t.Waiting
		exec += t.Turnaround - t.Waiting
		if _, err := sc.Result(); err != nil && kind == "" {
			kind = api.KindOf(err)
		}
	}
	return queue, exec, kind
}

// finish sends the timings the headers could not carry: as trailers when the response
// had started before the syscalls ended (a stream), else as headers.
func (st *reqStats) finish() {
	st.mu.Lock()
	defer st.mu.Unlock()
	if len(st.syscalls) == 0 {
		return
	}
	q, e, _ := st.sumsLocked()
	if ms(q)+" "+ms(e) == st.sent {
		return
	}
	if st.w.beforeHeader(func(h http.Header) {
		h.Set(HeaderQueueMs, ms(q))
		h.Set(HeaderExecMs, ms(e))
	}) {
		return
	}
	h := st.w.Header()
	h.Set(http.TrailerPrefix+HeaderQueueMs, ms(q))
	h.Set(http.TrailerPrefix+HeaderExecMs, ms(e))
}

func (st *reqStats) log(log *slog.Logger, r *http.Request, took time.Duration) {
	status, bytes, peek := st.w.result()
	st.mu.Lock()
	q, e, kind := st.sumsLocked()
	n := len(st.syscalls)
	agent, session := r.Header.Get(api.HeaderAgent), r.Header.Get(api.HeaderSession)
	if n > 0 {
		if agent == "" {
			agent = st.syscalls[0].Agent
		}
		if session == "" {
			session = st.syscalls[0].Program
		}
	}
	st.mu.Unlock()
	if status >= 400 {
		if k := errorKind(peek); k != "" {
			kind = k
		}
	}
	route := r.Pattern
	if _, p, ok := strings.Cut(route, " "); ok {
		route = p // the method has its own field
	}
	attrs := make([]slog.Attr, 0, 14)
	attrs = append(attrs,
		slog.String("method", r.Method), slog.String("route", route), slog.String("path", r.URL.Path),
		slog.String("agent", agent), slog.String("session", session), slog.Int("status", status))
	if kind != "" {
		attrs = append(attrs, slog.String("kind", string(kind)))
	}
	attrs = append(attrs, slog.Int64("bytes", bytes), slog.Float64("duration_ms", msf(took)))
	if n > 0 {
		attrs = append(attrs, slog.Int("syscalls", n), slog.Float64("queue_ms", msf(q)), slog.Float64("exec_ms", msf(e)))
	}
	level := slog.LevelInfo
	switch {
	case status >= 400 || kind != "":
		level = slog.LevelWarn
	case r.Pattern == "GET /metrics" || strings.HasPrefix(r.Pattern, "GET /ui"):
		// A scraper calls every few seconds, the dashboard and `aios top` as often; at
		// info their lines would drown the others.
		level = slog.LevelDebug
	}
	log.LogAttrs(context.WithoutCancel(r.Context()), level, "request", attrs...)
}

// errorKind reads the kind out of an error body: AIOS's {"kind"} or OpenAI's
// {"error":{"code"}}, which the server fills with the kind.
func errorKind(body []byte) api.Kind {
	var b struct {
		Kind  api.Kind `json:"kind"`
		Error struct {
			Code string `json:"code"`
		} `json:"error"`
	}
	if json.Unmarshal(body, &b) != nil {
		return ""
	}
	if b.Kind != "" {
		return b.Kind
	}
	return api.Kind(b.Error.Code)
}

// ms renders d in milliseconds, to the microsecond.
func ms(d time.Duration) string { return strconv.FormatFloat(msf(d), 'f', 3, 64) }

func msf(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// statusWriter records a response's status and size, and the start of an error body.
// It is an http.Flusher, as the event streams need. Writes may come from a stream's
// goroutines, hence the mutex.
//
// http.MaxBytesReader cannot see through it to tell the server to close the connection
// after a 413; the server then drains or drops the rest of the body itself.
type statusWriter struct {
	w  http.ResponseWriter
	mu sync.Mutex
	// status is 0 until the headers go out.
	status int
	bytes  int64
	peek   []byte
}

func (s *statusWriter) Header() http.Header { return s.w.Header() }

func (s *statusWriter) WriteHeader(code int) {
	s.mu.Lock()
	if s.status == 0 && code >= 200 {
		s.status = code
	}
	s.mu.Unlock()
	s.w.WriteHeader(code)
}

func (s *statusWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	if s.status == 0 {
		s.status = http.StatusOK
	}
	if s.status >= 400 && len(s.peek) < errorPeek {
		s.peek = append(s.peek, p[:min(len(p), errorPeek-len(s.peek))]...)
	}
	s.mu.Unlock()
	n, err := s.w.Write(p)
	s.mu.Lock()
	s.bytes += int64(n)
	s.mu.Unlock()
	return n, err
}

// Flush passes on to the connection; a writer that cannot flush makes it a no-op, as
// http.ResponseController would report.
func (s *statusWriter) Flush() {
	if f, ok := s.w.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap lets http.ResponseController reach the connection's writer.
func (s *statusWriter) Unwrap() http.ResponseWriter { return s.w }

// beforeHeader runs set on the headers if they have not gone out, and reports whether
// it did. A stream's headers go out from its core's goroutine, but only while a syscall
// runs, and notes come after syscalls end, so the two do not overlap.
func (s *statusWriter) beforeHeader(set func(http.Header)) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.status != 0 {
		return false
	}
	set(s.w.Header())
	return true
}

func (s *statusWriter) result() (status int, bytes int64, peek []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	status = s.status
	if status == 0 {
		status = http.StatusOK // nothing written: net/http answers 200
	}
	return status, s.bytes, s.peek
}
