package openai

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/aios-go/aios/internal/llm"
	"github.com/aios-go/aios/internal/testfakes/fakeopenai"
)

// vLLM's ignore_eos travels only when asked: OpenAI itself rejects unknown fields.
func TestIgnoreEOSOnlyWhenAsked(t *testing.T) {
	s := newFake(t, fakeopenai.Options{})
	c := newCore(t, Config{BaseURL: s.URL()})
	for _, ignore := range []bool{false, true} {
		if _, err := c.Generate(context.Background(), &llm.Request{Messages: user("x"), MaxTokens: 2, IgnoreEOS: ignore}, func(llm.Delta) {}); err != nil {
			t.Fatal(err)
		}
		if got := bytes.Contains(s.LastBody(), []byte(`"ignore_eos":true`)); got != ignore {
			t.Fatalf("IgnoreEOS=%v: body %s", ignore, s.LastBody())
		}
	}
}

// The retention hint goes only to servers configured to take it.
func TestKVTTLOnlyWhenConfigured(t *testing.T) {
	s := newFake(t, fakeopenai.Options{})
	for _, on := range []bool{false, true} {
		c := newCore(t, Config{BaseURL: s.URL(), Retention: on})
		if _, err := c.Generate(context.Background(), &llm.Request{Messages: user("x"), MaxTokens: 2, KVTTL: 1500 * time.Millisecond}, func(llm.Delta) {}); err != nil {
			t.Fatal(err)
		}
		if got := bytes.Contains(s.LastBody(), []byte(`"kv_ttl_ms":1500`)); got != on {
			t.Fatalf("Retention=%v: body %s", on, s.LastBody())
		}
	}
}
