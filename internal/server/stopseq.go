package server

import "strings"

// stopText applies stop sequences to a streamed answer, as an engine would: the text
// ends just before the first stop sequence it produces, and the sequence itself is not
// shown. llm.Request carries no stop sequences, so the backend does not know them; the
// kernel cuts the answer here, on every route that takes them (Messages'
// stop_sequences, completions' stop).
//
// Push takes each delta and returns what may be shown now: text that cannot be the start
// of a stop sequence. A tail that could be is held until the next delta settles it, or
// Flush at the end gives it back.
type stopText struct {
	seqs    []string
	pending string
	hit     string // the stop sequence found, once found
	done    bool
}

func newStopText(seqs []string) *stopText {
	var s []string
	for _, q := range seqs {
		if q != "" {
			s = append(s, q)
		}
	}
	return &stopText{seqs: s}
}

// Push adds text and returns what can be emitted of it.
func (s *stopText) Push(text string) string {
	if s.done {
		return ""
	}
	if len(s.seqs) == 0 {
		return text
	}
	s.pending += text
	// The stop sequence completed first wins, as an engine that checks after every token
	// finds it: the one that ends earliest, then the longer of two that end together.
	at, end := -1, -1
	for _, q := range s.seqs {
		i := strings.Index(s.pending, q)
		if i < 0 {
			continue
		}
		if e := i + len(q); at < 0 || e < end || (e == end && i < at) {
			at, end, s.hit = i, e, q
		}
	}
	if at >= 0 {
		out := s.pending[:at]
		s.pending, s.done = "", true
		return out
	}
	keep := 0
	for _, q := range s.seqs {
		for n := min(len(q)-1, len(s.pending)); n > keep; n-- {
			if strings.HasSuffix(s.pending, q[:n]) {
				keep = n
				break
			}
		}
	}
	out := s.pending[:len(s.pending)-keep]
	s.pending = s.pending[len(s.pending)-keep:]
	return out
}

// Flush returns the text held back, at the end of the answer.
func (s *stopText) Flush() string {
	out := s.pending
	s.pending = ""
	return out
}

// Hit is the stop sequence that ended the text, or "".
func (s *stopText) Hit() string { return s.hit }

// Stopped says a stop sequence was found: nothing the model produces after it counts.
func (s *stopText) Stopped() bool { return s.done }

// cut applies the stop sequences to a whole text.
func (s *stopText) cut(text string) string { return s.Push(text) + s.Flush() }
