package sdk

import (
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/google/go-cmp/cmp"
)

func decodeAll(r io.Reader) ([]sseEvent, error) {
	d := newSSEDecoder(r)
	var out []sseEvent
	for {
		ev, err := d.Next()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		out = append(out, ev)
	}
}

func TestSSEDecoder(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want []sseEvent
	}{
		{"lf", "data: a\n\ndata: b\n\n", []sseEvent{{Data: "a"}, {Data: "b"}}},
		{"crlf", "data: a\r\n\r\ndata: b\r\n\r\n", []sseEvent{{Data: "a"}, {Data: "b"}}},
		{"lone cr", "data: a\r\rdata: b\r\r", []sseEvent{{Data: "a"}, {Data: "b"}}},
		{"mixed endings", "data: a\r\n\ndata: b\r\r\n", []sseEvent{{Data: "a"}, {Data: "b"}}},
		{"multi-line data joined with LF", "data: {\"a\":\ndata: 1}\n\n", []sseEvent{{Data: "{\"a\":\n1}"}}},
		{"comments and keep-alives skipped", ": ping\n\n:\ndata: x\n: mid-event comment\n\n", []sseEvent{{Data: "x"}}},
		{"no space after colon", "data:x\n\n", []sseEvent{{Data: "x"}}},
		{"only one leading space stripped", "data:  x \n\n", []sseEvent{{Data: " x "}}},
		{"field without colon is empty data", "data\n\n", []sseEvent{{Data: ""}}},
		{"empty data line", "data:\ndata:\n\n", []sseEvent{{Data: "\n"}}},
		{"event without data dropped", "event: ping\n\ndata: x\n\n", []sseEvent{{Data: "x"}}},
		{"event name", "event: error\ndata: boom\n\ndata: next\n\n", []sseEvent{{Event: "error", Data: "boom"}, {Data: "next"}}},
		{"id persists", "id: 7\ndata: a\n\ndata: b\n\n", []sseEvent{{Data: "a", ID: "7"}, {Data: "b", ID: "7"}}},
		{"id with NUL ignored", "id: 1\ndata: a\n\nid: 2\x00\ndata: b\n\n", []sseEvent{{Data: "a", ID: "1"}, {Data: "b", ID: "1"}}},
		{"unknown fields and retry ignored", "retry: 10\nfoo: bar\ndata: x\n\n", []sseEvent{{Data: "x"}}},
		{"BOM skipped", "\xef\xbb\xbfdata: x\n\n", []sseEvent{{Data: "x"}}},
		{"unterminated last event discarded", "data: a\n\ndata: b\n", []sseEvent{{Data: "a"}}},
		{"unterminated CR at EOF", "data: a\r\r", []sseEvent{{Data: "a"}}},
		{"done marker is plain data", "data: [DONE]\n\n", []sseEvent{{Data: "[DONE]"}}},
		{"empty", "", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// One byte at a time as well: a CRLF split across reads must not become two
			// line endings.
			for _, r := range []io.Reader{strings.NewReader(tt.in), iotest.OneByteReader(strings.NewReader(tt.in))} {
				got, err := decodeAll(r)
				if err != nil {
					t.Fatal(err)
				}
				if diff := cmp.Diff(tt.want, got); diff != "" {
					t.Errorf("events (-want +got):\n%s", diff)
				}
			}
		})
	}
}

func TestSSEDecoderLineTooLong(t *testing.T) {
	in := "data: " + strings.Repeat("x", maxSSELine+1) + "\n\n"
	_, err := decodeAll(strings.NewReader(in))
	if err == nil || !strings.Contains(err.Error(), "longer than") {
		t.Fatalf("err = %v, want a line-too-long error", err)
	}
}

func TestSSEDecoderReadError(t *testing.T) {
	boom := errors.New("connection reset")
	r := io.MultiReader(strings.NewReader("data: a\n\ndata: b\n"), iotest.ErrReader(boom))
	got, err := decodeAll(r)
	if !errors.Is(err, boom) {
		t.Fatalf("err = %v, want %v", err, boom)
	}
	if diff := cmp.Diff([]sseEvent{{Data: "a"}}, got); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
}

// referenceSSE is a second, deliberately naive reading of the spec over the whole input
// at once, for differential fuzzing of the streaming decoder.
func referenceSSE(in string) []sseEvent {
	in = strings.TrimPrefix(in, "\xef\xbb\xbf")
	var lines []string
	for {
		i := strings.IndexAny(in, "\r\n")
		if i < 0 {
			break // an unterminated last line cannot complete an event
		}
		lines = append(lines, in[:i])
		if strings.HasPrefix(in[i:], "\r\n") {
			in = in[i+2:]
		} else {
			in = in[i+1:]
		}
	}
	var (
		out       []sseEvent
		dataLines []string
		event, id string
	)
	for _, l := range lines {
		if l == "" {
			if dataLines != nil {
				out = append(out, sseEvent{Event: event, Data: strings.Join(dataLines, "\n"), ID: id})
			}
			dataLines, event = nil, ""
			continue
		}
		if strings.HasPrefix(l, ":") {
			continue
		}
		field, value, _ := strings.Cut(l, ":")
		value = strings.TrimPrefix(value, " ")
		switch field {
		case "data":
			dataLines = append(dataLines, value)
		case "event":
			event = value
		case "id":
			if !strings.Contains(value, "\x00") {
				id = value
			}
		}
	}
	return out
}

func FuzzSSE(f *testing.F) {
	for _, s := range []string{
		"data: a\n\n",
		"data: {\"a\":\ndata: 1}\r\n\r\n",
		": c\r\rdata:x\r\revent: e\nid: 1\ndata\n\n",
		"\xef\xbb\xbfdata: [DONE]\n\n",
		"data: a\r",
		"id: \x00\ndata: \n\n",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		want := referenceSSE(in)
		for _, r := range []io.Reader{strings.NewReader(in), iotest.OneByteReader(strings.NewReader(in)), iotest.HalfReader(strings.NewReader(in))} {
			got, err := decodeAll(r)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Fatalf("decoder disagrees with the reference on %q (-ref +got):\n%s", in, diff)
			}
		}
		// The stream layer on top must never panic, whatever the events hold.
		s := &Stream{dec: newSSEDecoder(strings.NewReader(in))}
		for s.Next() {
			_ = s.Chunk()
		}
	})
}
