package fakeopenai

import (
	"encoding/json"
	"strings"
	"testing"
)

// Fill and Split serve every provider's fake: Gemini spells schema types in capitals.
func TestFillAndSplit(t *testing.T) {
	v := Fill(json.RawMessage(`{"type":"OBJECT","properties":{"n":{"type":"integer"},"tags":{"type":"array","items":{"type":"string"}},"kind":{"enum":["a","b"]}}}`), 7)
	m, ok := v.(map[string]any)
	if !ok || m["kind"] != "a" || m["n"] == nil || len(m["tags"].([]any)) != 1 {
		t.Fatalf("fill = %v", v)
	}
	s := "héllo wörld ünïcode"
	if strings.Join(Split(s, 3), "") != s {
		t.Fatal("split lost bytes")
	}
	for _, p := range Split(s, 3) {
		if !json.Valid([]byte(`"` + p + `"`)) {
			t.Fatalf("piece %q splits a UTF-8 sequence", p)
		}
	}
}
