package server

import (
	"testing"

	"github.com/aios-go/aios/api"
)

// Two LLM calls of one session, under one system prompt, teach the kernel a two-step
// graph for that class: the first call was followed by the second (probability 1), and
// the second call's prompt grew by the first's answer and the new question.
func TestAdminGraphs(t *testing.T) {
	h := start(t, Options{})
	var empty api.ExecutionGraphs
	h.get("/admin/graphs", &empty)
	if empty.Classes == nil || len(empty.Classes) != 0 {
		t.Fatalf("before any call: %+v, want an empty list", empty)
	}
	sys := `{"role":"system","content":"You are a careful agent."}`
	for _, msgs := range []string{
		`[` + sys + `,{"role":"user","content":"hello"}]`,
		`[` + sys + `,{"role":"user","content":"hello"},{"role":"assistant","content":"hi there"},{"role":"user","content":"and now?"}]`,
	} {
		code, body, _ := h.post("/v1/chat/completions", `{"model":"sim-test","messages":`+msgs+`,"max_tokens":4}`,
			"X-AIOS-Agent", "bot", "X-AIOS-Session", "s1")
		if code != 200 {
			t.Fatalf("chat: %d %s", code, body)
		}
	}
	var g api.ExecutionGraphs
	h.get("/admin/graphs", &g)
	if len(g.Classes) != 1 {
		t.Fatalf("classes %+v, want one", g.Classes)
	}
	c := g.Classes[0]
	if len(c.Class) < 8 || c.Class[:7] != "system:" || len(c.States) != 2 {
		t.Fatalf("class %+v: want one named by its system prompt, two states", c)
	}
	first, second := c.States[0], c.States[1]
	if first.State != "llm#0@start" || first.Seen != 1 || first.Next["llm#1@start"] != 1 || first.DurationMs <= 0 {
		t.Errorf("first call's state %+v", first)
	}
	if second.State != "llm#1@start" || second.Seen != 0 || second.ContextGrowth <= 0 {
		t.Errorf("second call's state %+v", second)
	}
}
