package boot

import (
	"context"

	"github.com/aios-go/aios/internal/access"
	"github.com/aios-go/aios/internal/config"
	"github.com/aios-go/aios/internal/sched"
)

// objectives are the configured SLOs as the kernel takes them. Tenants' apply through
// the access manager's directory (config refuses them without one); m is nil then.
func objectives(slos []config.SLO, m *access.Manager) sched.Objectives {
	var o sched.Objectives
	for _, s := range slos {
		v := sched.SLO{TCT: s.TCT, TTFT: s.TTFT}
		if s.Agent != "" {
			if o.Agents == nil {
				o.Agents = map[string]sched.SLO{}
			}
			o.Agents[s.Agent] = v
			continue
		}
		if o.Tenants == nil {
			o.Tenants = map[string]sched.SLO{}
		}
		o.Tenants[s.Tenant] = v
	}
	if m != nil && len(o.Tenants) > 0 {
		o.TenantOf = func(agent string) string { return m.Directory.TenantOf(context.Background(), agent) }
	}
	return o
}
