package mcp

import (
	"bytes"
	"io"
	"strings"
	"testing"
	"testing/iotest"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"
)

func TestRing(t *testing.T) {
	r := newRing(64)
	for i := range 20 {
		r.Write([]byte(strings.Repeat("x", i%5) + "line\n"))
	}
	r.Write([]byte("Error: cannot find module 'foo'\nexit\n"))
	if got := r.tail(2); got != "Error: cannot find module 'foo' | exit" {
		t.Fatalf("tail: %q", got)
	}
	if n, _ := r.Write(bytes.Repeat([]byte("y"), 100)); n != 100 {
		t.Fatalf("Write reported %d bytes", n)
	}
	if got := r.tail(5); got != strings.Repeat("y", 64) {
		t.Fatalf("tail after an oversized write: %q", got)
	}
}

// The HTTP sniffer must record a tools/list result however the body is chunked, and
// before the reader has the bytes that complete it.
func TestSniffBody(t *testing.T) {
	msg := `{"jsonrpc":"2.0","id":2,"result":{"tools":[{"name":"t","inputSchema":{"type":"object"},"annotations":{"readOnlyHint":false}}]}}`
	for _, tc := range []struct {
		name string
		sse  bool
		body string
	}{
		{"json", false, msg},
		{"sse", true, "event: message\r\nid: 1\r\ndata: " + msg + "\r\n\r\n"},
		{"sse split data", true, "data: " + msg[:strings.Index(msg, `"result"`)] + "\ndata: " + msg[strings.Index(msg, `"result"`):] + "\n\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tap := newHintTap()
			b := &sniffBody{ReadCloser: io.NopCloser(iotest.OneByteReader(strings.NewReader(tc.body))), tap: tap, sse: tc.sse}
			if _, err := io.ReadAll(b); err != nil {
				t.Fatal(err)
			}
			a := tap.annotations(&sdk.Tool{Name: "t"})
			if a.ReadOnlyHint == nil || *a.ReadOnlyHint || a.IdempotentHint != nil {
				t.Fatalf("annotations: %s", mustJSON(a))
			}
		})
	}
}

// Without the raw hints, a false bool from the SDK may have been "not said": only true
// is reported.
func TestHintsFallback(t *testing.T) {
	yes := true
	a := newHintTap().annotations(&sdk.Tool{Name: "t", Title: "T", Annotations: &sdk.ToolAnnotations{IdempotentHint: true, DestructiveHint: &yes}})
	if a.ReadOnlyHint != nil || a.IdempotentHint == nil || !*a.IdempotentHint || a.DestructiveHint == nil || a.OpenWorldHint != nil || a.Title != "T" {
		t.Fatalf("annotations: %s", mustJSON(a))
	}
}
