package boot

import (
	"context"
	"strings"

	"github.com/aios-go/aios/api"
	"github.com/aios-go/aios/internal/kernel"
	"github.com/aios-go/aios/internal/memory"
	"github.com/aios-go/aios/internal/sched"
)

// A storage or memory call acts in one agent's namespace: the caller's own, or, with
// params.owner, another agent's (AIOS's privilege groups, docs/security.md). The gate
// checks the caller against the owner's namespace; the module then runs as the owner.

// ownerOf is the agent whose namespace c acts in.
func ownerOf(c *kernel.Call) string {
	var o string
	switch p := c.Args.(type) {
	case *api.StorageParams:
		if p != nil {
			o = p.Owner
		}
	case *api.MemoryParams:
		if p != nil {
			o = p.Owner
		}
	}
	if o = strings.TrimSpace(o); o == "" {
		return c.Agent
	}
	return o
}

// ownOnly are the operations that change who the caller is rather than what a namespace
// holds: an agent mounts its own root and attaches itself to blocks, never another.
var ownOnly = map[sched.Module]map[string]bool{
	sched.Storage: {api.StorageMount: true},
	sched.Memory:  {api.MemoryCreateBlock: true, api.MemoryAttachBlock: true, api.MemoryDetachBlock: true},
}

// checkOwner refuses a request for another agent's namespace (owner) unless the access
// manager gates calls (gated): without it there are no groups, and no rule could allow
// it. Services call it at admission, before the call is queued.
func checkOwner(m sched.Module, r kernel.Request, owner string, gated bool) error {
	owner = strings.TrimSpace(owner)
	if owner == "" || owner == r.Agent {
		return nil
	}
	if !gated {
		return api.Errorf(api.PolicyDenied,
			"params.owner names agent %s, but reaching another agent's namespace needs the access manager (access.auth: true), whose privilege groups and policies decide it", owner)
	}
	if ownOnly[m][r.Op] {
		return api.Errorf(api.PolicyDenied, "%s acts on the calling agent only; drop params.owner", r.Op)
	}
	return nil
}

// namespaceFor is the agent a storage or memory request runs as (the owner of the
// namespace it acts in), and the context to run it with.
func namespaceFor(ctx context.Context, m sched.Module, r kernel.Request, owner string, gated bool) (string, context.Context, error) {
	if err := checkOwner(m, r, owner, gated); err != nil {
		return "", ctx, err
	}
	owner = strings.TrimSpace(owner)
	if owner == "" || owner == r.Agent {
		return r.Agent, ctx, nil
	}
	// The notes' history names who changed them, not the namespace they are in.
	return owner, memory.WithActor(ctx, r.Agent), nil
}
