package config

import (
	"strings"
	"testing"
)

func TestQuotasLoad(t *testing.T) {
	cfg, err := Load(writeFile(t, `
access:
  auth: true
  quotas:
    - {agent: alice, rpm: 60, max_concurrent: 2}
    - {tenant: acme, tokens_per_hour: 100000, tokens_per_day: 1000000, tpm: 20000}
    - {agent: team/bot}
`), nil)
	if err != nil {
		t.Fatal(err)
	}
	want := []Quota{
		{Agent: "alice", RPM: 60, MaxConcurrent: 2},
		{Tenant: "acme", TokensPerHour: 100000, TokensPerDay: 1000000, TPM: 20000},
		{Agent: "team/bot"},
	}
	if len(cfg.Access.Quotas) != len(want) {
		t.Fatalf("quotas %+v", cfg.Access.Quotas)
	}
	for i, q := range want {
		if cfg.Access.Quotas[i] != q {
			t.Errorf("quotas[%d] = %+v, want %+v", i, cfg.Access.Quotas[i], q)
		}
	}
	if k, n := cfg.Access.Quotas[1].Scope(); k != "tenant" || n != "acme" {
		t.Errorf("scope %s %s", k, n)
	}
}

// A quota that cannot be applied stops the load, with the entry and field at fault.
func TestQuotasRefused(t *testing.T) {
	for _, c := range []struct{ quotas, want string }{
		{`[{agent: alice, tenant: acme, rpm: 1}]`, "access.quotas[0]: give exactly one of agent or tenant"},
		{`[{rpm: 1}]`, "access.quotas[0]: give exactly one of agent or tenant"},
		{`[{agent: alice}, {agent: bob, rpm: -1}]`, "access.quotas[1] (agent bob): rpm -1 must not be negative"},
		{`[{tenant: acme, tokens_per_day: -5}]`, "access.quotas[0] (tenant acme): tokens_per_day -5 must not be negative"},
		{`[{agent: "al ice", rpm: 1}]`, `access.quotas[0] (agent al ice): agent name "al ice" may contain only`},
		{`[{tenant: "a/b", rpm: 1}]`, `access.quotas[0] (tenant a/b): tenant name "a/b" may contain only letters, digits and . _ - @ :`},
		{`[{agent: alice, rpms: 60}]`, `access.quotas[0]: unknown field "rpms"`},
		{`[{agent: alice, rpm: 1}, {agent: alice, tpm: 2}]`, "access.quotas[1] (agent alice): the same scope as access.quotas[0]"},
		{`[alice]`, "'access.quotas[0]' expected a map"},
	} {
		_, err := Load(writeFile(t, "access:\n  auth: true\n  quotas: "+c.quotas+"\n"), nil)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("quotas %s: err = %v, want %q", c.quotas, err, c.want)
		}
	}
	// Nothing would enforce them with authentication off.
	_, err := Load(writeFile(t, "access:\n  quotas: [{agent: alice, rpm: 1}]\n"), nil)
	if err == nil || !strings.Contains(err.Error(), "set access.auth: true, or remove access.quotas") {
		t.Errorf("quotas without auth: %v", err)
	}
}
