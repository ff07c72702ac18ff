package sim

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"
)

func newTestLive(t *testing.T, cfg Config) *Live {
	t.Helper()
	l, err := NewLive(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

// fast runs the tiny test profile a thousand times faster than real time.
var fast = Config{Profile: "test", Speed: 1000}

var chat = []Message{{Role: "system", Content: "You are terse."}, {Role: "user", Content: "Tell me about caches."}}

func TestLiveGenerate(t *testing.T) {
	l := newTestLive(t, fast)
	var streamed strings.Builder
	res, err := l.Generate(context.Background(), GenRequest{Messages: chat}, func(s string) { streamed.WriteString(s) })
	if err != nil {
		t.Fatal(err)
	}
	if res.Text != streamed.String() {
		t.Errorf("streamed %q, result %q", streamed.String(), res.Text)
	}
	if n := len(strings.Fields(res.Text)); n != res.CompletionTokens || n == 0 {
		t.Errorf("%d words for %d completion tokens", n, res.CompletionTokens)
	}
	if res.FinishReason != "stop" {
		t.Errorf("finish reason %q, want stop", res.FinishReason)
	}
	want, _ := encodeChat(chat, nil, "", true)
	if res.PromptTokens != len(want) {
		t.Errorf("prompt tokens %d, want %d", res.PromptTokens, len(want))
	}
	if res.TTFT <= 0 || res.Latency < res.TTFT {
		t.Errorf("virtual times: ttft %v, latency %v", res.TTFT, res.Latency)
	}

	again, err := l.Generate(context.Background(), GenRequest{Messages: chat}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if again.Text != res.Text {
		t.Error("the same request generated different text")
	}
	if again.CachedTokens == 0 {
		t.Error("repeating a request found nothing in the prefix cache")
	}
	other, _ := l.Generate(context.Background(), GenRequest{Messages: chat, Seed: 5}, nil)
	if other.Text == res.Text {
		t.Error("a different seed generated the same text")
	}

	capped, _ := l.Generate(context.Background(), GenRequest{Messages: chat, MaxTokens: 3}, nil)
	if capped.CompletionTokens != 3 || capped.FinishReason != "length" || !strings.HasPrefix(res.Text, capped.Text) {
		t.Errorf("max_tokens 3: %d tokens, %q, text %q", capped.CompletionTokens, capped.FinishReason, capped.Text)
	}
	exact, _ := l.Generate(context.Background(), GenRequest{Messages: chat, MaxTokens: 700, IgnoreEOS: true}, nil)
	if exact.CompletionTokens != 700 || exact.FinishReason != "length" {
		t.Errorf("ignore_eos with 700: %d tokens, %q", exact.CompletionTokens, exact.FinishReason)
	}
}

// A generation interrupted mid-stream and resumed with the text it had produced joins to
// exactly the uninterrupted text.
func TestLiveContinuationJoins(t *testing.T) {
	// Slow enough that the cancel lands mid-generation.
	l := newTestLive(t, Config{Profile: "test", Speed: 5})
	req := GenRequest{Messages: chat, MaxTokens: 300}
	whole, err := l.Generate(context.Background(), req, nil)
	if err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	var got strings.Builder
	_, err = l.Generate(ctx, req, func(s string) {
		got.WriteString(s)
		if len(strings.Fields(got.String())) >= 5 {
			cancel()
		}
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("interrupted generation: %v", err)
	}
	prefix := got.String()
	k := len(strings.Fields(prefix))
	if k < 5 || k >= whole.CompletionTokens {
		t.Fatalf("interrupted after %d of %d tokens", k, whole.CompletionTokens)
	}

	rest, err := l.Generate(context.Background(), GenRequest{Messages: chat, MaxTokens: 300 - k, ContinueFinal: prefix}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if prefix+rest.Text != whole.Text {
		t.Errorf("joined text differs:\n whole  %q\n joined %q", whole.Text, prefix+rest.Text)
	}
	if rest.CompletionTokens+k != whole.CompletionTokens || rest.FinishReason != whole.FinishReason {
		t.Errorf("resumed %d + %d tokens (%s), whole %d (%s)", k, rest.CompletionTokens, rest.FinishReason, whole.CompletionTokens, whole.FinishReason)
	}

	// Resuming past the natural end generates nothing more.
	done, err := l.Generate(context.Background(), GenRequest{Messages: chat, ContinueFinal: whole.Text}, nil)
	if err != nil || done.CompletionTokens != 0 || done.FinishReason != "stop" {
		t.Errorf("continuing a finished message: %d tokens, %q, %v", done.CompletionTokens, done.FinishReason, err)
	}
}

func TestLiveToolCall(t *testing.T) {
	l := newTestLive(t, fast)
	tools := []Tool{
		{Name: "search", Parameters: json.RawMessage(`{"type":"object","properties":{"query":{"type":"string"}}}`)},
		{Name: "calc", Parameters: json.RawMessage(`{"type":"object","properties":{"x":{"type":"number"}}}`)},
	}
	res, err := l.Generate(context.Background(), GenRequest{Messages: chat, Tools: tools, ForceTool: "search"}, func(string) {
		t.Error("a tool call streamed text")
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.ToolCall == nil || res.ToolCall.Name != "search" || res.FinishReason != "tool_calls" {
		t.Fatalf("forced tool: %+v", res)
	}
	var args struct{ Query string }
	// The engine generates the arguments' tokens, punctuation and keys included.
	if err := json.Unmarshal([]byte(res.ToolCall.Arguments), &args); err != nil || args.Query == "" || CountTokens(res.ToolCall.Arguments) != res.CompletionTokens {
		t.Errorf("arguments %s (%v) for %d tokens", res.ToolCall.Arguments, err, res.CompletionTokens)
	}
	req, err := l.Generate(context.Background(), GenRequest{Messages: chat, Tools: tools, ToolChoice: "required"}, nil)
	if err != nil || req.ToolCall == nil {
		t.Errorf("required: %+v, %v", req, err)
	}
	auto, err := l.Generate(context.Background(), GenRequest{Messages: chat, Tools: tools, ToolChoice: "auto"}, nil)
	if err != nil || auto.ToolCall != nil || auto.Text == "" {
		t.Errorf("auto: %+v, %v", auto, err)
	}
	for _, bad := range []GenRequest{
		{Messages: chat, Tools: tools, ForceTool: "missing"},
		{Messages: chat, ToolChoice: "required"},
		{Messages: chat, Tools: tools, ToolChoice: "sometimes"},
	} {
		if _, err := l.Generate(context.Background(), bad, nil); !errors.Is(err, ErrInvalidRequest) {
			t.Errorf("%+v: %v, want ErrInvalidRequest", bad, err)
		}
	}
}

func TestLiveNaiveOutOfMemory(t *testing.T) {
	l := newTestLive(t, Config{Profile: "test", Mode: ModeNaive, Speed: 1000})
	_, err := l.Generate(context.Background(), GenRequest{Messages: chat, MaxTokens: 3000}, nil)
	if !errors.Is(err, ErrOutOfMemory) {
		t.Fatalf("3000 tokens into a 2048-token naive cache: %v", err)
	}
	if _, err := l.Generate(context.Background(), GenRequest{Messages: chat, MaxTokens: 100}, nil); err != nil {
		t.Errorf("a fitting request after the refusal: %v", err)
	}
}

// Cancelling a caller's context ends its request in the engine too.
func TestLiveCancelFreesEngine(t *testing.T) {
	l := newTestLive(t, Config{Profile: "llama3-8b-h100", Speed: 1})
	ctx, cancel := context.WithCancel(context.Background())
	_, err := l.Generate(ctx, GenRequest{Messages: chat, MaxTokens: 5000, IgnoreEOS: true}, func(string) { cancel() })
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v, want context.Canceled", err)
	}
	// Commands apply in order, so once a later request has finished the cancel has
	// been applied.
	if _, err := probe(l); err != nil {
		t.Fatal(err)
	}
	if s := l.Stats(); s.Running != 0 || s.Waiting != 0 {
		t.Errorf("after cancel: %d running, %d waiting", s.Running, s.Waiting)
	}
}

// probe runs a one-token request to completion.
func probe(l *Live) (GenResult, error) {
	return l.Generate(context.Background(), GenRequest{Prompt: "probe", MaxTokens: 1, IgnoreEOS: true}, nil)
}

func TestLiveCloseFailsInflight(t *testing.T) {
	l, err := NewLive(Config{Profile: "llama3-8b-h100", Speed: 1})
	if err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	errc := make(chan error, 1)
	go func() {
		_, err := l.Generate(context.Background(), GenRequest{Messages: chat, MaxTokens: 5000, IgnoreEOS: true}, func(string) {
			once.Do(func() { go l.Close() })
		})
		errc <- err
	}()
	if err := <-errc; !errors.Is(err, ErrClosed) {
		t.Errorf("in-flight request at close: %v, want ErrClosed", err)
	}
	l.Close()
	if _, err := probe(l); !errors.Is(err, ErrClosed) {
		t.Errorf("request after close: %v, want ErrClosed", err)
	}
}

// Many concurrent callers: every one ends, and the engine drains.
func TestLiveConcurrentCallers(t *testing.T) {
	l := newTestLive(t, fast)
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for i := range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx := context.Background()
			if i%7 == 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, time.Millisecond)
				defer cancel()
			}
			_, err := l.Generate(ctx, GenRequest{Messages: chat, Seed: uint64(i), MaxTokens: 100 + i}, nil)
			if err != nil && !errors.Is(err, context.DeadlineExceeded) {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if _, err := probe(l); err != nil {
		t.Fatal(err)
	}
	if s := l.Stats(); s.Running != 0 || s.Waiting != 0 {
		t.Errorf("after all callers: %d running, %d waiting", s.Running, s.Waiting)
	}
}

func TestNewLiveRejectsBadConfig(t *testing.T) {
	for _, cfg := range []Config{
		{Profile: "nope"},
		{Profile: "test", Mode: "paged"},
		{Profile: "test", Policy: "lifo"},
		{Profile: "test", Speed: -1},
	} {
		if l, err := NewLive(cfg); err == nil {
			l.Close()
			t.Errorf("%+v accepted", cfg)
		}
	}
}
