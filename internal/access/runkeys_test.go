package access

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/aios-go/aios/api"
)

// A run key: an unregistered agent is registered in the default tenant with no groups,
// the key works until the run's end revokes it, and the kernel is recorded as the one
// that did both.
func TestRunKeys(t *testing.T) {
	forEachBackend(t, func(t *testing.T, cfg StoreConfig) {
		ctx := AsKernel(context.Background())
		m := open(t, cfg, newFakeClock(), "")
		key, info, err := m.IssueRunKey(ctx, "runner", "run-1-abcd")
		if err != nil {
			t.Fatal(err)
		}
		a := must[Agent](t)(m.Directory.Agent(ctx, "runner"))
		if a.Tenant != DefaultTenant || len(a.Groups) != 0 || a.Disabled {
			t.Fatalf("registered as %+v", a)
		}
		p := must[Principal](t)(m.Authenticate(ctx, bearer(key)))
		if p.Name != "runner" || p.KeyID != info.ID || p.Tenant != DefaultTenant {
			t.Fatalf("principal %+v", p)
		}
		// A second run of the same agent gets a key of its own.
		key2, _, err := m.IssueRunKey(ctx, "runner", "run-2-abcd")
		if err != nil || key2 == key {
			t.Fatalf("second run: %v", err)
		}

		if err := m.RevokeRunKey(ctx, info.ID); err != nil {
			t.Fatal(err)
		}
		wantKind(t, must2(m.Authenticate(ctx, bearer(key))), api.CallerUnauthorized)
		if _, err := m.Authenticate(ctx, bearer(key2)); err != nil {
			t.Fatalf("the other run's key stopped too: %v", err)
		}

		es := must[[]Entry](t)(m.Audit.Query(ctx, AuditFilter{Who: "kernel"}))
		seen := map[string]string{}
		for _, e := range es {
			seen[e.Action+" "+e.Resource] = e.Details["program"]
		}
		for _, want := range []string{"agent.add Agent:runner", "key.issue Key:" + info.ID, "key.revoke Key:" + info.ID} {
			if _, ok := seen[want]; !ok {
				t.Errorf("the audit log lacks %q by kernel: %v", want, seen)
			}
		}
		if seen["key.issue Key:"+info.ID] != "run-1-abcd" {
			t.Errorf("the issue entry does not name the run's program: %v", seen)
		}

		// A registered agent keeps its tenant and groups; a disabled one gets no key.
		must[Tenant](t)(m.Directory.AddTenant(ctx, "acme"))
		must[Agent](t)(m.Directory.AddAgent(ctx, Agent{Name: "alice", Tenant: "acme", Groups: []string{"research"}}))
		key, _, err = m.IssueRunKey(ctx, "alice", "run-3-abcd")
		if err != nil {
			t.Fatal(err)
		}
		if p := must[Principal](t)(m.Authenticate(ctx, bearer(key))); p.Tenant != "acme" || len(p.Groups) != 1 {
			t.Fatalf("principal %+v", p)
		}
		must[Agent](t)(m.Directory.SetDisabled(ctx, "alice", true))
		_, _, err = m.IssueRunKey(ctx, "alice", "run-4-abcd")
		wantKind(t, err, api.PolicyDenied)

		// A name the directory refuses fails the start.
		_, _, err = m.IssueRunKey(ctx, "not a name", "run-5-abcd")
		wantKind(t, err, api.CallerBadRequest)
	})
}

func must2(_ Principal, err error) error { return err }

// The run keys a kernel that died left live are revoked when it starts again; other keys
// stay.
func TestOrphanRunKeysRevoked(t *testing.T) {
	ctx := context.Background()
	cfg := StoreConfig{Path: filepath.Join(t.TempDir(), "access.db")}
	m, err := Open(ctx, Options{Store: cfg})
	if err != nil {
		t.Fatal(err)
	}
	runKey, _, err := m.IssueRunKey(AsKernel(ctx), "runner", "run-1-abcd")
	if err != nil {
		t.Fatal(err)
	}
	plain, _, err := m.Keys.Issue(ctx, KindAgent, "runner")
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Close(); err != nil { // no RevokeRunKey: the kernel died
		t.Fatal(err)
	}

	m = open(t, cfg, newFakeClock(), "")
	if _, err := m.Authenticate(ctx, bearer(runKey)); err != nil {
		t.Fatalf("opening the store alone revoked the run key (aios admin key create does): %v", err)
	}
	n, err := m.RevokeOrphanRunKeys(ctx)
	if err != nil || n != 1 {
		t.Fatalf("revoked %d: %v", n, err)
	}
	wantKind(t, must2(m.Authenticate(ctx, bearer(runKey))), api.CallerUnauthorized)
	if _, err := m.Authenticate(ctx, bearer(plain)); err != nil {
		t.Fatalf("a key issued by an admin was revoked: %v", err)
	}
	if n, err := m.RevokeOrphanRunKeys(ctx); err != nil || n != 0 {
		t.Fatalf("again: revoked %d: %v", n, err)
	}
	es := must[[]Entry](t)(m.Audit.Query(ctx, AuditFilter{Who: "kernel", Action: "key.revoke"}))
	if len(es) != 1 || es[0].Details["count"] != "1" {
		t.Fatalf("audit: %+v", es)
	}
}
