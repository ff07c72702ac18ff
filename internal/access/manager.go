package access

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"time"
)

// Options configure a Manager.
type Options struct {
	Store StoreConfig
	// PolicyDir holds the operator's *.cedar files; "" for the built-in policies only.
	PolicyDir string
	// ApprovalTimeout is how long a call waits for a decision (DefaultApprovalTimeout).
	ApprovalTimeout time.Duration
	// CacheTTL bounds how stale the key and agent caches may be (5s): how long a key
	// revoked or an agent changed through another kernel sharing the database goes on
	// working here. Changes through this manager apply at once.
	CacheTTL time.Duration
	// FlushEvery is how often Run writes quota counters (5s).
	FlushEvery time.Duration
	Clock      Clock // the wall clock when nil
	Logger     *slog.Logger
}

// Manager is the access manager: its parts, and the gate (Check) that combines them.
type Manager struct {
	Directory *Directory
	Keys      *Keys
	Policies  *Policies
	Approvals *Approvals
	Quotas    *Quotas
	Audit     *Audit

	store      *Store
	clock      Clock
	log        *slog.Logger
	flushEvery time.Duration
}

// Open opens the store and loads the policies. A policy directory with a policy that
// does not parse stops it: the error names the file and line.
func Open(ctx context.Context, o Options) (*Manager, error) {
	if o.Clock == nil {
		o.Clock = RealClock()
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.CacheTTL <= 0 {
		o.CacheTTL = 5 * time.Second
	}
	if o.FlushEvery <= 0 {
		o.FlushEvery = 5 * time.Second
	}
	pol, err := LoadPolicies(o.PolicyDir)
	if err != nil {
		return nil, err
	}
	st, err := OpenStore(ctx, o.Store)
	if err != nil {
		return nil, err
	}
	m := &Manager{store: st, clock: o.Clock, log: o.Logger, flushEvery: o.FlushEvery, Policies: pol}
	m.Audit = newAudit(st, o.Clock)
	m.Directory = newDirectory(st, m.Audit, o.Clock, o.CacheTTL)
	m.Keys = newKeys(st, m.Directory, m.Audit, o.Clock, o.CacheTTL)
	m.Approvals = newApprovals(st, m.Audit, o.Clock, o.ApprovalTimeout)
	if err := m.Approvals.expireOrphans(ctx); err != nil {
		st.Close()
		return nil, err
	}
	if m.Quotas, err = newQuotas(ctx, st, m.Audit, o.Clock); err != nil {
		st.Close()
		return nil, err
	}
	pol.onReload = m.policiesReloaded
	return m, nil
}

func (m *Manager) policiesReloaded(ps *PolicySet, err error) {
	ctx := context.Background()
	if err != nil {
		m.log.Error("access: the policies were not reloaded; the previous set stays in force", "err", err)
		m.Audit.record(ctx, "policy.reload", "Policies:"+m.Policies.Dir(), "refused", map[string]string{"error": err.Error()})
		return
	}
	m.log.Info("access: policies reloaded", "files", len(ps.Files()), "policies", ps.Len())
	m.Audit.record(ctx, "policy.reload", "Policies:"+m.Policies.Dir(), "done", nil)
}

// Run watches the policy directory and writes quota counters every FlushEvery, until
// ctx ends.
func (m *Manager) Run(ctx context.Context) error {
	errc := make(chan error, 1)
	go func() { errc <- m.Policies.Watch(ctx, 0) }()
	t := time.NewTicker(m.flushEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return <-errc
		case <-t.C:
			if err := m.Quotas.Flush(ctx); err != nil && ctx.Err() == nil {
				m.log.Warn("access: quota counters not written; retrying", "err", err)
			}
		}
	}
}

// Close writes the quota counters and closes the store.
func (m *Manager) Close() error {
	ferr := m.Quotas.Flush(context.Background())
	return errors.Join(ferr, m.store.Close())
}

// Authenticate returns the principal whose API key the request headers carry (see
// Keys.Authenticate).
func (m *Manager) Authenticate(ctx context.Context, h http.Header) (Principal, error) {
	return m.Keys.Authenticate(ctx, h)
}

// Local is the principal of agent name when authentication is off and the name is
// taken on the caller's word: the registered agent with its tenant and groups, or an
// unregistered agent of DefaultTenant in no group.
func (m *Manager) Local(ctx context.Context, name string) (Principal, error) {
	a, found, err := m.Directory.lookup(ctx, name)
	if err != nil {
		return Principal{}, err
	}
	if !found {
		return Principal{Kind: KindAgent, Name: name, Tenant: DefaultTenant}, nil
	}
	if a.Disabled {
		return Principal{}, unauthorized("the agent " + name + " is disabled")
	}
	return Principal{Kind: KindAgent, Name: a.Name, Tenant: a.Tenant, Groups: a.Groups}, nil
}
