package tokenizer

import (
	"strings"
	"testing"

	"github.com/aios-go/aios/api"
)

func TestCountKnownStrings(t *testing.T) {
	// Counts from OpenAI's tokenizer for o200k_base.
	cases := []struct {
		s    string
		want int
	}{
		{"", 0},
		{"hello world", 2},
		{"The quick brown fox jumps over the lazy dog.", 10},
	}
	for _, tc := range cases {
		if got := Count(tc.s); got != tc.want {
			t.Errorf("Count(%q) = %d, want %d", tc.s, got, tc.want)
		}
	}
}

func TestCountCachedAgreesWithEncoded(t *testing.T) {
	long := strings.Repeat("agents share scarce capacity; ", 40)
	first := Count(long)
	if first < 100 || first > 400 {
		t.Fatalf("Count of %d bytes = %d", len(long), first)
	}
	if again := Count(long); again != first {
		t.Fatalf("cached count %d != encoded %d", again, first)
	}
	huge := strings.Repeat("x", maxEncode+4)
	if got := Count(huge); got != (len(huge)+3)/4 {
		t.Fatalf("huge text counted as %d", got)
	}
}

func TestPromptCountsFraming(t *testing.T) {
	msgs := []api.Message{{Role: "system", Content: "be brief"}, {Role: "user", Content: "hello world"}}
	got := Prompt(msgs, nil)
	want := perReply + 2*perMessage + Count("system") + Count("be brief") + Count("user") + Count("hello world")
	if got != want {
		t.Fatalf("Prompt = %d, want %d", got, want)
	}
	withTool := Prompt(msgs, []api.Tool{{Type: "function", Function: api.FunctionDef{Name: "get_weather", Parameters: []byte(`{"type":"object"}`)}}})
	if withTool <= got+perTool {
		t.Fatalf("a tool added only %d tokens", withTool-got)
	}
}

func BenchmarkCountCached(b *testing.B) {
	s := strings.Repeat("a long conversation turn that comes back every call ", 200)
	Count(s)
	b.SetBytes(int64(len(s)))
	for b.Loop() {
		Count(s)
	}
}
