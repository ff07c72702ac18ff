package access

import "context"

// TenantOf names the tenant of a registered agent, DefaultTenant for an agent it does
// not know or cannot read. It reads through the directory's cache, since the kernel
// asks it for every call that may carry a tenant's service-level objective.
func (d *Directory) TenantOf(ctx context.Context, agent string) string {
	a, found, err := d.lookup(ctx, agent)
	if err != nil || !found || a.Tenant == "" {
		return DefaultTenant
	}
	return a.Tenant
}
