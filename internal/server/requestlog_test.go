package server

import (
	"bufio"
	"context"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aios-go/aios/api"
	"github.com/aios-go/aios/internal/kernel"
	"github.com/aios-go/aios/internal/llm"
)

// logSink keeps the server's request lines for a test to read in order.
type logSink struct{ ch chan slog.Record }

func newLogSink() *logSink { return &logSink{ch: make(chan slog.Record, 64)} }

func (l *logSink) Enabled(context.Context, slog.Level) bool { return true }
func (l *logSink) Handle(_ context.Context, r slog.Record) error {
	if r.Message == "request" {
		l.ch <- r.Clone()
	}
	return nil
}
func (l *logSink) WithAttrs([]slog.Attr) slog.Handler { return l }
func (l *logSink) WithGroup(string) slog.Handler      { return l }

// logLine is one request line: its level and attributes as text.
type logLine struct {
	level slog.Level
	attrs map[string]string
}

// next waits for the next request line. The line is written after the handler returns,
// which may be just after the client has read the response.
func (l *logSink) next(t *testing.T) logLine {
	t.Helper()
	select {
	case r := <-l.ch:
		out := logLine{level: r.Level, attrs: map[string]string{}}
		r.Attrs(func(a slog.Attr) bool {
			out.attrs[a.Key] = a.Value.String()
			return true
		})
		return out
	case <-time.After(10 * time.Second):
		t.Fatal("no request line was logged")
		return logLine{}
	}
}

func (l logLine) check(t *testing.T, level slog.Level, want map[string]string) {
	t.Helper()
	if l.level != level {
		t.Errorf("level %v, want %v: %v", l.level, level, l.attrs)
	}
	for k, v := range want {
		if l.attrs[k] != v {
			t.Errorf("%s = %q, want %q: %v", k, l.attrs[k], v, l.attrs)
		}
	}
	for _, k := range []string{"bytes", "duration_ms"} {
		if _, ok := l.attrs[k]; !ok {
			t.Errorf("no %s: %v", k, l.attrs)
		}
	}
}

func positiveMs(t *testing.T, what, v string) float64 {
	t.Helper()
	f, err := strconv.ParseFloat(v, 64)
	if err != nil || f < 0 {
		t.Fatalf("%s = %q, want milliseconds", what, v)
	}
	return f
}

// Every request leaves one line: successes at info with their syscalls' times, the
// failures that used to leave none (400, 404, 413) at warn with their kind.
func TestRequestLogLines(t *testing.T) {
	sink := newLogSink()
	h := start(t, Options{MaxBodyBytes: 4096, Logger: slog.New(sink)})

	_, r := h.llmQuery(`{"messages":` + hello + `,"max_new_tokens":3}`)
	if r.StatusCode != 200 {
		t.Fatalf("query %+v", r)
	}
	l := sink.next(t)
	l.check(t, slog.LevelInfo, map[string]string{"method": "POST", "route": "/query", "agent": "tester",
		"session": "tester", "status": "200", "syscalls": "1"})
	positiveMs(t, "queue_ms", l.attrs["queue_ms"])
	if positiveMs(t, "exec_ms", l.attrs["exec_ms"]) == 0 || l.attrs["bytes"] == "0" {
		t.Fatalf("an LLM call took no time or wrote nothing: %v", l.attrs)
	}

	code, _, hdr := h.post("/v1/chat/completions", `{"model":"sim-test","messages":`+hello+`,"max_tokens":2}`,
		api.HeaderAgent, "bot", api.HeaderSession, "s9")
	if code != 200 {
		t.Fatalf("chat: %d", code)
	}
	sink.next(t).check(t, slog.LevelInfo, map[string]string{"route": "/v1/chat/completions", "agent": "bot", "session": "s9", "status": "200"})
	positiveMs(t, HeaderQueueMs, hdr.Get(HeaderQueueMs))
	if positiveMs(t, HeaderExecMs, hdr.Get(HeaderExecMs)) == 0 {
		t.Fatalf("headers %v", hdr)
	}

	for _, tc := range []struct {
		name, path, body string
		want             map[string]string
	}{
		{"no agent", "/query", `{"query_type":"llm","query_data":{}}`, map[string]string{"status": "400", "kind": "caller_bad_request", "agent": ""}},
		{"oversize", "/query", `{"agent_name":"` + strings.Repeat("a", 5000) + `"}`, map[string]string{"status": "413", "kind": "caller_too_large"}},
		{"unknown model", "/v1/chat/completions", `{"model":"gpt-9","messages":` + hello + `}`, map[string]string{"status": "404", "kind": "caller_not_found"}},
		{"no route", "/nowhere", `{}`, map[string]string{"status": "404", "route": "/", "path": "/nowhere"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h.post(tc.path, tc.body)
			l := sink.next(t)
			l.check(t, slog.LevelWarn, tc.want)
			if _, ok := l.attrs["syscalls"]; ok {
				t.Fatalf("a refused request made syscalls: %v", l.attrs)
			}
		})
	}
}

// A backend's rejection is a warning on both APIs: inside AIOS's HTTP 200, the kind comes
// from the syscall; on /v1, from the error body.
func TestRequestLogBackendRejection(t *testing.T) {
	core := &funcCore{gen: func(ctx context.Context, req *llm.Request, emit func(llm.Delta)) (*llm.Result, error) {
		return nil, api.Errorf(api.BackendUnavailable, "upstream went away")
	}}
	sink := newLogSink()
	h := start(t, Options{Logger: slog.New(sink)}, kernel.CoreConfig{Model: "m", Backend: "test", Core: core})
	if _, r := h.llmQuery(`{"messages":` + hello + `}`); r.StatusCode != 502 {
		t.Fatalf("%+v", r)
	}
	sink.next(t).check(t, slog.LevelWarn, map[string]string{"status": "200", "kind": "backend_unavailable", "syscalls": "1"})
	if code, _, _ := h.post("/v1/chat/completions", `{"model":"m","messages":`+hello+`}`); code != 502 {
		t.Fatalf("v1 status %d", code)
	}
	sink.next(t).check(t, slog.LevelWarn, map[string]string{"status": "502", "kind": "backend_unavailable", "agent": "anonymous"})
}

// A stream's headers leave before its syscall ends, so its timings come as trailers; and
// the request log's writer still flushes each event as it comes.
func TestRequestLogStream(t *testing.T) {
	release := make(chan struct{})
	core := &funcCore{gen: func(ctx context.Context, req *llm.Request, emit func(llm.Delta)) (*llm.Result, error) {
		emit(llm.Delta{Text: "first"})
		select {
		case <-release:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		emit(llm.Delta{Text: " second"})
		return &llm.Result{Text: "first second", FinishReason: "stop"}, nil
	}}
	sink := newLogSink()
	h := start(t, Options{Logger: slog.New(sink)}, kernel.CoreConfig{Model: "m", Backend: "test", Core: core})
	resp, err := http.Post(h.url+"/v1/chat/completions", "application/json",
		strings.NewReader(`{"model":"m","messages":`+hello+`,"stream":true}`))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.Header.Get(HeaderQueueMs) != "" {
		t.Fatalf("a stream's headers cannot know its queue time yet: %v", resp.Header)
	}
	// The first delta arrives while the core still holds the call: it was flushed.
	got := make(chan string, 1)
	br := bufio.NewReader(resp.Body)
	go func() {
		for {
			line, err := br.ReadString('\n')
			if err != nil || strings.Contains(line, "first") {
				got <- line
				return
			}
		}
	}()
	select {
	case line := <-got:
		if !strings.Contains(line, "first") {
			t.Fatalf("stream ended before its first delta: %q", line)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the first delta was not flushed while the call ran")
	}
	close(release)
	rest, _ := io.ReadAll(br)
	if !strings.Contains(string(rest), "[DONE]") {
		t.Fatalf("stream: %s", rest)
	}
	positiveMs(t, "trailer "+HeaderQueueMs, resp.Trailer.Get(HeaderQueueMs))
	if positiveMs(t, "trailer "+HeaderExecMs, resp.Trailer.Get(HeaderExecMs)) == 0 {
		t.Fatalf("trailers %v", resp.Trailer)
	}
	sink.next(t).check(t, slog.LevelInfo, map[string]string{"status": "200", "syscalls": "1"})
}
