package boot

import (
	"context"
	"log/slog"
	"time"

	"github.com/aios-go/aios/api"
	"github.com/aios-go/aios/internal/access"
)

// revokeTimeout bounds revoking a run's key as the run ends.
const revokeTimeout = 10 * time.Second

// agentKeys issues each agent run the runtime starts its own key from m
// (agents.Options.Keys): an unregistered agent is registered in the default tenant with
// no groups, a disabled one does not start. The kernel is recorded as the issuer and
// revoker in the audit log; the issue names the run's program.
func agentKeys(m *access.Manager, log *slog.Logger) func(context.Context, string, string) (string, func(), error) {
	return func(ctx context.Context, agent, program string) (string, func(), error) {
		key, info, err := m.IssueRunKey(access.AsKernel(ctx), agent, program)
		if err != nil {
			return "", nil, api.Wrap(api.KindOf(err), err, "agent %s gets no API key for its run", agent)
		}
		revoke := func() {
			// The run's own context is over by now; the revocation must still happen.
			ctx, cancel := context.WithTimeout(context.Background(), revokeTimeout)
			defer cancel()
			if err := m.RevokeRunKey(access.AsKernel(ctx), info.ID); err != nil {
				log.Error("agents: the run's key was not revoked; an admin can revoke it with DELETE /admin/keys/"+info.ID,
					"agent", agent, "program", program, "key", info.ID, "err", err)
			}
		}
		return key, revoke, nil
	}
}
