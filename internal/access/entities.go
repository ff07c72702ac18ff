package access

import (
	"time"

	"github.com/cedar-policy/cedar-go"
	"github.com/cedar-policy/cedar-go/types"
)

// The Cedar model. Principals: Agent::"alice" (attributes name and tenant; parents its
// Tenant and its Groups), Admin::"ops"; Group::"acme/research" (a group's id is
// "tenant/group", so equal group names in two tenants are two groups) whose parent is
// its Tenant::"acme". Actions: Action::"storage.write" and so on, whose parents are the
// action groups (Action::"storage", Action::"namespace", Action::"write"). Resources:
// Model::"name", Namespace::"agent" (attributes owner, tenant, groups: the owner's
// groups), Tool::"name", Route::"/admin/...". The context is described at buildContext.

func agentUID(name string) types.EntityUID  { return cedar.NewEntityUID("Agent", types.String(name)) }
func tenantUID(name string) types.EntityUID { return cedar.NewEntityUID("Tenant", types.String(name)) }
func groupUID(t, g string) types.EntityUID  { return cedar.NewEntityUID("Group", types.String(t+"/"+g)) }
func actionUID(name string) types.EntityUID { return cedar.NewEntityUID("Action", types.String(name)) }
func adminUID(name string) types.EntityUID  { return cedar.NewEntityUID("Admin", types.String(name)) }
func resourceUID(r Resource) types.EntityUID {
	return cedar.NewEntityUID(types.EntityType(r.Kind), types.String(r.Name))
}

// owner is what the gate knows of a namespace's owner: registered or not.
type owner struct {
	tenant string
	groups []string
}

// buildRequest turns a call into Cedar's request and the entities it needs. own is the
// owner of a Namespace resource (ignored for other resources).
func buildRequest(p Principal, act Action, res Resource, c Context, own owner, now time.Time) (cedar.EntityMap, cedar.Request) {
	em := cedar.EntityMap{}
	put := func(uid types.EntityUID, attrs cedar.RecordMap, parents ...types.EntityUID) {
		em[uid] = cedar.Entity{UID: uid, Parents: cedar.NewEntityUIDSet(parents...), Attributes: cedar.NewRecord(attrs)}
	}
	tenantOf := func(t string) string {
		if t == "" {
			return DefaultTenant
		}
		return t
	}
	groups := func(t string, gs []string) []types.EntityUID {
		out := make([]types.EntityUID, 0, len(gs))
		for _, g := range gs {
			u := groupUID(t, g)
			put(u, nil, tenantUID(t))
			out = append(out, u)
		}
		put(tenantUID(t), nil)
		return out
	}

	var principal types.EntityUID
	switch p.Kind {
	case KindAgent:
		t := tenantOf(p.Tenant)
		principal = agentUID(p.Name)
		parents := append(groups(t, p.Groups), tenantUID(t))
		put(principal, cedar.RecordMap{"name": types.String(p.Name), "tenant": tenantUID(t)}, parents...)
	case KindAdmin:
		principal = adminUID(p.Name)
		put(principal, cedar.RecordMap{"name": types.String(p.Name)})
	default:
		// Nobody: no built-in policy permits an entity of this type anything.
		principal = cedar.NewEntityUID("Anonymous", "")
	}

	action := actionUID(string(act))
	var parents []types.EntityUID
	for _, g := range actionInfo[act].groups {
		parents = append(parents, actionUID(g))
	}
	put(action, nil, parents...)

	resource := resourceUID(res)
	switch res.Kind {
	case ResourceNamespace:
		t := tenantOf(own.tenant)
		gs := groups(t, own.groups)
		vals := make([]types.Value, len(gs))
		for i, g := range gs {
			vals[i] = g
		}
		put(resource, cedar.RecordMap{"owner": agentUID(res.Name), "tenant": tenantUID(t), "groups": cedar.NewSet(vals...)})
	case ResourceTool:
		put(resource, cedar.RecordMap{"destructive": types.Boolean(c.Tool.IsDestructive()), "source": types.String(c.Tool.Source)})
	default:
		put(resource, nil)
	}
	return em, cedar.Request{Principal: principal, Action: action, Resource: resource, Context: buildContext(c, now)}
}

// buildContext is the context record every request carries, with every attribute
// present whatever the action, so a policy reading context.path on a tool call sees ""
// instead of failing to evaluate (Cedar skips a policy that errors, and a skipped
// forbid denies nothing):
//
//	time: Long (Unix seconds)    now: datetime    hour: Long (0-23, UTC)
//	path: String                 exists: Bool
//	inputTokens, outputTokens, tokens: Long
//	destructive: Bool (ToolInfo.IsDestructive)   source: String (the tool's source)
//	annotations: the tool server's hints as sent: a record with those of readOnlyHint,
//	  destructiveHint, idempotentHint, openWorldHint it said (test with `has`).
func buildContext(c Context, now time.Time) cedar.Record {
	t := c.Time
	if t.IsZero() {
		t = now
	}
	hints := cedar.RecordMap{}
	for k, v := range map[types.String]*bool{
		"readOnlyHint": c.Tool.Hints.ReadOnly, "destructiveHint": c.Tool.Hints.Destructive,
		"idempotentHint": c.Tool.Hints.Idempotent, "openWorldHint": c.Tool.Hints.OpenWorld,
	} {
		if v != nil {
			hints[k] = types.Boolean(*v)
		}
	}
	return cedar.NewRecord(cedar.RecordMap{
		"time":         types.Long(t.Unix()),
		"now":          cedar.NewDatetime(t),
		"hour":         types.Long(t.UTC().Hour()),
		"path":         types.String(c.Path),
		"exists":       types.Boolean(c.Exists),
		"inputTokens":  types.Long(max(0, c.InputTokens)),
		"outputTokens": types.Long(max(0, c.OutputTokens)),
		"tokens":       types.Long(c.Tokens()),
		"destructive":  types.Boolean(c.Tool.IsDestructive()),
		"source":       types.String(c.Tool.Source),
		"annotations":  cedar.NewRecord(hints),
	})
}
