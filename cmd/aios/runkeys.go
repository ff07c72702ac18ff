package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"time"

	"github.com/aios-go/aios/api"
	"github.com/aios-go/aios/internal/access"
)

// The agent key of a run `aios agents run` starts. The kernel's own runtime issues its
// runs' keys from its access manager; this command runs the agent in its own process,
// so it asks the kernel's admin API instead, with the operator's admin key.

// runKeys says how runs get their keys from the kernel at base: nil when the kernel has
// no authentication (its admin routes answer 501), the admin API when it has and the
// admin key is accepted, and an error naming --admin-key when it is missing or refused.
func runKeys(ctx context.Context, base, adminKey string, stderr io.Writer) (func(context.Context, string, string) (string, func(), error), error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/admin/agents", nil)
	if err != nil {
		return nil, err
	}
	setAdminKey(req, adminKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("no kernel answers at %s: %w", base, err)
	}
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusOK:
		return remoteKeys(base, adminKey, stderr), nil
	case resp.StatusCode == http.StatusNotImplemented:
		return nil, nil // access.auth is off: the kernel checks no keys
	}
	if err := adminAuthError("the kernel at "+base+" checks API keys, and the agent's run gets its own from the admin API", resp.StatusCode, b, adminKey); err != nil {
		return nil, err
	}
	return nil, fmt.Errorf("GET %s/admin/agents: %s: %s", base, resp.Status, errorDetail(b))
}

// remoteKeys issues each run a key of its agent through the admin API, registering the
// agent (tenant default, no groups) when the kernel does not know it, and revokes the key
// as the run ends.
func remoteKeys(base, adminKey string, stderr io.Writer) func(context.Context, string, string) (string, func(), error) {
	return func(ctx context.Context, agent, program string) (string, func(), error) {
		var list struct {
			Agents []access.Agent `json:"agents"`
		}
		if err := adminCall(ctx, http.MethodGet, base+"/admin/agents", adminKey, nil, &list); err != nil {
			return "", nil, err
		}
		var issued struct {
			Key  string         `json:"key"`
			Info access.KeyInfo `json:"info"`
		}
		i := slices.IndexFunc(list.Agents, func(a access.Agent) bool { return a.Name == agent })
		var err error
		switch {
		case i < 0:
			// Registering answers with the agent's first key.
			err = adminCall(ctx, http.MethodPost, base+"/admin/agents", adminKey, map[string]any{"name": agent}, &issued)
			if err == nil {
				fmt.Fprintf(stderr, "aios: agent %s registered in tenant %s with no groups\n", agent, access.DefaultTenant)
			}
		case list.Agents[i].Disabled:
			return "", nil, api.Errorf(api.PolicyDenied,
				"agent %s is disabled in the kernel's access manager, so its run does not start; an admin enables it with PATCH /admin/agents/%s {\"disabled\": false}", agent, agent)
		default:
			err = adminCall(ctx, http.MethodPost, base+"/admin/agents/"+url.PathEscape(agent)+"/keys", adminKey, nil, &issued)
		}
		if err != nil {
			return "", nil, fmt.Errorf("agent %s gets no key for its run: %w", agent, err)
		}
		id := issued.Info.ID
		revoke := func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := adminCall(ctx, http.MethodDelete, base+"/admin/keys/"+url.PathEscape(id), adminKey, nil, nil); err != nil {
				fmt.Fprintf(stderr, "aios: the run's key %s was not revoked (revoke it with DELETE /admin/keys/%s): %v\n", id, id, err)
			}
		}
		return issued.Key, revoke, nil
	}
}
