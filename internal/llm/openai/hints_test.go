package openai

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aios-go/aios/api"
	"github.com/aios-go/aios/internal/llm"
	"github.com/aios-go/aios/internal/llm/sim"
)

// simServe is aios sim serve on a loopback port, recording each request's path and body.
type simServe struct {
	srv  *sim.Server
	url  string
	mu   sync.Mutex
	seen []string // "path body"
}

func newSimServe(t *testing.T, offloadGiB float64) *simServe {
	t.Helper()
	srv, err := sim.NewServer(sim.Config{Profile: "test", Speed: 1000, KVOffloadGiB: offloadGiB})
	if err != nil {
		t.Fatal(err)
	}
	s := &simServe{srv: srv}
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		s.mu.Lock()
		s.seen = append(s.seen, r.URL.EscapedPath()+" "+string(b))
		s.mu.Unlock()
		r.Body = io.NopCloser(bytes.NewReader(b))
		srv.Handler().ServeHTTP(w, r)
	}))
	s.url = ts.URL
	t.Cleanup(func() {
		ts.Close()
		srv.Close()
	})
	return s
}

func (s *simServe) requests() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.seen...)
}

func (s *simServe) core(t *testing.T, cfg Config) (*Core, llm.Core) {
	t.Helper()
	cfg.Name, cfg.BaseURL = s.srv.Live().Model(), s.url
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c, c.WithHints()
}

// waitFor polls cond, as hints are sent in the background.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func longPrompt(n int) []api.Message {
	return []api.Message{{Role: "user", Content: api.Content(strings.Repeat("task ", n))}}
}

// With retention and offload, the core carries the kernel's swaps and ends over HTTP
// and the served engine acts on them: the session's blocks reach the CPU tier, and its
// context is demoted when it ends.
func TestSessionHintsReachSimServe(t *testing.T) {
	s := newSimServe(t, 1)
	_, hc := s.core(t, Config{Retention: true, Offload: true})
	ender, ok1 := hc.(llm.SessionEnder)
	swapper, ok2 := hc.(llm.SessionSwapper)
	if !ok1 || !ok2 {
		t.Fatalf("a core with retention and offload is not a SessionEnder (%v) and SessionSwapper (%v)", ok1, ok2)
	}
	bs := s.srv.Live().Profile().BlockSize
	res, err := hc.Generate(context.Background(), &llm.Request{Messages: longPrompt(4 * bs), MaxTokens: 3, Session: "agent/prog 1"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	blocks := int64(res.Usage.PromptTokens / bs)
	if blocks == 0 {
		t.Fatalf("test set-up: prompt of %d tokens fills no block", res.Usage.PromptTokens)
	}
	live := s.srv.Live()
	stored := live.Stats().OffloadStoredBlocks
	swapper.SwapSession("agent/prog 1", false)
	waitFor(t, "the swap out", func() bool { return live.Stats().OffloadStoredBlocks >= stored+blocks })
	swapper.SwapSession("agent/prog 1", true)
	ender.EndSession("agent/prog 1")
	waitFor(t, "the end", func() bool { return live.Stats().ForgottenBlocks == blocks })

	var paths []string
	for _, r := range s.requests() {
		path, body, _ := strings.Cut(r, " ")
		paths = append(paths, path)
		if path == "/v1/chat/completions" && !strings.Contains(body, `"kv_session":"agent/prog 1"`) {
			t.Errorf("the call did not name its session: %s", body)
		}
	}
	want := []string{"/v1/chat/completions", "/v1/kv/sessions/agent%2Fprog%201/swap", "/v1/kv/sessions/agent%2Fprog%201/swap", "/v1/kv/sessions/agent%2Fprog%201/end"}
	if strings.Join(paths, "\n") != strings.Join(want, "\n") {
		t.Errorf("requests, in order:\n%s\nwant\n%s", strings.Join(paths, "\n"), strings.Join(want, "\n"))
	}
}

// A model without kv_retention is served as vLLM is: no hint methods, no kv_session.
// With retention but no offload, the core ends sessions but cannot swap, so the
// kernel refuses working_set swap over it.
func TestNoHintsWithoutRetention(t *testing.T) {
	s := newSimServe(t, 1)
	c, hc := s.core(t, Config{})
	if hc != llm.Core(c) {
		t.Error("WithHints wrapped a core without retention")
	}
	if _, ok := hc.(llm.SessionEnder); ok {
		t.Error("a core without retention is a SessionEnder")
	}
	if _, err := hc.Generate(context.Background(), &llm.Request{Messages: longPrompt(8), MaxTokens: 2, Session: "p"}, nil); err != nil {
		t.Fatal(err)
	}
	for _, r := range s.requests() {
		if strings.Contains(r, "kv_") {
			t.Errorf("sent a KV hint without retention: %s", r)
		}
	}

	_, hc = s.core(t, Config{Retention: true})
	if _, ok := hc.(llm.SessionEnder); !ok {
		t.Error("a core with retention is not a SessionEnder")
	}
	if _, ok := hc.(llm.SessionSwapper); ok {
		t.Error("a core with retention but no offload is a SessionSwapper")
	}
	if _, err := New(Config{Name: "m", BaseURL: s.url, Offload: true}); err == nil {
		t.Error("offload without retention was accepted")
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// A hint the server refuses is logged and fails nothing; a session name the server
// would refuse is neither sent with the call (which would fail it) nor hinted.
func TestRefusedHintsAreLoggedNotFatal(t *testing.T) {
	s := newSimServe(t, 0) // no CPU tier: swaps get 409
	var logs syncBuffer
	_, hc := s.core(t, Config{Retention: true, Offload: true, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	hc.(llm.SessionSwapper).SwapSession("p", false)
	waitFor(t, "the refusal to be logged", func() bool { return strings.Contains(logs.String(), "session hint refused") })
	if l := logs.String(); !strings.Contains(l, "status=409") || !strings.Contains(l, "kv-offload-gib") {
		t.Errorf("log: %s", l)
	}

	long := strings.Repeat("s", maxHintSession+1)
	if _, err := hc.Generate(context.Background(), &llm.Request{Messages: longPrompt(8), MaxTokens: 2, Session: long}, nil); err != nil {
		t.Fatalf("a call with a long session name failed: %v", err)
	}
	hc.(llm.SessionEnder).EndSession(long)
	hc.(llm.SessionEnder).EndSession("a\nb")
	hc.(llm.SessionEnder).EndSession("")
	hc.(llm.SessionEnder).EndSession(".")
	hc.(llm.SessionEnder).EndSession("..")
	for _, r := range s.requests() {
		if strings.Contains(r, long) || strings.Contains(r, "/end") {
			t.Errorf("sent a session the server would refuse: %.80s", r)
		}
	}
}

// Hints queued when the core closes are dropped, and the workers stop (goleak checks).
func TestHintsStopOnClose(t *testing.T) {
	s := newSimServe(t, 1)
	c, hc := s.core(t, Config{Retention: true, Offload: true, Logger: slog.New(slog.DiscardHandler)})
	for i := 0; i < 3*hintQueue; i++ {
		hc.(llm.SessionSwapper).SwapSession("p", i%2 == 0)
	}
	c.Close()
	hc.(llm.SessionEnder).EndSession("p") // after Close: ignored
}
