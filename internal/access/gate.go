package access

import (
	"context"
	"strings"

	"github.com/aios-go/aios/api"
)

// Decision is the gate's answer to a call it let through.
type Decision struct {
	// Effect is what the policies said: Allow, or Ask (then Approval is the approval a
	// person gave). Check returns Deny only with an error.
	Effect   Effect
	Policies []string
	Reason   string
	Errors   []string
	Approval *Approval

	release Release
}

// Release ends the call's hold on its quotas, with the tokens it used. Call it once
// the call ends, whatever its outcome; calling it again does nothing.
func (d Decision) Release(actualTokens int64) {
	if d.release != nil {
		d.release(actualTokens)
	}
}

// Evaluate is what the policies say of a call, with no side effects: no quota is
// taken, nobody is asked, nothing is recorded. For dry runs and explanations.
func (m *Manager) Evaluate(ctx context.Context, p Principal, act Action, res Resource, c Context) (Result, error) {
	if err := checkCall(act, res); err != nil {
		return Result{}, err
	}
	own, err := m.ownerOf(ctx, res)
	if err != nil {
		return Result{}, err
	}
	em, req := buildRequest(p, act, res, c, own, m.clock.Now())
	return m.Policies.Current().evaluate(em, req), nil
}

func checkCall(act Action, res Resource) error {
	info, ok := actionInfo[act]
	if !ok {
		return api.Errorf(api.KernelInternal, "access: unknown action %q", act)
	}
	if res.Kind != info.resource {
		return api.Errorf(api.KernelInternal, "access: %s acts on a %s, not a %s", act, info.resource, res.Kind)
	}
	return nil
}

func (m *Manager) ownerOf(ctx context.Context, res Resource) (owner, error) {
	if res.Kind != ResourceNamespace {
		return owner{}, nil
	}
	a, found, err := m.Directory.lookup(ctx, res.Name)
	if err != nil || !found {
		return owner{tenant: DefaultTenant}, err
	}
	return owner{tenant: a.Tenant, groups: a.Groups}, nil
}

// Check is the gate every syscall and admin route passes. In order: the policies
// decide (groups and tenants are part of them); a denied call fails with
// policy_denied saying which policy or that none permits it. An allowed call is
// admitted against the quotas of the agent and its tenant (policy_quota_exceeded with
// RetryAfter). A call the policies mark ask then waits for a person (see
// Approvals.Request), holding its quota slot. Every outcome is recorded in the audit
// log, and a call whose allowance cannot be recorded is refused (kernel_internal):
// nothing passes the gate unrecorded.
//
// On success the caller must call Decision.Release when the call ends.
func (m *Manager) Check(ctx context.Context, p Principal, act Action, res Resource, c Context) (Decision, error) {
	r, err := m.Evaluate(ctx, p, act, res, c)
	if err != nil {
		return Decision{}, err
	}
	d := Decision{Effect: r.Effect, Policies: r.Policies, Reason: r.Reason, Errors: r.Errors}
	details := map[string]string{}
	if c.Path != "" {
		details["path"] = c.Path
	}
	if len(r.Policies) > 0 {
		details["policies"] = strings.Join(r.Policies, ",")
	}
	if len(r.Errors) > 0 {
		details["policy_errors"] = strings.Join(r.Errors, "; ")
	}
	entry := Entry{Who: p.String(), Action: string(act), Resource: res.String(), Details: details}

	if r.Effect == Deny {
		what := res.String()
		if c.Path != "" {
			what += " " + c.Path
		}
		entry.Decision, details["reason"] = string(Deny), r.Reason
		_, aerr := m.Audit.Append(ctx, entry)
		return d, withAuditErr(api.Errorf(api.PolicyDenied, "%s may not %s %s: %s", p, act, what, r.Reason), aerr)
	}

	rel, err := m.Quotas.Admit(p, act, c.Tokens())
	if err != nil {
		entry.Decision, details["reason"] = "quota", err.Error()
		_, aerr := m.Audit.Append(ctx, entry)
		return d, withAuditErr(err, aerr)
	}

	entry.Decision = string(Allow)
	if r.Effect == Ask {
		ap, err := m.Approvals.Request(ctx, ApprovalRequest{Principal: p, Action: act, Resource: res, Path: c.Path, Reason: r.Reason})
		if ap.ID != "" {
			d.Approval = &ap
			details["approval"] = ap.ID
		}
		if err != nil {
			rel(0)
			return d, err // the approval's outcome is recorded by Approvals
		}
		entry.Decision = string(Approved)
	}
	if _, err := m.Audit.Append(ctx, entry); err != nil {
		rel(0)
		return d, err
	}
	d.release = rel
	return d, nil
}

// withAuditErr keeps the decision's error (what the caller needs to read) and notes a
// failure to record it.
func withAuditErr(err, aerr error) error {
	if aerr == nil {
		return err
	}
	if e, ok := err.(*api.Error); ok {
		c := *e
		c.Message += " (and the decision could not be recorded in the audit log: " + aerr.Error() + ")"
		return &c
	}
	return err
}
