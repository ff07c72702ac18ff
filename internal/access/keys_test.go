package access

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aios-go/aios/api"
)

func bearer(key string) http.Header { return http.Header{"Authorization": {"Bearer " + key}} }

func TestKeysIssueAuthenticate(t *testing.T) {
	forEachBackend(t, func(t *testing.T, cfg StoreConfig) {
		ctx := context.Background()
		clk := newFakeClock()
		m := open(t, cfg, clk, "")
		must[Tenant](t)(m.Directory.AddTenant(ctx, "acme"))
		must[Agent](t)(m.Directory.AddAgent(ctx, Agent{Name: "alice", Tenant: "acme", Groups: []string{"research", "ops", "research"}}))
		key, info, err := m.Keys.Issue(ctx, KindAgent, "alice")
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(key, "aios_agent_"+info.ID+"_") || len(key) != len("aios_agent_")+16+1+43 {
			t.Fatalf("key %q does not have the documented shape", key)
		}

		for name, h := range map[string]http.Header{
			"bearer":         bearer(key),
			"bearer case":    {"Authorization": {"bearer   " + key + " "}},
			"x-api-key":      {"X-Api-Key": {key}},
			"both, the same": {"Authorization": {"Bearer " + key}, "X-Api-Key": {key}},
		} {
			p, err := m.Authenticate(ctx, h)
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			if p.Kind != KindAgent || p.Name != "alice" || p.Tenant != "acme" || strings.Join(p.Groups, ",") != "ops,research" || p.KeyID != info.ID {
				t.Fatalf("%s: principal %+v", name, p)
			}
		}

		admin, ainfo, err := m.Keys.Issue(ctx, KindAdmin, "ops")
		if err != nil {
			t.Fatal(err)
		}
		if p := must[Principal](t)(m.Authenticate(ctx, bearer(admin))); p.Kind != KindAdmin || p.Name != "ops" || p.KeyID != ainfo.ID {
			t.Fatalf("admin principal %+v", p)
		}

		// Everything else is unauthorized.
		flip := func(s string, i int) string {
			b := []byte(s)
			if b[i] == 'A' {
				b[i] = 'B'
			} else {
				b[i] = 'A'
			}
			return string(b)
		}
		for name, h := range map[string]http.Header{
			"none":               {},
			"empty bearer":       {"Authorization": {"Bearer "}},
			"basic":              {"Authorization": {"Basic " + key}},
			"secret changed":     bearer(flip(key, len(key)-1)),
			"id changed":         bearer(strings.Replace(key, info.ID, strings.Repeat("0", 16), 1)),
			"agent key as admin": bearer(strings.Replace(key, "aios_agent_", "aios_admin_", 1)),
			"admin key as agent": bearer(strings.Replace(admin, "aios_admin_", "aios_agent_", 1)),
			"two different":      {"Authorization": {"Bearer " + key}, "X-Api-Key": {admin}},
			"header twice":       {"Authorization": {"Bearer " + key, "Bearer " + key}},
			"truncated":          bearer(key[:len(key)-1]),
			"not ours":           bearer("sk-proj-abc"),
			"hash of the key":    bearer(hashKey(key)),
		} {
			if _, err := m.Authenticate(ctx, h); kindOf(err) != api.CallerUnauthorized {
				t.Errorf("%s: err = %v, want caller_unauthorized", name, err)
			}
		}

		// The store holds the hash, never the key or its secret.
		var stored string
		if err := m.store.db.Read().QueryRow(ctx, `SELECT hash FROM access_keys WHERE id = $1`, info.ID).Scan(&stored); err != nil {
			t.Fatal(err)
		}
		if stored != hashKey(key) || strings.Contains(stored, key[len(key)-43:]) {
			t.Fatalf("stored %q", stored)
		}

		// A key for nobody is refused.
		if _, _, err := m.Keys.Issue(ctx, KindAgent, "ghost"); kindOf(err) != api.CallerNotFound {
			t.Fatalf("issue for an unknown agent: %v", err)
		}

		// A disabled agent's key stops working at once, and again when enabled.
		must[Agent](t)(m.Directory.SetDisabled(ctx, "alice", true))
		if _, err := m.Authenticate(ctx, bearer(key)); kindOf(err) != api.CallerUnauthorized {
			t.Fatalf("disabled agent: %v", err)
		}
		must[Agent](t)(m.Directory.SetDisabled(ctx, "alice", false))
		must[Principal](t)(m.Authenticate(ctx, bearer(key)))

		// Group changes show in the next authentication.
		must[Agent](t)(m.Directory.SetGroups(ctx, "alice", []string{"finance"}))
		if p := must[Principal](t)(m.Authenticate(ctx, bearer(key))); strings.Join(p.Groups, ",") != "finance" {
			t.Fatalf("groups after change: %v", p.Groups)
		}

		// Last use is recorded.
		keys := must[[]KeyInfo](t)(m.Keys.List(ctx, KindAgent, "alice"))
		if len(keys) != 1 || !keys[0].LastUsed.Equal(clk.Now()) {
			t.Fatalf("keys %+v, want last use at %v", keys, clk.Now())
		}
	})
}

func TestKeysRotateRevoke(t *testing.T) {
	forEachBackend(t, func(t *testing.T, cfg StoreConfig) {
		ctx := context.Background()
		clk := newFakeClock()
		m := open(t, cfg, clk, "")
		must[Agent](t)(m.Directory.AddAgent(ctx, Agent{Name: "bob"}))
		old, oinfo, err := m.Keys.Issue(ctx, KindAgent, "bob")
		if err != nil {
			t.Fatal(err)
		}
		must[Principal](t)(m.Authenticate(ctx, bearer(old)))

		// Rotation with a grace period: both keys work until it ends, then only the new.
		nw, ninfo, err := m.Keys.Rotate(ctx, oinfo.ID, 10*time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		if nw == old || ninfo.Owner != "bob" || ninfo.Kind != KindAgent {
			t.Fatalf("rotated to %q %+v", nw, ninfo)
		}
		clk.Advance(9 * time.Minute)
		for _, k := range []string{old, nw} {
			if p := must[Principal](t)(m.Authenticate(ctx, bearer(k))); p.Name != "bob" {
				t.Fatalf("in the grace period: %+v", p)
			}
		}
		clk.Advance(time.Minute)
		if _, err := m.Authenticate(ctx, bearer(old)); kindOf(err) != api.CallerUnauthorized || !strings.Contains(err.Error(), "revoked") {
			t.Fatalf("old key after the grace period: %v", err)
		}
		if p := must[Principal](t)(m.Authenticate(ctx, bearer(nw))); p.KeyID != ninfo.ID {
			t.Fatalf("new key: %+v", p)
		}
		if _, _, err := m.Keys.Rotate(ctx, oinfo.ID, 0); kindOf(err) != api.CallerBadRequest {
			t.Fatalf("rotating a revoked key: %v", err)
		}

		// Rotation without grace ends the old key at once.
		newest, _, err := m.Keys.Rotate(ctx, ninfo.ID, 0)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := m.Authenticate(ctx, bearer(nw)); kindOf(err) != api.CallerUnauthorized {
			t.Fatalf("rotated without grace: %v", err)
		}

		// Revocation is immediate, through the cache, and idempotent.
		must[Principal](t)(m.Authenticate(ctx, bearer(newest)))
		_, newestID, _ := parseKey(newest)
		if err := m.Keys.Revoke(ctx, newestID); err != nil {
			t.Fatal(err)
		}
		if _, err := m.Authenticate(ctx, bearer(newest)); kindOf(err) != api.CallerUnauthorized {
			t.Fatalf("revoked: %v", err)
		}
		if err := m.Keys.Revoke(ctx, newestID); err != nil {
			t.Fatalf("revoking twice: %v", err)
		}
		if err := m.Keys.Revoke(ctx, "0000000000000000"); kindOf(err) != api.CallerNotFound {
			t.Fatalf("revoking nothing: %v", err)
		}

		keys := map[string]KeyInfo{}
		for _, k := range must[[]KeyInfo](t)(m.Keys.List(ctx, "", "bob")) {
			keys[k.ID] = k
		}
		if len(keys) != 3 || keys[oinfo.ID].ReplacedBy != ninfo.ID || keys[ninfo.ID].ReplacedBy != newestID ||
			keys[newestID].Active(clk.Now()) || keys[ninfo.ID].Active(clk.Now()) {
			t.Fatalf("keys %+v", keys)
		}
		// Each step is in the audit log.
		for _, act := range []string{"key.issue", "key.rotate", "key.revoke"} {
			if es := must[[]Entry](t)(m.Audit.Query(ctx, AuditFilter{Action: act})); len(es) == 0 {
				t.Errorf("no %s in the audit log", act)
			}
		}
	})
}

// A revocation through another kernel sharing the database takes effect here within
// the cache's lifetime.
func TestKeysRevokedElsewhere(t *testing.T) {
	ctx := context.Background()
	m, clk := sqliteManager(t)
	must[Agent](t)(m.Directory.AddAgent(ctx, Agent{Name: "carol"}))
	key, info := func() (string, KeyInfo) {
		k, i, err := m.Keys.Issue(ctx, KindAgent, "carol")
		if err != nil {
			t.Fatal(err)
		}
		return k, i
	}()
	must[Principal](t)(m.Authenticate(ctx, bearer(key)))
	if _, err := m.store.db.Read().Exec(ctx, `UPDATE access_keys SET revoked = $2 WHERE id = $1`, info.ID, clk.Now().UnixNano()); err != nil {
		t.Fatal(err)
	}
	clk.Advance(5 * time.Second)
	if _, err := m.Authenticate(ctx, bearer(key)); kindOf(err) != api.CallerUnauthorized {
		t.Fatalf("after the cache's lifetime: %v", err)
	}
}

func TestKeyFromHeaders(t *testing.T) {
	if _, err := KeyFromHeaders(http.Header{"Authorization": {"Bearer"}}); kindOf(err) != api.CallerUnauthorized {
		t.Fatal(err)
	}
	if k, err := KeyFromHeaders(http.Header{"X-Api-Key": {" k "}}); err != nil || k != "k" {
		t.Fatal(k, err)
	}
}
