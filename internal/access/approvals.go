package access

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/aios-go/aios/api"
	"github.com/aios-go/aios/internal/sqldb"
)

// ApprovalStatus is where an approval stands.
type ApprovalStatus string

const (
	Pending   ApprovalStatus = "pending"
	Approved  ApprovalStatus = "approved"
	Denied    ApprovalStatus = "denied"
	Expired   ApprovalStatus = "expired"   // nobody decided before the deadline
	Cancelled ApprovalStatus = "cancelled" // the waiting call went away first
)

// Approval is one call that waits (or waited) for a person's decision.
type Approval struct {
	ID            string         `json:"id"`
	Principal     string         `json:"principal"` // who asks: "agent:alice"
	Tenant        string         `json:"tenant,omitempty"`
	Action        Action         `json:"action"`
	Resource      string         `json:"resource"` // "Namespace:bob"
	Path          string         `json:"path,omitempty"`
	Reason        string         `json:"reason"` // why policy asks
	Created       time.Time      `json:"created"`
	Deadline      time.Time      `json:"deadline"`
	Status        ApprovalStatus `json:"status"`
	DecidedBy     string         `json:"decided_by,omitempty"`
	DecidedReason string         `json:"decided_reason,omitempty"`
	DecidedAt     time.Time      `json:"decided_at,omitzero"`
}

// ApprovalRequest is what a call that needs approval asks for.
type ApprovalRequest struct {
	Principal Principal
	Action    Action
	Resource  Resource
	Path      string
	Reason    string        // why policy asks, for the approver
	Timeout   time.Duration // 0: the manager's default
}

// Approvals holds calls that wait for a person: Request blocks the calling syscall
// until Decide approves or denies it, its deadline passes (denied), or its context ends.
// Waiters are in this process; the records are in the store, so pending approvals can
// be listed and every outcome is kept. A decision made through another kernel sharing
// the database does not wake a call waiting here: decide where the call waits.
type Approvals struct {
	store   *Store
	audit   *Audit
	clock   Clock
	timeout time.Duration

	mu      sync.Mutex
	waiters map[string]chan Approval
	subs    map[int]chan Approval
	nextSub int
}

// DefaultApprovalTimeout is how long a call waits for a decision by default.
const DefaultApprovalTimeout = 5 * time.Minute

func newApprovals(s *Store, a *Audit, c Clock, timeout time.Duration) *Approvals {
	if timeout <= 0 {
		timeout = DefaultApprovalTimeout
	}
	return &Approvals{store: s, audit: a, clock: c, timeout: timeout, waiters: map[string]chan Approval{}, subs: map[int]chan Approval{}}
}

// Request records a pending approval and waits for its outcome. It returns the
// approval, approved, or an error: policy_denied with the approver's reason,
// policy_timeout when nobody decided in time, or caller_cancelled when ctx ended (its
// cause, if typed, is kept). Every outcome is in the audit log.
func (a *Approvals) Request(ctx context.Context, req ApprovalRequest) (Approval, error) {
	idb := make([]byte, 8)
	if _, err := rand.Read(idb); err != nil {
		return Approval{}, internal(err, "draw an approval id")
	}
	timeout := req.Timeout
	if timeout <= 0 {
		timeout = a.timeout
	}
	now := a.clock.Now()
	ap := Approval{ID: "apr_" + hex.EncodeToString(idb), Principal: req.Principal.String(), Tenant: req.Principal.Tenant,
		Action: req.Action, Resource: req.Resource.String(), Path: clean(req.Path), Reason: clean(req.Reason),
		Created: now, Deadline: now.Add(timeout), Status: Pending}

	// The waiter exists before the record does, so a decision that comes at once has
	// someone to wake.
	done := make(chan Approval, 1)
	a.mu.Lock()
	a.waiters[ap.ID] = done
	a.mu.Unlock()
	defer func() {
		a.mu.Lock()
		delete(a.waiters, ap.ID)
		a.mu.Unlock()
	}()

	err := a.store.write(ctx, func(tx sqldb.Tx) error {
		_, err := tx.Exec(ctx, `INSERT INTO access_approvals (id, principal, tenant, action, resource, path, reason, created, deadline, status)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`, ap.ID, ap.Principal, ap.Tenant, string(ap.Action), ap.Resource,
			ap.Path, ap.Reason, ap.Created.UnixNano(), ap.Deadline.UnixNano(), string(Pending))
		return err
	})
	if err != nil {
		return Approval{}, internal(err, "record an approval")
	}
	if _, err := a.audit.Append(ctx, Entry{Who: ap.Principal, Action: "approval.request", Resource: ap.ID, Decision: string(Pending),
		Details: map[string]string{"action": string(ap.Action), "resource": ap.Resource, "path": ap.Path, "reason": ap.Reason,
			"deadline": ap.Deadline.UTC().Format(time.RFC3339Nano)}}); err != nil {
		return Approval{}, err
	}
	a.publish(ap)

	t := a.clock.NewTimer(timeout)
	defer t.Stop()
	select {
	case got := <-done:
		return outcome(got)
	case <-t.C():
		got, err := a.end(context.WithoutCancel(ctx), ap.ID, Expired, "nobody decided before the deadline")
		if err != nil {
			return Approval{}, err
		}
		return outcome(got)
	case <-ctx.Done():
		got, err := a.end(context.WithoutCancel(ctx), ap.ID, Cancelled, "the waiting call ended: "+context.Cause(ctx).Error())
		if err != nil {
			return Approval{}, err
		}
		if got.Status == Cancelled {
			return got, ctxErr(ctx)
		}
		return outcome(got)
	}
}

func ctxErr(ctx context.Context) error {
	cause := context.Cause(ctx)
	var ae *api.Error
	if errors.As(cause, &ae) {
		return cause
	}
	if errors.Is(cause, context.DeadlineExceeded) {
		return api.Wrap(api.PolicyTimeout, cause, "the call's deadline passed while it waited for approval")
	}
	return api.Wrap(api.CallerCancelled, cause, "the call was cancelled while it waited for approval")
}

// outcome turns a decided approval into Request's result.
func outcome(ap Approval) (Approval, error) {
	switch ap.Status {
	case Approved:
		return ap, nil
	case Denied:
		msg := fmt.Sprintf("%s denied %s on %s", ap.DecidedBy, ap.Action, ap.Resource)
		if ap.Path != "" {
			msg += " " + ap.Path
		}
		if ap.DecidedReason != "" {
			msg += ": " + ap.DecidedReason
		}
		return ap, api.Errorf(api.PolicyDenied, "%s (approval %s)", msg, ap.ID)
	case Expired:
		return ap, api.Errorf(api.PolicyTimeout, "%s on %s needs approval (%s) and nobody decided by %s; it is denied (approval %s)",
			ap.Action, ap.Resource, ap.Reason, ap.Deadline.UTC().Format(time.RFC3339), ap.ID)
	}
	return ap, api.Errorf(api.CallerCancelled, "approval %s was %s", ap.ID, ap.Status)
}

// end closes a pending approval with a status no person chose (expired, cancelled).
// If a decision got there first, the decision stands and is returned.
func (a *Approvals) end(ctx context.Context, id string, st ApprovalStatus, why string) (Approval, error) {
	now := a.clock.Now()
	var n int64
	err := a.store.write(ctx, func(tx sqldb.Tx) error {
		var err error
		n, err = tx.Exec(ctx, `UPDATE access_approvals SET status = $2, decided_by = 'kernel', decided_reason = $3, decided_at = $4
			WHERE id = $1 AND status = 'pending'`, id, string(st), why, now.UnixNano())
		return err
	})
	if err != nil {
		return Approval{}, internal(err, "close approval %s", id)
	}
	ap, err := a.Get(ctx, id)
	if err != nil {
		return Approval{}, err
	}
	if n > 0 {
		if _, err := a.audit.Append(ctx, Entry{Who: "kernel", Action: "approval.decide", Resource: id, Decision: string(st),
			Details: map[string]string{"reason": why, "principal": ap.Principal, "action": string(ap.Action), "resource": ap.Resource}}); err != nil {
			return Approval{}, err
		}
	}
	return ap, nil
}

// Decide approves or denies the pending approval id; by is the approver ("" for the
// principal in ctx) and why their reason. The waiting call resumes (approved) or fails
// with policy_denied and why. Nobody approves their own request.
func (a *Approvals) Decide(ctx context.Context, id string, approve bool, by, why string) (Approval, error) {
	if by == "" {
		by = actor(ctx)
	}
	cur, err := a.Get(ctx, id)
	if err != nil {
		return Approval{}, err
	}
	if cur.Principal == by {
		return Approval{}, api.Errorf(api.PolicyDenied, "access: %s cannot decide its own approval %s", by, id)
	}
	st := Denied
	if approve {
		st = Approved
	}
	now := a.clock.Now()
	var n int64
	err = a.store.write(ctx, func(tx sqldb.Tx) error {
		var err error
		n, err = tx.Exec(ctx, `UPDATE access_approvals SET status = $2, decided_by = $3, decided_reason = $4, decided_at = $5
			WHERE id = $1 AND status = 'pending' AND deadline > $5`, id, string(st), clean(by), clean(why), now.UnixNano())
		return err
	})
	if err != nil {
		return Approval{}, internal(err, "decide approval %s", id)
	}
	ap, err := a.Get(ctx, id)
	if err != nil {
		return Approval{}, err
	}
	if n == 0 {
		if ap.Status == Pending {
			return ap, api.Errorf(api.CallerBadRequest, "access: approval %s passed its deadline; it is being denied", id)
		}
		return ap, api.Errorf(api.CallerBadRequest, "access: approval %s is %s already (by %s)", id, ap.Status, ap.DecidedBy)
	}
	if _, err := a.audit.Append(ctx, Entry{Who: clean(by), Action: "approval.decide", Resource: id, Decision: string(st),
		Details: map[string]string{"reason": why, "principal": ap.Principal, "action": string(ap.Action), "resource": ap.Resource, "path": ap.Path}}); err != nil {
		return Approval{}, err
	}
	a.mu.Lock()
	if w, ok := a.waiters[id]; ok {
		select {
		case w <- ap:
		default:
		}
	}
	a.mu.Unlock()
	return ap, nil
}

// expireOrphans closes the approvals a previous run of this kernel left pending: the
// calls that waited on them are gone, so approving one would do nothing. Only for a
// store this kernel owns alone; on a shared PostgreSQL they may be another kernel's.
func (a *Approvals) expireOrphans(ctx context.Context) error {
	if !a.store.exclusive {
		return nil
	}
	var n int64
	err := a.store.write(ctx, func(tx sqldb.Tx) error {
		var err error
		n, err = tx.Exec(ctx, `UPDATE access_approvals SET status = 'expired', decided_by = 'kernel',
			decided_reason = 'the kernel restarted while the call waited', decided_at = $1 WHERE status = 'pending'`, a.clock.Now().UnixNano())
		return err
	})
	if err != nil {
		return internal(err, "close the approvals of the previous run")
	}
	if n == 0 {
		return nil
	}
	_, err = a.audit.Append(ctx, Entry{Who: "kernel", Action: "approval.decide", Resource: "approvals", Decision: string(Expired),
		Details: map[string]string{"reason": "the kernel restarted while the calls waited", "count": strconv.FormatInt(n, 10)}})
	return err
}

const approvalCols = `id, principal, tenant, action, resource, path, reason, created, deadline, status, decided_by, decided_reason, decided_at`

func scanApproval(r sqldb.Row) (Approval, error) {
	var ap Approval
	var action, status string
	var created, deadline, decided int64
	if err := r.Scan(&ap.ID, &ap.Principal, &ap.Tenant, &action, &ap.Resource, &ap.Path, &ap.Reason, &created, &deadline,
		&status, &ap.DecidedBy, &ap.DecidedReason, &decided); err != nil {
		return Approval{}, err
	}
	ap.Action, ap.Status = Action(action), ApprovalStatus(status)
	ap.Created, ap.Deadline = time.Unix(0, created), time.Unix(0, deadline)
	if decided != 0 {
		ap.DecidedAt = time.Unix(0, decided)
	}
	return ap, nil
}

// Get returns approval id.
func (a *Approvals) Get(ctx context.Context, id string) (Approval, error) {
	ap, err := scanApproval(a.store.db.Read().QueryRow(ctx, `SELECT `+approvalCols+` FROM access_approvals WHERE id = $1`, id))
	if errors.Is(err, sqldb.ErrNoRows) {
		return Approval{}, api.Errorf(api.CallerNotFound, "access: no approval %s", id)
	}
	if err != nil {
		return Approval{}, internal(err, "read approval %s", id)
	}
	return ap, nil
}

// AnyStatus lists approvals whatever their status (List).
const AnyStatus ApprovalStatus = "all"

// List returns approvals, newest first: those still pending (before their deadline)
// when status is "" or pending, every one when it is AnyStatus, else those of that
// status; limit 100 when 0.
func (a *Approvals) List(ctx context.Context, status ApprovalStatus, limit int) ([]Approval, error) {
	if limit <= 0 {
		limit = 100
	}
	q, args := `SELECT `+approvalCols+` FROM access_approvals WHERE status = $1 AND deadline > $2 ORDER BY created DESC, id LIMIT $3`,
		[]any{string(Pending), a.clock.Now().UnixNano(), limit}
	switch status {
	case "", Pending:
	case AnyStatus:
		q, args = `SELECT `+approvalCols+` FROM access_approvals ORDER BY created DESC, id LIMIT $1`, []any{limit}
	default:
		q, args = `SELECT `+approvalCols+` FROM access_approvals WHERE status = $1 ORDER BY created DESC, id LIMIT $2`, []any{string(status), limit}
	}
	return a.query(ctx, q, args...)
}

// Decided returns the approvals no longer pending (approved, denied, expired,
// cancelled), the most recently decided first; limit 100 when 0. The dashboard shows
// them as the recent decisions: ordering by creation would bury a decision just made
// on an old request under newer requests.
func (a *Approvals) Decided(ctx context.Context, limit int) ([]Approval, error) {
	if limit <= 0 {
		limit = 100
	}
	return a.query(ctx, `SELECT `+approvalCols+` FROM access_approvals WHERE status <> $1 ORDER BY decided_at DESC, id LIMIT $2`,
		string(Pending), limit)
}

func (a *Approvals) query(ctx context.Context, q string, args ...any) ([]Approval, error) {
	rows, err := a.store.db.Read().Query(ctx, q, args...)
	if err != nil {
		return nil, internal(err, "list approvals")
	}
	defer rows.Close()
	out := []Approval{}
	for rows.Next() {
		ap, err := scanApproval(rows)
		if err != nil {
			return nil, internal(err, "list approvals")
		}
		out = append(out, ap)
	}
	return out, internal(rows.Err(), "list approvals")
}

// Subscribe returns a channel that receives every new pending approval (for a prompt or
// an event stream) and a function that ends the subscription and closes the channel. A
// subscriber that falls behind misses approvals rather than holding up the calls that
// ask; List catches up.
func (a *Approvals) Subscribe() (<-chan Approval, func()) {
	ch := make(chan Approval, 64)
	a.mu.Lock()
	id := a.nextSub
	a.nextSub++
	a.subs[id] = ch
	a.mu.Unlock()
	var once sync.Once
	return ch, func() {
		once.Do(func() {
			a.mu.Lock()
			delete(a.subs, id)
			close(ch) // publish sends under a.mu, so never to a closed channel
			a.mu.Unlock()
		})
	}
}

func (a *Approvals) publish(ap Approval) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, ch := range a.subs {
		select {
		case ch <- ap:
		default:
		}
	}
}
