package main

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aios-go/aios/internal/config"
	"github.com/aios-go/aios/internal/telemetry/otlptest"
)

// With telemetry.otlp_endpoint set, aios serve sends each syscall's span to the
// collector; the last ones go out as the server stops, after the kernel has drained.
func TestServeExportsTraces(t *testing.T) {
	t.Chdir(t.TempDir())
	col := otlptest.Start()
	defer col.Close()
	addr := freeAddr(t)
	cfg, err := config.Load("", map[string]any{"server.addr": addr, "data_dir": t.TempDir(), "log.level": "error",
		"telemetry.otlp_endpoint": col.URL, "telemetry.service_name": "aios-serve-test"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- serve(ctx, cfg) }()

	base := "http://" + addr
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := http.Get(base + "/status")
		if err == nil {
			resp.Body.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("server never answered: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	resp, err := http.Post(base+"/query", "application/json", strings.NewReader(
		`{"agent_name":"tracer-agent","query_type":"llm","query_data":{"messages":[{"role":"user","content":"hi"}],"max_new_tokens":3}}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("query: %d", resp.StatusCode)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("serve returned %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("serve did not stop")
	}
	http.DefaultClient.CloseIdleConnections()

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
