package access

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestAuditChain(t *testing.T) {
	forEachBackend(t, func(t *testing.T, cfg StoreConfig) {
		ctx := context.Background()
		clk := newFakeClock()
		m := open(t, cfg, clk, "")
		start := clk.Now()
		if n, err := m.Audit.Verify(ctx); n != 0 || err != nil {
			t.Fatalf("empty log: %d %v", n, err)
		}
		// Concurrent appends are chained in one order, all of them.
		var wg sync.WaitGroup
		for i := range 40 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, err := m.Audit.Append(ctx, Entry{Time: start.Add(time.Duration(i) * 10 * time.Second),
					Who: fmt.Sprintf("agent:a%d", i%4), Action: "storage.read", Resource: "Namespace:x",
					Decision: "allow", Details: map[string]string{"i": fmt.Sprint(i), "odd\x00key": "bad\xffutf8"}})
				if err != nil {
					t.Error(err)
				}
			}()
		}
		wg.Wait()
		seq, head, err := m.Audit.Head(ctx)
		if err != nil || seq != 40 || len(head) != 64 {
			t.Fatalf("head %d %q %v", seq, head, err)
		}
		if n, err := m.Audit.Verify(ctx); n != 0 || err != nil {
			t.Fatalf("verify: %d %v", n, err)
		}

		// Queries.
		es := must[[]Entry](t)(m.Audit.Query(ctx, AuditFilter{Who: "agent:a1", Limit: 1000}))
		if len(es) != 10 {
			t.Fatalf("by agent: %d entries", len(es))
		}
		for i, e := range es {
			if e.Who != "agent:a1" || (i > 0 && e.Seq <= es[i-1].Seq) || e.Details["odd\uFFFDkey"] != "bad\uFFFDutf8" {
				t.Fatalf("entry %+v", e)
			}
		}
		if es := must[[]Entry](t)(m.Audit.Query(ctx, AuditFilter{Since: start.Add(time.Minute), Until: start.Add(3 * time.Minute)})); len(es) == 0 {
			t.Fatal("by time: nothing")
		} else {
			for _, e := range es {
				if e.Time.Before(start.Add(time.Minute)) || !e.Time.Before(start.Add(3*time.Minute)) {
					t.Fatalf("out of range: %v", e.Time)
				}
			}
		}
		page := must[[]Entry](t)(m.Audit.Query(ctx, AuditFilter{Limit: 5, Newest: true}))
		if len(page) != 5 || page[0].Seq != 40 || page[4].Seq != 36 {
			t.Fatalf("newest page %v", seqs(page))
		}
		page = must[[]Entry](t)(m.Audit.Query(ctx, AuditFilter{Limit: 5, Newest: true, AfterSeq: 36}))
		if page[0].Seq != 35 {
			t.Fatalf("next page %v", seqs(page))
		}
		if es := must[[]Entry](t)(m.Audit.Query(ctx, AuditFilter{Action: "storage.read", AfterSeq: 38})); len(es) != 2 {
			t.Fatalf("after 38: %v", seqs(es))
		}

		db := m.store.db.Read()
		exec := func(q string, args ...any) {
			t.Helper()
			if _, err := db.Exec(ctx, q, args...); err != nil {
				t.Fatal(err)
			}
		}
		wantBad := func(seq int64, what string) {
			t.Helper()
			n, err := m.Audit.Verify(ctx)
			if n != seq || !errors.Is(err, ErrTampered) || !strings.Contains(err.Error(), what) {
				t.Fatalf("verify: %d %v, want entry %d (%s)", n, err, seq, what)
			}
		}

		// An entry changed in place.
		exec(`UPDATE access_audit SET decision = 'deny' WHERE seq = 17`)
		wantBad(17, "changed after it was written")
		exec(`UPDATE access_audit SET decision = 'allow' WHERE seq = 17`)
		if n, err := m.Audit.Verify(ctx); n != 0 || err != nil {
			t.Fatalf("restored: %d %v", n, err)
		}
		// Details, time.
		exec(`UPDATE access_audit SET details = '{}' WHERE seq = 3`)
		wantBad(3, "changed")
		exec(`UPDATE access_audit SET details = (SELECT details FROM access_audit WHERE seq = 4) WHERE seq = 3`)
		wantBad(3, "changed")
		exec(`DELETE FROM access_audit WHERE seq = 3`)
		wantBad(3, "entry 3 is missing")

		// Rewriting an entry with a fresh, self-consistent hash breaks the next link.
		e5 := must[[]Entry](t)(m.Audit.Query(ctx, AuditFilter{AfterSeq: 24, Limit: 1}))[0]
		e5.Decision = "deny"
		exec(`UPDATE access_audit SET decision = 'deny', hash = $2 WHERE seq = $1`, e5.Seq, chainHash(e5.PrevHash, canonical(e5, detailsJSON(e5.Details))))
		n, err := m.Audit.Verify(ctx)
		if n != 3 || err == nil {
			t.Fatalf("the first fault is still 3: %d %v", n, err)
		}
	})
}

// A forged rewrite of one entry, rehashed, is caught at the entry after it.
func TestAuditRehashedEntry(t *testing.T) {
	ctx := context.Background()
	m, _ := sqliteManager(t)
	for i := range 5 {
		must[Entry](t)(m.Audit.Append(ctx, Entry{Who: "agent:a", Action: "tool.call", Resource: fmt.Sprint(i), Decision: "allow"}))
	}
	e := must[[]Entry](t)(m.Audit.Query(ctx, AuditFilter{AfterSeq: 2, Limit: 1}))[0]
	e.Decision = "deny"
	if _, err := m.store.db.Read().Exec(ctx, `UPDATE access_audit SET decision = 'deny', hash = $1 WHERE seq = 3`,
		chainHash(e.PrevHash, canonical(e, detailsJSON(e.Details)))); err != nil {
		t.Fatal(err)
	}
	n, err := m.Audit.Verify(ctx)
	if n != 4 || !strings.Contains(err.Error(), "does not follow entry 3") {
		t.Fatalf("verify: %d %v", n, err)
	}
}

func seqs(es []Entry) []int64 {
	var out []int64
	for _, e := range es {
		out = append(out, e.Seq)
	}
	return out
}
