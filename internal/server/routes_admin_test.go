package server

import (
	"testing"

	"github.com/aios-go/aios/api"
	"github.com/aios-go/aios/internal/kernel"
	"github.com/aios-go/aios/internal/llm/openai"
	"github.com/aios-go/aios/internal/testfakes/fakeopenai"
)

// Calls through either API are charged to their agent and session, and the admin route
// reports it as the backend counted it.
func TestAdminUsage(t *testing.T) {
	h := start(t, Options{})
	_, r := h.llmQuery(`{"query_class":"llm","messages":` + hello + `,"max_new_tokens":7}`)
	if r.StatusCode != 200 {
		t.Fatalf("query: %+v", r)
	}
	code, body, _ := h.post("/v1/chat/completions", `{"model":"sim-test","messages":`+hello+`,"max_tokens":5}`,
		"X-AIOS-Agent", "bot", "X-AIOS-Session", "s9")
	if code != 200 {
		t.Fatalf("chat: %d %s", code, body)
	}

	var rep api.UsageReport
	h.get("/admin/usage", &rep)
	tester, bot := rep.Agents["tester"], rep.Agents["bot"]
	if tester.Calls != 1 || tester.CompletionTokens != 7 || tester.PromptTokens == 0 || bot.Calls != 1 || bot.CompletionTokens != 5 {
		t.Fatalf("agents %+v", rep.Agents)
	}
	if rep.Sessions["s9"] != bot || rep.Sessions["tester"] != tester || rep.Total.Calls != 2 || rep.Models["sim-test"] != rep.Total || rep.Since.IsZero() {
		t.Fatalf("report %+v", rep)
	}
	var only api.UsageReport
	h.get("/admin/usage?agent=bot", &only)
	if len(only.Agents) != 1 || only.Agents["bot"] != bot || only.Total != bot || only.Models["sim-test"] != bot {
		t.Fatalf("filtered %+v", only)
	}
	var session api.UsageReport
	h.get("/admin/usage?session=tester", &session)
	if session.Total != tester || len(session.Sessions) != 1 || len(session.Agents) != 1 || session.Agents["tester"] != tester {
		t.Fatalf("filtered by session %+v", session)
	}
}

func TestAdminModels(t *testing.T) {
	up := fakeopenai.New(fakeopenai.Options{Model: "served-model"})
	t.Cleanup(up.Close)
	core, err := openai.New(openai.Config{Name: "served-model", BaseURL: up.URL()})
	if err != nil {
		t.Fatal(err)
	}
	h := start(t, Options{}, kernel.CoreConfig{Model: "m", Backend: "vllm", Hostname: up.URL(), Core: core})
	var d api.DiscoveredModels
	h.get("/admin/models", &d)
	if len(d.Cores) != 1 || d.Cores[0].Error != "" || len(d.Cores[0].Models) != 1 || d.Cores[0].Models[0].ID != "served-model" || d.Cores[0].Hostname != up.URL() {
		t.Fatalf("discovered %+v", d)
	}
}
