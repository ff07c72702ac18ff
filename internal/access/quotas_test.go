package access

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aios-go/aios/api"
)

func TestQuotaBudgetExceededThenReset(t *testing.T) {
	forEachBackend(t, func(t *testing.T, cfg StoreConfig) {
		ctx := context.Background()
		clk := newFakeClock() // 09:26:53 UTC
		m := open(t, cfg, clk, "")
		must[Agent](t)(m.Directory.AddAgent(ctx, Agent{Name: "alice"}))
		p := must[Principal](t)(m.Local(ctx, "alice"))
		if err := m.Quotas.Set(ctx, Scope{ScopeAgent, "alice"}, Limits{TokensPerHour: 1000, TokensPerDay: 5000}); err != nil {
			t.Fatal(err)
		}
		if err := m.Quotas.Set(ctx, Scope{ScopeTenant, DefaultTenant}, Limits{TokensPerDay: 1_000_000}); err != nil {
			t.Fatal(err)
		}
		call := func(estimate, actual int64) error {
			d, err := m.Check(ctx, p, LLMGenerate, Model("m"), Context{InputTokens: estimate})
			if err == nil {
				d.Release(actual)
			}
			return err
		}
		for range 3 {
			if err := call(300, 300); err != nil {
				t.Fatal(err)
			}
		}
		// 900 used: a call of 300 more does not fit this hour.
		err := call(300, 0)
		ae := wantKind(t, err, api.PolicyQuota)
		if ae.RetryAfter != 33*time.Minute+7*time.Second {
			t.Fatalf("retry after %v, want 33m7s (to the top of the hour)", ae.RetryAfter)
		}
		if !strings.Contains(ae.Message, "agent alice has used 900 of its 1000 tokens this hour") {
			t.Fatalf("message %q", ae.Message)
		}
		if err := call(100, 100); err != nil {
			t.Fatalf("a call that fits: %v", err)
		}
		u := m.Quotas.Usage(p)
		if u[0].Scope != (Scope{ScopeAgent, "alice"}) || u[0].HourUsed != 1000 || u[0].DayUsed != 1000 || u[0].InFlight != 0 {
			t.Fatalf("usage %+v", u[0])
		}
		if u[1].Scope != (Scope{ScopeTenant, DefaultTenant}) || u[1].HourUsed != 1000 {
			t.Fatalf("tenant usage %+v", u[1])
		}

		// The hour ends: the hour's budget renews, the day's does not.
		clk.Advance(33*time.Minute + 7*time.Second)
		for range 4 {
			if err := call(1000, 1000); err != nil {
				t.Fatalf("next hours: %v", err)
			}
			clk.Advance(time.Hour)
		}
		ae = wantKind(t, call(1, 0), api.PolicyQuota)
		if !strings.Contains(ae.Message, "5000 tokens this day") {
			t.Fatalf("day budget: %v", ae)
		}
		// An admin resets it: the budget starts over.
		if err := m.Quotas.Reset(ctx, Scope{ScopeAgent, "alice"}); err != nil {
			t.Fatal(err)
		}
		if err := call(1000, 1000); err != nil {
			t.Fatalf("after reset: %v", err)
		}
		if u := m.Quotas.UsageOf(Scope{ScopeAgent, "alice"}); u.DayUsed != 1000 || u.HourUsed != 1000 {
			t.Fatalf("usage after reset %+v", u)
		}
		// A call larger than the whole budget is told so, with no retry time.
		ae = wantKind(t, call(2000, 0), api.PolicyQuota)
		if ae.RetryAfter != 0 || !strings.Contains(ae.Message, "more than the whole budget") {
			t.Fatalf("too large: %+v", ae)
		}
		// Refusals and the reset are in the audit log.
		if es := must[[]Entry](t)(m.Audit.Query(ctx, AuditFilter{Action: "llm.generate", Decision: "quota"})); len(es) != 3 {
			t.Fatalf("%d quota refusals recorded", len(es))
		}
		if es := must[[]Entry](t)(m.Audit.Query(ctx, AuditFilter{Action: "quota.reset"})); len(es) != 1 {
			t.Fatal("reset not recorded")
		}

		// Usage survives a restart (through Close's flush).
		if err := m.Close(); err != nil {
			t.Fatal(err)
		}
		m2, err := Open(ctx, Options{Store: cfg, Clock: clk})
		if err != nil {
			t.Fatal(err)
		}
		*m = *m2 // the cleanup closes this one
		if u := m.Quotas.UsageOf(Scope{ScopeAgent, "alice"}); u.DayUsed != 1000 || u.Limits.TokensPerHour != 1000 {
			t.Fatalf("after reopening %+v", u)
		}
	})
}

func TestQuotaRates(t *testing.T) {
	ctx := context.Background()
	m, clk := sqliteManager(t)
	p := Principal{Kind: KindAgent, Name: "alice", Tenant: DefaultTenant}
	if err := m.Quotas.Set(ctx, Scope{ScopeAgent, "alice"}, Limits{RPM: 6, TPM: 600}); err != nil {
		t.Fatal(err)
	}
	// RPM: six at once, then one every ten seconds.
	for i := range 6 {
		rel, err := m.Quotas.Admit(p, StorageRead, 0)
		if err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
		rel(0)
	}
	_, err := m.Quotas.Admit(p, StorageRead, 0)
	if ae := wantKind(t, err, api.PolicyQuota); ae.RetryAfter != 10*time.Second || !strings.Contains(ae.Message, "6 requests per minute") {
		t.Fatalf("rpm: %+v", ae)
	}
	clk.Advance(10 * time.Second)
	rel := must[Release](t)(m.Quotas.Admit(p, LLMGenerate, 100))
	// TPM: what a call used is charged when it ends, and the next waits for it.
	rel(700) // 600 in a minute, 700 used: 100 in debt
	_, err = m.Quotas.Admit(p, LLMGenerate, 60)
	if ae := wantKind(t, err, api.PolicyQuota); ae.RetryAfter != 16*time.Second || !strings.Contains(ae.Message, "600 tokens per minute") {
		// 160 tokens missing at 10 per second
		t.Fatalf("tpm: %+v", ae)
	}
	clk.Advance(16 * time.Second)
	must[Release](t)(m.Quotas.Admit(p, LLMGenerate, 60))(60)
}

func TestQuotaConcurrencyAndTenant(t *testing.T) {
	ctx := context.Background()
	m, _ := sqliteManager(t)
	must[Tenant](t)(m.Directory.AddTenant(ctx, "acme"))
	a := Principal{Kind: KindAgent, Name: "a", Tenant: "acme"}
	b := Principal{Kind: KindAgent, Name: "b", Tenant: "acme"}
	if err := m.Quotas.Set(ctx, Scope{ScopeAgent, "a"}, Limits{MaxConcurrent: 2}); err != nil {
		t.Fatal(err)
	}
	if err := m.Quotas.Set(ctx, Scope{ScopeTenant, "acme"}, Limits{MaxConcurrent: 3}); err != nil {
		t.Fatal(err)
	}
	r1 := must[Release](t)(m.Quotas.Admit(a, ToolCall, 0))
	r2 := must[Release](t)(m.Quotas.Admit(a, ToolCall, 0))
	_, err := m.Quotas.Admit(a, ToolCall, 0)
	if ae := wantKind(t, err, api.PolicyQuota); ae.RetryAfter <= 0 || !strings.Contains(ae.Message, "agent a has 2 syscalls in flight") {
		t.Fatalf("agent slots: %+v", ae)
	}
	r3 := must[Release](t)(m.Quotas.Admit(b, ToolCall, 0))
	_, err = m.Quotas.Admit(b, ToolCall, 0)
	if ae := wantKind(t, err, api.PolicyQuota); !strings.Contains(ae.Message, "tenant acme has 3 syscalls in flight") {
		t.Fatalf("tenant slots: %+v", ae)
	}
	r1(0)
	r1(0) // a second release gives nothing back twice
	if u := m.Quotas.UsageOf(Scope{ScopeTenant, "acme"}); u.InFlight != 2 {
		t.Fatalf("in flight %d after one release", u.InFlight)
	}
	r4 := must[Release](t)(m.Quotas.Admit(b, ToolCall, 0))
	for _, r := range []Release{r2, r3, r4} {
		r(0)
	}
	// Admins have no quotas.
	for range 10 {
		must[Release](t)(m.Quotas.Admit(Principal{Kind: KindAdmin, Name: "ops"}, AdminRead, 0))
	}
	if got := m.Quotas.Scopes(); len(got) != 2 || got[0] != (Scope{ScopeAgent, "a"}) {
		t.Fatalf("scopes %v", got)
	}
	// Agents without a quota are not counted, however many names callers invent.
	for i := range 100 {
		must[Release](t)(m.Quotas.Admit(Principal{Kind: KindAgent, Name: fmt.Sprint("x", i)}, ToolCall, 10))(10)
	}
	if len(m.Quotas.scopes) != 2 {
		t.Fatalf("%d scopes tracked", len(m.Quotas.scopes))
	}
	if err := m.Quotas.Reset(ctx, Scope{ScopeAgent, "x1"}); kindOf(err) != api.CallerNotFound {
		t.Fatalf("reset without a quota: %v", err)
	}
	if err := m.Quotas.Set(ctx, Scope{"team", "x"}, Limits{}); kindOf(err) != api.CallerBadRequest {
		t.Fatal(err)
	}
	if err := m.Quotas.Set(ctx, Scope{ScopeAgent, "x"}, Limits{RPM: -1}); kindOf(err) != api.CallerBadRequest {
		t.Fatal(err)
	}
}

// Estimates of calls in flight count against the budget until they end.
func TestQuotaReservations(t *testing.T) {
	ctx := context.Background()
	m := open(t, StoreConfig{Path: filepath.Join(t.TempDir(), "a.db")}, newFakeClock(), "")
	p := Principal{Kind: KindAgent, Name: "a", Tenant: DefaultTenant}
	if err := m.Quotas.Set(ctx, Scope{ScopeAgent, "a"}, Limits{TokensPerHour: 1000}); err != nil {
		t.Fatal(err)
	}
	r1 := must[Release](t)(m.Quotas.Admit(p, LLMGenerate, 600))
	if _, err := m.Quotas.Admit(p, LLMGenerate, 600); kindOf(err) != api.PolicyQuota {
		t.Fatalf("two estimates over the budget: %v", err)
	}
	r1(100) // used far less than estimated
	must[Release](t)(m.Quotas.Admit(p, LLMGenerate, 600))(0)
	if u := m.Quotas.UsageOf(Scope{ScopeAgent, "a"}); u.HourUsed != 100 || u.HourReserved != 0 {
		t.Fatalf("usage %+v", u)
	}
}
