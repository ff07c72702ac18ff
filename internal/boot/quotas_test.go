package boot

import (
	"context"
	"encoding/json"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aios-go/aios/api"
	"github.com/aios-go/aios/internal/access"
	"github.com/aios-go/aios/internal/config"
	"github.com/aios-go/aios/internal/kernel"
	"github.com/aios-go/aios/internal/sched"
)

// quotaConfig is a kernel with auth on, the calculator, and agent alice registered in
// its access store, as an admin would have done before writing her quota.
func quotaConfig(t *testing.T, qs ...config.Quota) config.Config {
	t.Helper()
	cfg := toolConfig(t, func(tc *config.Tools) { tc.Builtin = []string{"calculator"} })
	cfg.Access.Auth = true
	cfg.Access.Quotas = qs
	m, err := access.Open(context.Background(), access.Options{Store: access.StoreConfig{Path: filepath.Join(cfg.DataDir, "access.db")}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Directory.AddAgent(context.Background(), access.Agent{Name: "alice"}); err != nil {
		t.Fatal(err)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	return cfg
}

func stop(t *testing.T, sys *System) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = sys.Kernel.Shutdown(ctx)
	if err := sys.CloseAccess(); err != nil {
		t.Fatal(err)
	}
}

func calc(sys *System, agent string) error {
	_, _, err := sys.Kernel.Do(context.Background(), kernel.Call{Agent: agent, Module: sched.Tool, Op: "call",
		Resource: "calculator", Args: json.RawMessage(`{"expression": "2+3"}`)})
	return err
}

// A quota in the configuration is enforced: alice's second call in a minute with rpm 1
// is refused. A tenant it names is registered. Limits the admin API set later give way
// to the file's at the next start.
func TestConfigQuotasEnforced(t *testing.T) {
	cfg := quotaConfig(t, config.Quota{Agent: "alice", RPM: 1}, config.Quota{Tenant: "acme", MaxConcurrent: 3})
	sys, err := Build(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := calc(sys, "alice"); err != nil {
		t.Fatalf("alice's first call: %v", err)
	}
	err = calc(sys, "alice")
	if api.KindOf(err) != api.PolicyQuota {
		t.Fatalf("alice's second call within the minute: %v, want %s", err, api.PolicyQuota)
	}
	if err := calc(sys, "carol"); err != nil {
		t.Fatalf("an agent with no quota: %v", err)
	}
	m := sys.Access
	if l := m.Quotas.Limits(access.Scope{Kind: access.ScopeTenant, Name: "acme"}); l.MaxConcurrent != 3 {
		t.Errorf("tenant acme's limits %+v", l)
	}
	ts, _ := m.Directory.Tenants(context.Background())
	if !slices.ContainsFunc(ts, func(t access.Tenant) bool { return t.Name == "acme" }) {
		t.Errorf("tenant acme not registered: %+v", ts)
	}
	es, err := m.Audit.Query(context.Background(), access.AuditFilter{Who: "kernel", Action: "quota.set"})
	if err != nil || len(es) != 2 {
		t.Errorf("quota.set by kernel in the audit log: %d entries, %v", len(es), err)
	}
	alice := access.Scope{Kind: access.ScopeAgent, Name: "alice"}
	if err := m.Quotas.Set(context.Background(), alice, access.Limits{RPM: 100}); err != nil {
		t.Fatal(err)
	}
	stop(t, sys)

	sys, err = Build(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer stop(t, sys)
	if l := sys.Access.Quotas.Limits(alice); l != (access.Limits{RPM: 1}) {
		t.Errorf("after a restart alice's limits are %+v, want the file's rpm 1", l)
	}
}

// A quota on an agent nobody registered stops the start, naming the entry.
func TestConfigQuotaUnknownAgent(t *testing.T) {
	cfg := quotaConfig(t, config.Quota{Agent: "alice", RPM: 5}, config.Quota{Agent: "bob", RPM: 5})
	sys, err := Build(cfg, nil)
	if err == nil {
		stop(t, sys)
		t.Fatal("a quota on an unregistered agent was accepted")
	}
	if !strings.Contains(err.Error(), "access.quotas[1]: agent bob is not registered") || api.KindOf(err) != api.CallerNotFound {
		t.Fatalf("err = %v", err)
	}
}
