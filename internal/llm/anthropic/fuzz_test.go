package anthropic

import (
	"encoding/json"
	"testing"

	"github.com/anthropics/anthropic-sdk-go/v2"
)

// Stream events come from the network: whatever order, indexes or shapes they arrive
// in, folding them must not panic, and every tool call it reports must have an index.
func FuzzStreamEvents(f *testing.F) {
	f.Add([]byte(`{"type":"content_block_start","index":0,"content_block":{"type":"tool_use","id":"t","name":"f","input":{}}}`),
		[]byte(`{"type":"content_block_delta","index":0,"delta":{"type":"input_json_delta","partial_json":"{\"a\":"}}`))
	f.Add([]byte(`{"type":"content_block_delta","index":7,"delta":{"type":"input_json_delta","partial_json":"x"}}`),
		[]byte(`{"type":"content_block_stop","index":-1}`))
	f.Add([]byte(`{"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"output_tokens":3}}`), []byte(`{}`))
	f.Fuzz(func(t *testing.T, a, b []byte) {
		st := &stream{callOf: map[int64]int{}, argsSeen: map[int]bool{}, skip: " "}
		for _, raw := range [][]byte{a, b, a} {
			var ev anthropic.MessageStreamEventUnion
			if json.Unmarshal(raw, &ev) != nil {
				continue
			}
			d, ok := st.apply(ev)
			for _, tc := range d.ToolCalls {
				if ok && (tc.Index == nil || *tc.Index < 0 || *tc.Index >= len(st.calls)) {
					t.Fatalf("tool call fragment with index %v of %d calls", tc.Index, len(st.calls))
				}
			}
		}
		_ = st.result()
	})
}

func FuzzErrorBody(f *testing.F) {
	f.Add([]byte(`{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}`))
	f.Add([]byte(`<html>bad gateway</html>`))
	f.Fuzz(func(t *testing.T, b []byte) {
		typ, msg := bodyError(b)
		if len(typ) > len(b) || len(msg) > len(b)+3 {
			t.Fatalf("bodyError made up text: %q %q from %d bytes", typ, msg, len(b))
		}
	})
}
