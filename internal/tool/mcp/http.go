package mcp

import (
	"bytes"
	"io"
	"mime"
	"net/http"
)

// Bodies are sniffed only up to this size; a bigger tool list keeps the SDK's view of
// the hints (see hintTap.annotations).
const maxSniff = 8 << 20

// roundTripper adds the configured headers to every request and shows tools/list
// responses to the hint tap. The streamable transport's connection cannot be wrapped
// like the stdio one: the SDK reaches it through an unexported interface.
type roundTripper struct {
	base    http.RoundTripper
	headers map[string]string
	tap     *hintTap
}

func (rt *roundTripper) RoundTrip(req *http.Request) (*http.Response, error) {
	req = req.Clone(req.Context())
	for k, v := range rt.headers {
		req.Header.Set(k, v)
	}
	listing := isToolsList(req)
	resp, err := rt.base.RoundTrip(req)
	if err != nil || !listing {
		return resp, err
	}
	mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	resp.Body = &sniffBody{ReadCloser: resp.Body, tap: rt.tap, sse: mt == "text/event-stream"}
	return resp, nil
}

// A tools/list request holds at most a cursor; anything bigger is another request, and
// is not read twice.
const maxListRequest = 4 << 10

func isToolsList(req *http.Request) bool {
	if req.Method != http.MethodPost || req.GetBody == nil || req.ContentLength > maxListRequest {
		return false
	}
	body, err := req.GetBody()
	if err != nil {
		return false
	}
	defer body.Close()
	b, err := io.ReadAll(io.LimitReader(body, maxListRequest))
	return err == nil && bytes.Contains(b, []byte(`"method":"tools/list"`))
}

// sniffBody hands each complete JSON-RPC message to the tap inside Read, before the SDK
// has the bytes that finish it, so the hints are recorded by the time ListTools returns.
type sniffBody struct {
	io.ReadCloser
	tap  *hintTap
	sse  bool
	buf  []byte // JSON: the body so far; SSE: the unfinished line
	data []byte // SSE: the data lines of the current event
	off  bool   // too big to sniff
}

func (b *sniffBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if !b.off {
		b.feed(p[:n], err == io.EOF)
	}
	return n, err
}

func (b *sniffBody) feed(p []byte, eof bool) {
	b.buf = append(b.buf, p...)
	if len(b.buf)+len(b.data) > maxSniff {
		b.off, b.buf, b.data = true, nil, nil
		return
	}
	if !b.sse {
		if eof {
			b.tap.message(b.buf)
		}
		return
	}
	for {
		i := bytes.IndexByte(b.buf, '\n')
		if i < 0 {
			return
		}
		line := bytes.TrimSuffix(b.buf[:i], []byte("\r"))
		b.buf = b.buf[i+1:]
		switch {
		case len(line) == 0:
			if len(b.data) > 0 {
				b.tap.message(b.data)
			}
			b.data = b.data[:0]
		case bytes.HasPrefix(line, []byte("data:")):
			if len(b.data) > 0 {
				b.data = append(b.data, '\n')
			}
			b.data = append(b.data, bytes.TrimPrefix(line[len("data:"):], []byte(" "))...)
		}
	}
}
