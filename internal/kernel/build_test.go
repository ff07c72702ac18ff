package kernel

import (
	"context"
	"strings"
	"testing"

	"github.com/aios-go/aios/internal/config"
	"github.com/aios-go/aios/internal/llm"
)

func TestBuildAppliesSchedulerConfig(t *testing.T) {
	cfg := config.Defaults()
	cfg.LLMs.Models = []config.Model{{Name: "s", Backend: "sim", Cores: 2, Speed: 100}}
	cfg.Scheduler.Policy = "plas"
	cfg.Scheduler.Routing = "cache-aware"
	cfg.Scheduler.WorkingSet.Enabled = true
	cfg.Scheduler.PLAS.Queues = 3
	k, err := Build(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer k.Shutdown(context.Background())
	if k.Policy() != "plas" || len(k.Status().LLMCores) != 2 {
		t.Fatalf("policy %q, cores %d", k.Policy(), len(k.Status().LLMCores))
	}
	res, _, err := k.CallLLM(context.Background(), LLMCall{Agent: "a", Program: "p", Request: userReq("hello")})
	if err != nil || res.Text == "" {
		t.Fatalf("%v %+v", err, res)
	}

	cfg.Scheduler.Routing = "random"
	if _, err := Build(cfg, nil); err == nil || !strings.Contains(err.Error(), "routing") {
		t.Fatalf("unknown routing: %v", err)
	}
	cfg.Scheduler.Routing = ""
	cfg.Scheduler.PLAS.QuantumRatio = 0.5
	if _, err := Build(cfg, nil); err == nil {
		t.Fatal("a quantum ratio below 1 was accepted")
	}
}

func userReq(s string) llm.Request { return llm.Request{Messages: userMsg(s), MaxTokens: 8} }
