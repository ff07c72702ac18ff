package gemini

import (
	"encoding/json"
	"testing"

	"google.golang.org/genai"
)

// Error details and function calls come from the network; reading them must not panic.
func FuzzUpstreamShapes(f *testing.F) {
	f.Add([]byte(`[{"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"3s"}]`), []byte(`{"functionCall":{"name":"f","args":{"a":1}},"thoughtSignature":"c2ln"}`))
	f.Add([]byte(`[{"@type":7}]`), []byte(`{"functionCall":{}}`))
	f.Fuzz(func(t *testing.T, details, part []byte) {
		var ds []map[string]any
		if json.Unmarshal(details, &ds) == nil {
			if d := retryDelay(ds); d < 0 {
				t.Fatalf("negative delay %v", d)
			}
			_ = reason(ds)
		}
		var p genai.Part
		if json.Unmarshal(part, &p) == nil && p.FunctionCall != nil {
			tc, err := toolCall(&p)
			if err == nil && (tc.ID == "" || !json.Valid([]byte(tc.Function.Arguments))) {
				t.Fatalf("tool call %+v", tc)
			}
		}
	})
}
