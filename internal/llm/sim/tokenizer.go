package sim

// The tokenizer stands in for Llama 3's BPE. What the simulation needs from a tokenizer is
// not its vocabulary but three properties: the same text always gives the same ids, texts
// that share a prefix share a token prefix (so prefix caching hits where it would hit on
// a real engine), and counts land near a real tokenizer's for ordinary text. Rules:
//
//   - whitespace separates tokens and is not itself a token;
//   - a run of ASCII punctuation is cut into tokens of at most 2 bytes (`{"`, `":`, `.`);
//   - a run of digits is cut into tokens of at most 3 digits, as Llama 3 does;
//   - any other run (letters, non-ASCII) is cut into tokens of at most 8 bytes, so a long
//     unbroken string costs tokens in proportion to its length;
//   - a token's id is its FNV-1a hash folded into the word range of a 128,256-entry vocab.
//
// Ids below firstWordID are the chat template's special tokens.

const (
	vocabSize   = 128256
	firstWordID = 256

	tokBOS         uint32 = 1 // <|begin_of_text|>
	tokStartHeader uint32 = 2 // <|start_header_id|>
	tokEndHeader   uint32 = 3 // <|end_header_id|>
	tokEOT         uint32 = 4 // <|eot_id|>
	tokToolCall    uint32 = 5 // <|python_tag|>: an assistant turn's tool call follows

	maxWordPiece  = 8
	maxDigitPiece = 3
	maxPunctPiece = 2
)

const (
	clsSpace = iota
	clsPunct
	clsDigit
	clsWord
)

var byteClass = func() (t [256]uint8) {
	for i := range t {
		t[i] = clsWord
	}
	for _, c := range " \t\n\r\v\f" {
		t[c] = clsSpace
	}
	for _, c := range "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~" {
		t[c] = clsPunct
	}
	for c := '0'; c <= '9'; c++ {
		t[c] = clsDigit
	}
	return t
}()

var pieceLimit = [4]int{clsPunct: maxPunctPiece, clsDigit: maxDigitPiece, clsWord: maxWordPiece}

// AppendTokens appends the token ids of text to dst.
func AppendTokens(dst []uint32, text string) []uint32 {
	n := len(text)
	for i := 0; i < n; {
		c := byteClass[text[i]]
		if c == clsSpace {
			i++
			continue
		}
		limit := pieceLimit[c]
		h := uint32(2166136261)
		j := i
		for j < n && j-i < limit && byteClass[text[j]] == c {
			h = (h ^ uint32(text[j])) * 16777619
			j++
		}
		dst = append(dst, foldID(h))
		i = j
	}
	return dst
}

// CountTokens is len(AppendTokens(nil, text)) without the slice.
func CountTokens(text string) int {
	count := 0
	n := len(text)
	for i := 0; i < n; {
		c := byteClass[text[i]]
		if c == clsSpace {
			i++
			continue
		}
		limit := pieceLimit[c]
		j := i
		for j < n && j-i < limit && byteClass[text[j]] == c {
			j++
		}
		count++
		i = j
	}
	return count
}

func foldID(h uint32) uint32 {
	return firstWordID + h%(vocabSize-firstWordID)
}
