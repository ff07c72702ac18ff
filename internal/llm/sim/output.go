package sim

import "strings"

// Output is a pure function of (seed, index): token i of a request is outputWords[hash(seed,
// i)], rendered as the word and one space. Every word is a single token of lower-case
// letters, so an assistant text's word count equals its token count, and tokenizing the
// text back gives exactly the ids the engine generated. That is what makes two things
// work: a conversation's next turn hits the prefix cache on the previous turn's output
// blocks, and a resumed generation (continue_final_message) joins its prefix exactly.

var outputWords = [...]string{
	"the", "of", "and", "to", "in", "is", "that", "for", "it", "as",
	"with", "was", "on", "be", "by", "this", "are", "or", "at", "from",
	"an", "which", "not", "have", "has", "but", "were", "can", "all", "their",
	"will", "one", "there", "more", "its", "been", "also", "other", "when", "time",
	"new", "only", "into", "some", "these", "than", "first", "may", "then", "such",
	"two", "would", "they", "most", "used", "after", "many", "made", "where", "between",
	"over", "about", "system", "each", "state", "work", "under", "part", "use", "while",
	"both", "during", "world", "known", "through", "because", "same", "before", "year", "three",
	"well", "later", "early", "number", "people", "since", "high", "found", "data", "model",
	"order", "place", "long", "form", "case", "power", "group", "water", "city", "large",
	"small", "point", "given", "value", "result", "process", "light", "second", "level", "field",
	"common", "energy", "example", "general", "line", "memory", "agent", "tool", "answer", "query",
	"plan", "step", "task", "check", "next", "final", "report", "note",
}

var outputIDs = func() (ids [len(outputWords)]uint32) {
	for i, w := range outputWords {
		ids[i] = AppendTokens(nil, w)[0]
	}
	return ids
}()

// mix64 is splitmix64's finalizer: a cheap bijection whose output bits all depend on all
// input bits, so consecutive seeds and indices give unrelated words.
func mix64(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}

func outputIndex(seed uint64, i int) int {
	return int(mix64(seed+uint64(i)*0x9e3779b97f4a7c15) % uint64(len(outputWords)))
}

// OutputWord is the word of output token i of a request with this seed.
func OutputWord(seed uint64, i int) string { return outputWords[outputIndex(seed, i)] }

func outputToken(seed uint64, i int) uint32 { return outputIDs[outputIndex(seed, i)] }

// OutputToken is the id of output token i of sequence seed: what the tokenizer gives for
// OutputWord(seed, i). Simulations that build prompts as token ids use it to put a
// previous answer into the next prompt, as a chat client sends it back.
func OutputToken(seed uint64, i int) uint32 { return outputToken(seed, i) }

// OutputText renders output tokens [from, to) of a request with this seed.
func OutputText(seed uint64, from, to int) string {
	var b strings.Builder
	for i := from; i < to; i++ {
		b.WriteString(OutputWord(seed, i))
		b.WriteByte(' ')
	}
	return b.String()
}

// Natural lengths, when the request does not ask for ignore_eos: uniform in [8, 392], mean
// 200 tokens, near ShareGPT's mean assistant turn; tool calls are short.
const (
	minNatural     = 8
	spanNatural    = 385
	minToolTokens  = 8
	spanToolTokens = 24
)

// NaturalLength is where a request with this seed meets its end-of-sequence token,
// counted from the start of the assistant message (continuations included).
func NaturalLength(seed uint64) int {
	return minNatural + int(mix64(seed^0x454f53)%spanNatural)
}

// toolCallLength is how many words a tool call's string arguments share (see shapeOutput).
func toolCallLength(seed uint64) int {
	return minToolTokens + int(mix64(seed^0x746f6f6c)%spanToolTokens)
}

// EachToken calls f with each output token of text in order: a word and the space after
// it, as OutputWord renders them. Streams send one token an event, as vLLM does, so a
// client counting events counts tokens.
func EachToken(text string, f func(tok string)) {
	for len(text) > 0 {
		i := strings.IndexByte(text, ' ')
		if i < 0 {
			i = len(text) - 1
		}
		f(text[:i+1])
		text = text[i+1:]
	}
}
