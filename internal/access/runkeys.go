package access

import (
	"context"
	"strconv"

	"github.com/aios-go/aios/api"
	"github.com/aios-go/aios/internal/sqldb"
)

// Keys of the agent runs the kernel starts itself (docs/agents.md): each run gets its own
// agent key, issued as the run starts and revoked as it ends, so a key lives no longer
// than the run that holds it. Each is noted in access_run_keys while it lives, so that
// those a kernel that died left behind can be revoked when it starts again.

type kernelActorKey struct{}

// AsKernel returns ctx marked as the kernel acting on its own account, not for a
// request's caller: the audit log records who as "kernel".
func AsKernel(ctx context.Context) context.Context {
	return context.WithValue(ctx, kernelActorKey{}, true)
}

// IssueRunKey issues a key for one run (program) of agent. An agent that is not
// registered is registered in DefaultTenant with no groups, so it reaches its own
// namespace only; a disabled agent gets no key (policy_denied), so its run does not
// start. The key is shown only here.
func (m *Manager) IssueRunKey(ctx context.Context, agent, program string) (string, KeyInfo, error) {
	a, found, err := m.Directory.read(ctx, agent)
	if err != nil {
		return "", KeyInfo{}, err
	}
	if !found {
		a, err = m.Directory.AddAgent(ctx, Agent{Name: agent})
		if err != nil {
			// Another run of the same agent may have registered it meanwhile.
			var again error
			if a, again = m.Directory.Agent(ctx, agent); again != nil {
				return "", KeyInfo{}, err
			}
		}
	}
	if a.Disabled {
		return "", KeyInfo{}, api.Errorf(api.PolicyDenied,
			"agent %s is disabled in the access manager, so it gets no key and its run does not start; an admin enables it with PATCH /admin/agents/%s {\"disabled\": false}", agent, agent)
	}
	note := func(tx sqldb.Tx, info KeyInfo) error {
		_, err := tx.Exec(ctx, `INSERT INTO access_run_keys (id, program, created) VALUES ($1, $2, $3)`,
			info.ID, program, info.Created.UnixNano())
		return err
	}
	return m.Keys.issue(ctx, KindAgent, agent, map[string]string{"program": program}, note)
}

// RevokeRunKey revokes key id, issued by IssueRunKey, as its run ends.
func (m *Manager) RevokeRunKey(ctx context.Context, id string) error {
	if err := m.Keys.Revoke(ctx, id); err != nil {
		return err
	}
	err := m.store.write(ctx, func(tx sqldb.Tx) error {
		_, err := tx.Exec(ctx, `DELETE FROM access_run_keys WHERE id = $1`, id)
		return err
	})
	return internal(err, "forget run key %s", id)
}

// RevokeOrphanRunKeys revokes the run keys a previous life of this kernel left live:
// their runs ended with it (the runtime keeps no runs across restarts), though a process
// an agent left behind may still hold one. Only for a store this kernel owns alone; on a
// shared PostgreSQL they may be another kernel's live runs'. It returns how many it
// revoked.
func (m *Manager) RevokeOrphanRunKeys(ctx context.Context) (int64, error) {
	if !m.store.exclusive {
		return 0, nil
	}
	now := m.clock.Now().UnixNano()
	var n int64
	err := m.store.write(ctx, func(tx sqldb.Tx) error {
		var err error
		n, err = tx.Exec(ctx, `UPDATE access_keys SET revoked = $1
			WHERE id IN (SELECT id FROM access_run_keys) AND (revoked = 0 OR revoked > $1)`, now)
		if err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `DELETE FROM access_run_keys`)
		return err
	})
	if err != nil {
		return 0, internal(err, "revoke the run keys of the previous run")
	}
	if n == 0 {
		return 0, nil
	}
	m.Keys.mu.Lock()
	clear(m.Keys.cache)
	m.Keys.mu.Unlock()
	_, err = m.Audit.Append(ctx, Entry{Who: "kernel", Action: "key.revoke", Resource: "run-keys", Decision: "done",
		Details: map[string]string{"reason": "the kernel restarted while agent runs held them", "count": strconv.FormatInt(n, 10)}})
	return n, err
}
