package openai

import (
	"bytes"
	"context"
	"testing"

	"github.com/aios-go/aios/internal/llm"
	"github.com/aios-go/aios/internal/llm/fakeopenai"
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
