package access

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aios-go/aios/api"
)

// asked runs f (a call that will wait for approval) in a goroutine and returns the
// pending approval once it is listed, and a channel with f's outcome.
func asked(t *testing.T, m *Manager, f func() error) (Approval, <-chan error) {
	t.Helper()
	sub, stop := m.Approvals.Subscribe()
	defer stop()
	out := make(chan error, 1)
	go func() { out <- f() }()
	select {
	case ap := <-sub:
		return ap, out
	case err := <-out:
		t.Fatalf("the call ended without asking: %v", err)
	case <-time.After(30 * time.Second): // a hang, not a timing assertion
		t.Fatal("no approval was requested")
	}
	return Approval{}, nil
}

func TestApprovalFlow(t *testing.T) {
	forEachBackend(t, func(t *testing.T, cfg StoreConfig) {
		ctx := context.Background()
		clk := newFakeClock()
		m := open(t, cfg, clk, "")
		must[Agent](t)(m.Directory.AddAgent(ctx, Agent{Name: "alice"}))
		p := must[Principal](t)(m.Local(ctx, "alice"))
		del := func() error {
			d, err := m.Check(ctx, p, StorageDelete, Namespace("alice"), Context{Path: "/report.md"})
			d.Release(0)
			if err == nil && (d.Effect != Ask || d.Approval == nil || d.Approval.Status != Approved) {
				return errors.New("approved without an approval")
			}
			return err
		}

		t.Run("approve", func(t *testing.T) {
			ap, out := asked(t, m, del)
			if ap.Principal != "agent:alice" || ap.Action != StorageDelete || ap.Resource != "Namespace:alice" || ap.Path != "/report.md" ||
				!strings.Contains(ap.Reason, "cannot be undone") || !ap.Deadline.Equal(clk.Now().Add(time.Minute)) {
				t.Fatalf("pending %+v", ap)
			}
			list := must[[]Approval](t)(m.Approvals.List(ctx, "", 0))
			if len(list) != 1 || list[0].ID != ap.ID || list[0].Status != Pending {
				t.Fatalf("list %+v", list)
			}
			// Nobody approves their own request.
			if _, err := m.Approvals.Decide(ctx, ap.ID, true, "agent:alice", "mine"); kindOf(err) != api.PolicyDenied {
				t.Fatalf("self-approval: %v", err)
			}
			got := must[Approval](t)(m.Approvals.Decide(WithPrincipal(ctx, Principal{Kind: KindAdmin, Name: "ops"}), ap.ID, true, "", "looks fine"))
			if got.Status != Approved || got.DecidedBy != "admin:ops" || got.DecidedReason != "looks fine" {
				t.Fatalf("decided %+v", got)
			}
			if err := <-out; err != nil {
				t.Fatalf("the approved call failed: %v", err)
			}
			if _, err := m.Approvals.Decide(ctx, ap.ID, false, "admin:other", "too late"); kindOf(err) != api.CallerBadRequest {
				t.Fatalf("deciding twice: %v", err)
			}
			if list := must[[]Approval](t)(m.Approvals.List(ctx, "", 0)); len(list) != 0 {
				t.Fatalf("still pending: %+v", list)
			}
			if list := must[[]Approval](t)(m.Approvals.List(ctx, Approved, 0)); len(list) != 1 {
				t.Fatalf("approved: %+v", list)
			}
		})

		t.Run("deny", func(t *testing.T) {
			ap, out := asked(t, m, del)
			must[Approval](t)(m.Approvals.Decide(ctx, ap.ID, false, "admin:ops", "keep the report"))
			err := <-out
			ae := wantKind(t, err, api.PolicyDenied)
			if !strings.Contains(ae.Message, "admin:ops denied storage.delete on Namespace:alice /report.md: keep the report") {
				t.Fatalf("message %q", ae.Message)
			}
		})

		t.Run("time out", func(t *testing.T) {
			ap, out := asked(t, m, del)
			clk.waitTimers(t, 1)
			clk.Advance(59 * time.Second)
			select {
			case err := <-out:
				t.Fatalf("ended before the deadline: %v", err)
			default:
			}
			clk.Advance(time.Second)
			wantKind(t, <-out, api.PolicyTimeout)
			got := must[Approval](t)(m.Approvals.Get(ctx, ap.ID))
			if got.Status != Expired || got.DecidedBy != "kernel" {
				t.Fatalf("after the deadline %+v", got)
			}
			if _, err := m.Approvals.Decide(ctx, ap.ID, true, "admin:ops", "late"); kindOf(err) != api.CallerBadRequest {
				t.Fatalf("deciding an expired approval: %v", err)
			}
		})

		t.Run("context cancelled", func(t *testing.T) {
			cctx, cancel := context.WithCancel(ctx)
			ap, out := asked(t, m, func() error {
				_, err := m.Check(cctx, p, StorageRollback, Namespace("alice"), Context{Path: "/report.md"})
				return err
			})
			cancel()
			wantKind(t, <-out, api.CallerCancelled)
			if got := must[Approval](t)(m.Approvals.Get(ctx, ap.ID)); got.Status != Cancelled {
				t.Fatalf("after cancel %+v", got)
			}
		})

		t.Run("context deadline", func(t *testing.T) {
			cctx, cancel := context.WithCancelCause(ctx)
			_, out := asked(t, m, func() error {
				_, err := m.Check(cctx, p, StorageRollback, Namespace("alice"), Context{})
				return err
			})
			cancel(api.Errorf(api.PolicyTimeout, "the call did not finish within 1s"))
			if err := <-out; !strings.Contains(err.Error(), "within 1s") {
				t.Fatalf("a typed cause is kept: %v", err)
			}
		})

		// Every step is in the audit log, and the chain holds.
		var decisions []string
		for _, e := range must[[]Entry](t)(m.Audit.Query(ctx, AuditFilter{Action: "approval.decide"})) {
			decisions = append(decisions, e.Decision)
		}
		if strings.Join(decisions, ",") != "approved,denied,expired,cancelled,cancelled" {
			t.Fatalf("decisions recorded: %v", decisions)
		}
		if n := len(must[[]Entry](t)(m.Audit.Query(ctx, AuditFilter{Action: "approval.request"}))); n != 5 {
			t.Fatalf("%d requests recorded", n)
		}
		if es := must[[]Entry](t)(m.Audit.Query(ctx, AuditFilter{Action: "storage.delete", Decision: "approved"})); len(es) != 1 {
			t.Fatalf("gate entries for the approved delete: %+v", es)
		}
		if _, err := m.Audit.Verify(ctx); err != nil {
			t.Fatal(err)
		}
	})
}

// Many calls wait at once; each gets its own decision, none leaks.
func TestApprovalsConcurrent(t *testing.T) {
	ctx := context.Background()
	m, _ := sqliteManager(t)
	p := Principal{Kind: KindAgent, Name: "alice", Tenant: DefaultTenant}
	sub, stop := m.Approvals.Subscribe()
	defer stop()
	const n = 20
	results := make(chan error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := m.Check(ctx, p, StorageDelete, Namespace("alice"), Context{Path: "/f" + string(rune('a'+i))})
			results <- err
		}()
	}
	for range n {
		ap := <-sub
		approve := ap.Path[len(ap.Path)-1]%2 == 0
		if _, err := m.Approvals.Decide(ctx, ap.ID, approve, "admin:ops", ""); err != nil {
			t.Fatal(err)
		}
	}
	wg.Wait()
	close(results)
	var ok, denied int
	for err := range results {
		switch kindOf(err) {
		case "":
			ok++
		case api.PolicyDenied:
			denied++
		default:
			t.Fatal(err)
		}
	}
	if ok != 10 || denied != 10 {
		t.Fatalf("%d approved, %d denied", ok, denied)
	}
	if len(m.Approvals.waiters) != 0 {
		t.Fatalf("%d waiters left", len(m.Approvals.waiters))
	}
}

// A quota refusal comes before anyone is asked; an approval's wait holds the call's
// concurrency slot and gives it back however it ends.
func TestApprovalHoldsQuotaSlot(t *testing.T) {
	ctx := context.Background()
	clk := newFakeClock()
	m := open(t, StoreConfig{Path: filepath.Join(t.TempDir(), "a.db")}, clk, "")
	must[Agent](t)(m.Directory.AddAgent(ctx, Agent{Name: "alice"}))
	if err := m.Quotas.Set(ctx, Scope{ScopeAgent, "alice"}, Limits{MaxConcurrent: 1}); err != nil {
		t.Fatal(err)
	}
	p := must[Principal](t)(m.Local(ctx, "alice"))
	ap, out := asked(t, m, func() error {
		_, err := m.Check(ctx, p, StorageDelete, Namespace("alice"), Context{})
		return err
	})
	if _, err := m.Check(ctx, p, StorageRead, Namespace("alice"), Context{}); kindOf(err) != api.PolicyQuota {
		t.Fatalf("second call while one waits: %v", err)
	}
	must[Approval](t)(m.Approvals.Decide(ctx, ap.ID, false, "admin:ops", ""))
	wantKind(t, <-out, api.PolicyDenied)
	d, err := m.Check(ctx, p, StorageRead, Namespace("alice"), Context{})
	if err != nil {
		t.Fatalf("after the denied call gave its slot back: %v", err)
	}
	d.Release(0)
}

// Approvals a previous run left pending are closed at start-up: nobody waits on them.
func TestApprovalsOrphanedByRestart(t *testing.T) {
	ctx := context.Background()
	cfg := StoreConfig{Path: filepath.Join(t.TempDir(), "a.db")}
	clk := newFakeClock()
	m := open(t, cfg, clk, "")
	p := Principal{Kind: KindAgent, Name: "alice", Tenant: DefaultTenant}
	cctx, cancel := context.WithCancel(ctx)
	ap, out := asked(t, m, func() error {
		_, err := m.Check(cctx, p, StorageDelete, Namespace("alice"), Context{})
		return err
	})
	// Simulate a crash: the row stays pending as the process dies with its waiter.
	if _, err := m.store.db.Read().Exec(ctx, `UPDATE access_approvals SET status = 'pending' WHERE id = $1`, ap.ID); err != nil {
		t.Fatal(err)
	}
	cancel()
	<-out
	if _, err := m.store.db.Read().Exec(ctx, `UPDATE access_approvals SET status = 'pending' WHERE id = $1`, ap.ID); err != nil {
		t.Fatal(err)
	}
	m2 := open(t, cfg, clk, "")
	if got := must[Approval](t)(m2.Approvals.Get(ctx, ap.ID)); got.Status != Expired || !strings.Contains(got.DecidedReason, "restarted") {
		t.Fatalf("after restart %+v", got)
	}
	if list := must[[]Approval](t)(m2.Approvals.List(ctx, "", 0)); len(list) != 0 {
		t.Fatalf("pending after restart: %+v", list)
	}
}

// Decided lists what is no longer pending, the latest decision first, whatever order
// the requests came in; List(AnyStatus) lists every approval, pending ones too.
func TestApprovalsDecidedNewestFirst(t *testing.T) {
	forEachBackend(t, func(t *testing.T, cfg StoreConfig) {
		ctx := context.Background()
		clk := newFakeClock()
		m := open(t, cfg, clk, "")
		p := Principal{Kind: KindAgent, Name: "alice", Tenant: DefaultTenant}
		var ids []string
		var outs []<-chan error
		for _, path := range []string{"/a", "/b", "/c"} {
			ap, out := asked(t, m, func() error {
				_, err := m.Check(ctx, p, StorageDelete, Namespace("alice"), Context{Path: path})
				return err
			})
			ids, outs = append(ids, ap.ID), append(outs, out)
			clk.Advance(time.Second)
		}
		if got := must[[]Approval](t)(m.Approvals.Decided(ctx, 0)); len(got) != 0 {
			t.Fatalf("decided before any decision: %+v", got)
		}
		// The oldest request is decided last, so it is the latest decision.
		must[Approval](t)(m.Approvals.Decide(ctx, ids[1], false, "admin:ops", "no"))
		clk.Advance(time.Second)
		must[Approval](t)(m.Approvals.Decide(ctx, ids[0], true, "admin:ops", ""))
		wantKind(t, <-outs[1], api.PolicyDenied)
		if err := <-outs[0]; err != nil {
			t.Fatal(err)
		}
		got := must[[]Approval](t)(m.Approvals.Decided(ctx, 0))
		if len(got) != 2 || got[0].ID != ids[0] || got[0].Status != Approved || got[1].ID != ids[1] || got[1].Status != Denied {
			t.Fatalf("decided: %+v", got)
		}
		if got := must[[]Approval](t)(m.Approvals.Decided(ctx, 1)); len(got) != 1 || got[0].ID != ids[0] {
			t.Fatalf("decided, limit 1: %+v", got)
		}
		all := must[[]Approval](t)(m.Approvals.List(ctx, AnyStatus, 0))
		if len(all) != 3 || all[0].ID != ids[2] || all[0].Status != Pending || all[2].ID != ids[0] {
			t.Fatalf("every approval, newest first: %+v", all)
		}
		must[Approval](t)(m.Approvals.Decide(ctx, ids[2], true, "admin:ops", ""))
		if err := <-outs[2]; err != nil {
			t.Fatal(err)
		}
	})
}
