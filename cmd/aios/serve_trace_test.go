package main

import (
	"net/http"
	"strings"
	"testing"

	"github.com/aios-go/aios/internal/config"
	"github.com/aios-go/aios/internal/telemetry/otlptest"
)

// With telemetry.otlp_endpoint set, aios serve sends each syscall's span to the
// collector; the last ones go out as the server stops, after the kernel has drained.
func TestServeExportsTraces(t *testing.T) {
	col := otlptest.Start()
	defer col.Close()
	base, stop := startServe(t, map[string]any{"telemetry.otlp_endpoint": col.URL, "telemetry.service_name": "aios-serve-test"})
	resp, err := http.Post(base+"/query", "application/json", strings.NewReader(
		`{"agent_name":"tracer-agent","query_type":"llm","query_data":{"messages":[{"role":"user","content":"hi"}],"max_new_tokens":3}}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("query: %d", resp.StatusCode)
	}
	stop()

	chats := col.Named("chat " + config.DefaultSimModel)
	if len(chats) != 1 {
		t.Fatalf("%d chat spans; received %d spans", len(chats), len(col.Spans()))
	}
	c := chats[0]
	if c.Service != "aios-serve-test" || otlptest.Str(c.Attributes, "gen_ai.agent.name") != "tracer-agent" ||
		otlptest.Str(c.Attributes, "gen_ai.provider.name") != "aios.sim" {
		t.Fatalf("chat span from %q: %v", c.Service, c.Attributes)
	}
	if len(col.Named("invoke_agent tracer-agent")) != 1 {
		t.Fatal("the program's root span was not sent at shutdown")
	}
}
