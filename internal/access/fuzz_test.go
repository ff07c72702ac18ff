package access

import (
	"context"
	"errors"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzAuthenticate: arbitrary Authorization and x-api-key values never panic, and never
// authenticate unless they carry a live key, as the principal that key belongs to.
func FuzzAuthenticate(f *testing.F) {
	ctx := context.Background()
	m, err := Open(ctx, Options{Store: StoreConfig{Path: filepath.Join(f.TempDir(), "a.db")}, Clock: newFakeClock()})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { m.Close() })
	if _, err := m.Directory.AddAgent(ctx, Agent{Name: "alice"}); err != nil {
		f.Fatal(err)
	}
	agentKey, _, _ := m.Keys.Issue(ctx, KindAgent, "alice")
	adminKey, _, _ := m.Keys.Issue(ctx, KindAdmin, "ops")
	revoked, rinfo, _ := m.Keys.Issue(ctx, KindAgent, "alice")
	if err := m.Keys.Revoke(ctx, rinfo.ID); err != nil {
		f.Fatal(err)
	}
	live := map[string]Principal{agentKey: {Kind: KindAgent, Name: "alice"}, adminKey: {Kind: KindAdmin, Name: "ops"}}

	for _, k := range []string{agentKey, adminKey, revoked} {
		f.Add("Bearer "+k, "")
		f.Add("", k)
		f.Add("Bearer "+k, k)
		f.Add("bearer "+k[:len(k)-1], "")
		f.Add("Bearer "+strings.ToUpper(k), "")
		f.Add("Bearer "+k+"x", "")
		f.Add("Bearer "+strings.Replace(k, "_agent_", "_admin_", 1), "")
	}
	f.Add("", "")
	f.Add("Bearer", "aios_")
	f.Add("Basic dXNlcjpwYXNz", "\x00\xff")
	f.Add("Bearer aios_agent_0000000000000000_"+strings.Repeat("0", 43), "")

	f.Fuzz(func(t *testing.T, auth, xkey string) {
		h := http.Header{}
		if auth != "" {
			h["Authorization"] = []string{auth}
		}
		if xkey != "" {
			h["X-Api-Key"] = []string{xkey}
		}
		p, err := m.Authenticate(ctx, h)
		if err != nil {
			if kindOf(err) != "caller_unauthorized" {
				t.Fatalf("err = %v, want caller_unauthorized", err)
			}
			return
		}
		key, kerr := KeyFromHeaders(h)
		want, ok := live[key]
		if kerr != nil || !ok {
			t.Fatalf("authenticated as %v without a live key (headers %q %q)", p, auth, xkey)
		}
		if p.Kind != want.Kind || p.Name != want.Name {
			t.Fatalf("authenticated as %v with the key of %v", p, want)
		}
	})
}

// FuzzPolicyText: arbitrary policy text never panics; it is either compiled or refused
// with a PolicyError; and nothing an operator writes opens one tenant's namespace to
// another tenant's agent, or lets an agent act as an admin.
func FuzzPolicyText(f *testing.F) {
	f.Add(string(basePolicies))
	for _, s := range []string{
		`permit (principal, action, resource);`,
		`forbid (principal in Group::"acme/research", action in Action::"storage", resource) when { context.path like "/secret/*" };`,
		`@ask("why") permit (principal, action == Action::"tool.call", resource) when { context.annotations has destructiveHint };`,
		`@noask("x") permit (principal, action, resource is Namespace) when { resource.owner == principal };`,
		`permit (principal is Agent, action in [Action::"admin.read", Action::"admin.write"], resource);`,
		`permit (principal, action, resource) when { context.now > datetime("2024-01-01") && ip("10.0.0.1").isLoopback() };`,
		`permit (principal, action, resource) when { decimal("1.5") < decimal("2.0") && context.tokens * 2 > 10 };`,
		"permit (principal == Agent::\"a\\u{0}\", action, resource) unless { [1,2,3].containsAll([1]) };",
		`@id("x") @id("y") permit (principal, action, resource);`,
		`permit (principal, action, resource) when { {a: 1}.a == 1 && "é" like "*" };`,
		"forbid (",
		"permit (principal, action, resource) when { context.tokens > 9223372036854775807 + 1 };",
		"/* */ // \n permit",
	} {
		f.Add(s)
	}
	erin := Principal{Kind: KindAgent, Name: "erin", Tenant: "globex", Groups: []string{"research"}}
	alice := Principal{Kind: KindAgent, Name: "alice", Tenant: "acme", Groups: []string{"research"}}
	f.Fuzz(func(t *testing.T, text string) {
		ps, err := CompilePolicies(PolicyFile{builtinFile, basePolicies}, PolicyFile{"fuzz.cedar", []byte(text)})
		if err != nil {
			var pe *PolicyError
			if !errors.As(err, &pe) || pe.Msg == "" || pe.File == "" {
				t.Fatalf("refused without a PolicyError: %v", err)
			}
			return
		}
		for _, act := range []Action{MemoryRead, StorageWrite, StorageDelete} {
			r := eval(t, ps, erin, act, Namespace("alice"), Context{Path: "/x", Exists: true}, owner{tenant: "acme", groups: []string{"research"}})
			if r.Effect != Deny {
				t.Fatalf("globex's erin may %s acme's alice's namespace: %+v", act, r)
			}
		}
		// Whatever it says of agents and admin routes, the evaluation completes.
		eval(t, ps, alice, AdminWrite, Route("/admin/agents"), Context{}, owner{})
		eval(t, ps, alice, ToolCall, Tool("rm"), Context{Tool: ToolInfo{Hints: Hints{Destructive: ptr(true)}}}, owner{})
		eval(t, ps, Principal{Kind: KindAdmin, Name: "ops"}, LLMGenerate, Model("m"), Context{InputTokens: 1 << 40}, owner{})
	})
}
