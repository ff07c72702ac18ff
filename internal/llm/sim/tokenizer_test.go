package sim

import (
	"slices"
	"strings"
	"testing"
)

func TestTokenizerRules(t *testing.T) {
	cases := []struct {
		text string
		want []string // the pieces that become tokens
	}{
		{"Hello, world.", []string{"Hello", ",", "world", "."}},
		{"  spaced\tout\n", []string{"spaced", "out"}},
		{`{"a": 1234567}`, []string{`{"`, "a", `":`, "123", "456", "7", "}"}},
		{"internationalization", []string{"internat", "ionaliza", "tion"}},
		{"", nil},
		{"x9", []string{"x", "9"}},
		{"héllo", []string{"héllo"}},
	}
	for _, c := range cases {
		got := AppendTokens(nil, c.text)
		var want []uint32
		for _, p := range c.want {
			want = append(want, pieceID(p))
		}
		if !slices.Equal(got, want) {
			t.Errorf("AppendTokens(%q) = %v, want pieces %q = %v", c.text, got, c.want, want)
		}
		if n := CountTokens(c.text); n != len(want) {
			t.Errorf("CountTokens(%q) = %d, want %d", c.text, n, len(want))
		}
	}
}

func pieceID(p string) uint32 {
	h := uint32(2166136261)
	for i := 0; i < len(p); i++ {
		h = (h ^ uint32(p[i])) * 16777619
	}
	return foldID(h)
}

// Texts that share a prefix share a token prefix.
func TestTokenizerPrefixStable(t *testing.T) {
	sys := strings.Repeat("You are a careful agent; answer briefly. ", 50)
	a := AppendTokens(nil, sys+"What is the capital of France?")
	b := AppendTokens(nil, sys+"List three prime numbers.")
	common := AppendTokens(nil, sys)
	if !slices.Equal(a[:len(common)], common) || !slices.Equal(b[:len(common)], common) {
		t.Fatal("prompts sharing a text prefix do not share its tokens")
	}
	for _, id := range a {
		if id < firstWordID || id >= vocabSize {
			t.Fatalf("id %d outside the word range", id)
		}
	}
}

func TestOutputWordsAreSingleDistinctTokens(t *testing.T) {
	seen := map[uint32]string{}
	for _, w := range outputWords {
		got := AppendTokens(nil, w)
		if len(got) != 1 {
			t.Errorf("output word %q is %d tokens", w, len(got))
		}
		if other, dup := seen[got[0]]; dup {
			t.Errorf("output words %q and %q share id %d", w, other, got[0])
		}
		seen[got[0]] = w
	}
}

// Rendering output and tokenizing it back gives the engine's ids, one word per token.
func TestOutputRoundTrip(t *testing.T) {
	const seed = 42
	text := OutputText(seed, 0, 300)
	if n := len(strings.Fields(text)); n != 300 {
		t.Errorf("300 tokens rendered as %d words", n)
	}
	back := AppendTokens(nil, text)
	for i, id := range back {
		if id != outputToken(seed, i) {
			t.Fatalf("token %d: text gives id %d, engine generated %d", i, id, outputToken(seed, i))
		}
	}
	if OutputText(seed, 0, 10) == OutputText(seed+1, 0, 10) {
		t.Error("different seeds give the same text")
	}
}

func TestChatTemplateSharesPrefixWithNextTurn(t *testing.T) {
	msgs := []Message{{Role: "system", Content: "Be brief."}, {Role: "user", Content: "Hi there"}}
	first, base := encodeChat(msgs, nil, "", true)
	seed := outputSeed(first[:base], 0, "")
	reply := OutputText(seed, 0, 20)
	next, _ := encodeChat(append(msgs, Message{Role: "assistant", Content: reply}, Message{Role: "user", Content: "More"}), nil, "", true)
	// The next turn repeats the first prompt and every generated token.
	for i := range first {
		if next[i] != first[i] {
			t.Fatalf("next turn differs from the first prompt at %d", i)
		}
	}
	for i := range 20 {
		if next[len(first)+i] != outputToken(seed, i) {
			t.Fatalf("next turn differs from the generated output at %d", i)
		}
	}
}
