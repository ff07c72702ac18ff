package config

import (
	"strings"
	"testing"
	"time"
)

func TestSLOLoad(t *testing.T) {
	cfg, err := Load(writeFile(t, `
access:
  auth: true
scheduler:
  policy: slo
  slo:
    - {agent: alice, ttft: 2s}
    - {tenant: acme, tct: 5m, ttft: 10s}
`), nil)
	if err != nil {
		t.Fatal(err)
	}
	want := []SLO{{Agent: "alice", TTFT: 2 * time.Second}, {Tenant: "acme", TCT: 5 * time.Minute, TTFT: 10 * time.Second}}
	if len(cfg.Scheduler.SLO) != len(want) {
		t.Fatalf("slo %+v", cfg.Scheduler.SLO)
	}
	for i, o := range want {
		if cfg.Scheduler.SLO[i] != o {
			t.Errorf("slo[%d] = %+v, want %+v", i, cfg.Scheduler.SLO[i], o)
		}
	}
	// The llm module's own policy counts.
	if _, err := Load(writeFile(t, "scheduler:\n  modules: {llm: {policy: slo}}\n  slo: [{agent: a, tct: 1m}]\n"), nil); err != nil {
		t.Errorf("slo as the llm module's policy: %v", err)
	}
}

// Objectives that cannot work stop the load, naming the entry at fault.
func TestSLORefused(t *testing.T) {
	for _, c := range []struct{ head, slo, want string }{
		{"policy: slo", `[{agent: a, tenant: t, tct: 1m}]`, "scheduler.slo[0]: give exactly one of agent or tenant"},
		{"policy: slo", `[{agent: a}]`, "scheduler.slo[0] (agent a): set tct, ttft or both"},
		{"policy: slo", `[{agent: a, tct: -1m}]`, "scheduler.slo[0] (agent a): tct -1m0s and ttft 0s must be positive durations"},
		{"policy: slo", `[{agent: a, ttft: 1s}, {agent: b, ttfts: 1s}]`, `scheduler.slo[1]: unknown field "ttfts"`},
		{"policy: slo", `[{agent: a, ttft: 1s}, {agent: a, tct: 1m}]`, "scheduler.slo[1] (agent a): the same scope as scheduler.slo[0]"},
		{"policy: slo", `[{tenant: acme, tct: 1m}]`, "scheduler.slo[0] (tenant acme): a tenant's agents are known to the access manager, which is off"},
		{"policy: slo", `[{agent: "a b", tct: 1m}]`, `scheduler.slo[0] (agent a b): agent name "a b" may contain only`},
		{"policy: fair", `[{agent: a, tct: 1m}]`, `only the slo policy orders by, and the LLM policy is "fair"`},
		{"policy: slo", `[{agent: a, tct: soon}]`, "scheduler.slo"},
	} {
		_, err := Load(writeFile(t, "scheduler:\n  "+c.head+"\n  slo: "+c.slo+"\n"), nil)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("slo %s: err = %v, want %q", c.slo, err, c.want)
		}
	}
}
