package boot

import (
	"context"
	"log/slog"
	"slices"

	"github.com/aios-go/aios/api"
	"github.com/aios-go/aios/internal/access"
	"github.com/aios-go/aios/internal/config"
)

// applyQuotas sets the limits of access.quotas (docs/security.md#quotas) at start-up,
// over whatever the admin API set for those scopes since the last start: the file is
// the operator's standing word. A tenant that does not exist yet is registered, so its
// limits hold for the agents added to it later; an agent must be registered already,
// since a quota on a name nobody registered is most likely a typo.
func applyQuotas(ctx context.Context, m *access.Manager, qs []config.Quota, log *slog.Logger) error {
	if len(qs) == 0 {
		return nil
	}
	ctx = access.AsKernel(ctx) // the audit log records the kernel as who set them
	tenants, err := m.Directory.Tenants(ctx)
	if err != nil {
		return err
	}
	for i, q := range qs {
		kind, name := q.Scope()
		scope := access.Scope{Kind: access.ScopeKind(kind), Name: name}
		switch scope.Kind {
		case access.ScopeAgent:
			if _, err := m.Directory.Agent(ctx, name); api.KindOf(err) == api.CallerNotFound {
				return api.Errorf(api.CallerNotFound, "access.quotas[%d]: agent %s is not registered; register it first (aios agents add %s) or remove its quota", i, name, name)
			} else if err != nil {
				return err
			}
		case access.ScopeTenant:
			if !slices.ContainsFunc(tenants, func(t access.Tenant) bool { return t.Name == name }) {
				t, err := m.Directory.AddTenant(ctx, name)
				if err != nil {
					return api.Wrap(api.KindOf(err), err, "access.quotas[%d]: registering tenant %s", i, name)
				}
				tenants = append(tenants, t)
				log.Info("access: tenant registered for its quota in access.quotas", "tenant", name)
			}
		}
		l := access.Limits{TokensPerHour: q.TokensPerHour, TokensPerDay: q.TokensPerDay, RPM: q.RPM, TPM: q.TPM, MaxConcurrent: q.MaxConcurrent}
		if err := m.Quotas.Set(ctx, scope, l); err != nil {
			return api.Wrap(api.KindOf(err), err, "access.quotas[%d] (%s)", i, scope)
		}
	}
	log.Info("access: quotas set from access.quotas", "scopes", len(qs))
	return nil
}
