package sdk

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"strings"
)

// maxSSELine bounds one line of an event stream. A chat chunk is a few hundred bytes;
// the bound only stops a broken or hostile server from making the client buffer without
// end.
const maxSSELine = 4 << 20

// sseEvent is one dispatched server-sent event.
type sseEvent struct {
	Event string // "" when the stream named none ("message" in the spec's terms)
	Data  string
	ID    string
}

// sseDecoder reads server-sent events as the WHATWG HTML spec defines them ("Parsing an
// event stream"): lines end in CRLF, LF or a lone CR; a line starting with ':' is a
// comment; "data" lines of one event are joined with '\n'; a blank line dispatches the
// event; an event with no data is dropped; a trailing event not closed by a blank line
// is discarded at EOF. Servers differ in exactly these corners (keep-alive comments,
// CRLF from some proxies, JSON split over several data lines), so the decoder follows
// the spec rather than the common case.
type sseDecoder struct {
	sc    *bufio.Scanner
	first bool // no line read yet: a leading UTF-8 BOM is still to be skipped
	id    string
}

func newSSEDecoder(r io.Reader) *sseDecoder {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), maxSSELine)
	sc.Split(scanSSELines)
	return &sseDecoder{sc: sc, first: true}
}

// scanSSELines is a bufio.SplitFunc for the three line endings the spec allows. A CR at
// the end of the buffered data may be the first half of a CRLF, so it waits for one more
// byte before deciding, unless the input has ended.
func scanSSELines(data []byte, atEOF bool) (advance int, token []byte, err error) {
	if atEOF && len(data) == 0 {
		return 0, nil, nil
	}
	if i := bytes.IndexAny(data, "\r\n"); i >= 0 {
		if data[i] == '\n' {
			return i + 1, data[:i], nil
		}
		if i+1 < len(data) {
			if data[i+1] == '\n' {
				return i + 2, data[:i], nil
			}
			return i + 1, data[:i], nil
		}
		if atEOF {
			return i + 1, data[:i], nil
		}
		return 0, nil, nil
	}
	if atEOF {
		return len(data), data, nil
	}
	return 0, nil, nil
}

// Next returns the next event with data. It returns io.EOF when the stream ends cleanly
// (an unterminated last event is discarded, as the spec says), or the reader's error.
func (d *sseDecoder) Next() (sseEvent, error) {
	var (
		data    strings.Builder
		hasData bool
		event   string
	)
	for d.sc.Scan() {
		line := d.sc.Bytes()
		if d.first {
			d.first = false
			line = bytes.TrimPrefix(line, []byte("\xef\xbb\xbf"))
		}
		if len(line) == 0 {
			if !hasData {
				// The spec resets the event type on every blank line, dispatched or not.
				event = ""
				continue
			}
			return sseEvent{Event: event, Data: data.String(), ID: d.id}, nil
		}
		if line[0] == ':' {
			continue
		}
		field, value := line, []byte(nil)
		if i := bytes.IndexByte(line, ':'); i >= 0 {
			field, value = line[:i], line[i+1:]
			value = bytes.TrimPrefix(value, []byte(" "))
		}
		switch string(field) {
		case "data":
			if hasData {
				data.WriteByte('\n')
			}
			data.Write(value)
			hasData = true
		case "event":
			event = string(value)
		case "id":
			// An id containing NUL is ignored by the spec; the last event id otherwise
			// persists across events.
			if bytes.IndexByte(value, 0) < 0 {
				d.id = string(value)
			}
		}
		// "retry" and unknown fields are ignored: reconnection is the caller's choice.
	}
	if err := d.sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return sseEvent{}, errors.New("sdk: event stream line longer than 4 MiB")
		}
		return sseEvent{}, err
	}
	return sseEvent{}, io.EOF
}
