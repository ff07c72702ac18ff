package access

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Kind tells agents from admins. Admin keys and agent keys are different keys with
// different prefixes: an agent's key can never pass for an admin's.
type Kind string

const (
	KindAgent Kind = "agent"
	KindAdmin Kind = "admin"
)

// DefaultTenant holds agents registered without a tenant, and agents that are not
// registered at all when authentication is off.
const DefaultTenant = "default"

// Principal is who makes a call: an agent (of a tenant, in groups of that tenant) or an
// admin.
type Principal struct {
	Kind   Kind
	Name   string
	Tenant string   // agents only
	Groups []string // agents only: group names within Tenant
	// KeyID is the key that proved the identity; empty when authentication is off and
	// the name was taken on the caller's word.
	KeyID string
}

// String is how the audit log and error messages name p: "agent:alice", "admin:ops".
func (p Principal) String() string {
	if p.Kind == "" {
		return "anonymous"
	}
	return string(p.Kind) + ":" + p.Name
}

// IsAgent reports whether p is an agent.
func (p Principal) IsAgent() bool { return p.Kind == KindAgent }

type principalKey struct{}

// WithPrincipal returns ctx carrying p: the server's authentication sets it, handlers and
// the mutations of this package (which record who did them) read it.
func WithPrincipal(ctx context.Context, p Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// PrincipalFrom returns the principal ctx carries.
func PrincipalFrom(ctx context.Context) (Principal, bool) {
	p, ok := ctx.Value(principalKey{}).(Principal)
	return p, ok
}

// actor names who performs a mutation: the principal in ctx, "kernel" for what the
// kernel does on its own (AsKernel), or "local" for the CLI and boot code that open the
// store directly (whoever can, owns the machine anyway).
func actor(ctx context.Context) string {
	if p, ok := PrincipalFrom(ctx); ok {
		return p.String()
	}
	if ctx.Value(kernelActorKey{}) != nil {
		return "kernel"
	}
	return "local"
}

// Action is what a syscall or route does. The set is closed: Cedar policies name these.
type Action string

const (
	LLMGenerate     Action = "llm.generate"
	MemoryRead      Action = "memory.read"
	MemoryWrite     Action = "memory.write"
	StorageRead     Action = "storage.read"
	StorageWrite    Action = "storage.write"
	StorageDelete   Action = "storage.delete"
	StorageRollback Action = "storage.rollback"
	StorageShare    Action = "storage.share"
	ToolCall        Action = "tool.call"
	ToolLogRead     Action = "tool.log.read" // an agent's log of tool calls (GET /v1/tools/calls)
	AdminRead       Action = "admin.read"
	AdminWrite      Action = "admin.write"
	ApprovalDecide  Action = "approval.decide"
)

// actionInfo says on which kind of resource an action acts and the action groups it
// belongs to, which policies may name: `action in Action::"storage"`.
var actionInfo = map[Action]struct {
	resource ResourceKind
	groups   []string
}{
	LLMGenerate:     {ResourceModel, []string{"llm"}},
	MemoryRead:      {ResourceNamespace, []string{"memory", "namespace", "read"}},
	MemoryWrite:     {ResourceNamespace, []string{"memory", "namespace", "write"}},
	StorageRead:     {ResourceNamespace, []string{"storage", "namespace", "read"}},
	StorageWrite:    {ResourceNamespace, []string{"storage", "namespace", "write"}},
	StorageDelete:   {ResourceNamespace, []string{"storage", "namespace", "write"}},
	StorageRollback: {ResourceNamespace, []string{"storage", "namespace", "write"}},
	StorageShare:    {ResourceNamespace, []string{"storage", "namespace", "write"}},
	ToolCall:        {ResourceTool, []string{"tool"}},
	ToolLogRead:     {ResourceNamespace, []string{"namespace", "read"}},
	AdminRead:       {ResourceRoute, []string{"admin"}},
	AdminWrite:      {ResourceRoute, []string{"admin"}},
	ApprovalDecide:  {ResourceRoute, []string{"admin"}},
}

// Actions lists every action, sorted.
func Actions() []Action {
	out := make([]Action, 0, len(actionInfo))
	for a := range actionInfo {
		out = append(out, a)
	}
	slices.Sort(out)
	return out
}

// ResourceKind is the Cedar entity type of a resource.
type ResourceKind string

const (
	ResourceModel     ResourceKind = "Model"     // an LLM by the name calls use
	ResourceNamespace ResourceKind = "Namespace" // an agent's memory and storage; Name is the agent
	ResourceTool      ResourceKind = "Tool"      // a tool by its registry name
	ResourceRoute     ResourceKind = "Route"     // an admin route, by path
)

// Resource is what an action acts on.
type Resource struct {
	Kind ResourceKind
	Name string
}

func Model(name string) Resource      { return Resource{ResourceModel, name} }
func Namespace(agent string) Resource { return Resource{ResourceNamespace, agent} }
func Tool(name string) Resource       { return Resource{ResourceTool, name} }
func Route(path string) Resource      { return Resource{ResourceRoute, path} }

func (r Resource) String() string { return string(r.Kind) + ":" + r.Name }

// Context is what a policy may know of a call besides who, what and on what.
type Context struct {
	// Time is when the call is made; zero means now.
	Time time.Time
	// Path is the file or memory path within a Namespace.
	Path string
	// Exists says the file a storage.write writes is there already: an overwrite.
	Exists bool
	// InputTokens and OutputTokens estimate an LLM call (the prompt, and at most the
	// call's max tokens); their sum is what quotas admit against.
	InputTokens, OutputTokens int64
	// Tool describes the tool of a tool.call.
	Tool ToolInfo
}

// Tokens is the call's token estimate.
func (c Context) Tokens() int64 { return max(0, c.InputTokens) + max(0, c.OutputTokens) }

// Hints are a tool server's MCP annotations. nil is "not said", which is not false.
type Hints struct {
	ReadOnly, Destructive, Idempotent, OpenWorld *bool
}

// ToolInfo is what the kernel knows of a tool.
type ToolInfo struct {
	// Hints are what the tool's server says of it: a party the kernel does not control.
	Hints Hints
	// Destructive is the operator's word from config, when given; it wins over Hints.
	Destructive *bool
	// Source is where the tool comes from: "builtin", "http", "mcp:<server>".
	Source string
}

// IsDestructive says whether a call of the tool must be treated as destructive. The
// operator's config decides when it says anything. Otherwise a server's hint may make a
// tool destructive but never vouch for it: only an explicit destructiveHint true (not
// contradicted by readOnlyHint true, which MCP says makes destructiveHint meaningless)
// counts. A server that wants to escape approval can therefore only stay silent, and an
// operator who does not trust a server marks its tools in config.
func (t ToolInfo) IsDestructive() bool {
	if t.Destructive != nil {
		return *t.Destructive
	}
	if t.Hints.ReadOnly != nil && *t.Hints.ReadOnly {
		return false
	}
	return t.Hints.Destructive != nil && *t.Hints.Destructive
}

// ValidName says whether s may name a tenant, agent or group (what: which, for the
// error), the rule the directory applies; config checks quota entries with it so that
// a bad name stops the kernel at load. slash allows "/", in agent names only.
func ValidName(what, s string, slash bool) error { return checkName(what, s, slash) }

// checkName validates a tenant, agent or group name. Names become Cedar entity ids and
// audit fields, so they are kept printable and short; "/" is left out of tenant and
// group names because a group's entity id is "tenant/group".
func checkName(what, s string, slash bool) error {
	if s == "" || len(s) > 128 {
		return fmt.Errorf("%s name %q must be 1 to 128 characters", what, s)
	}
	for _, r := range s {
		ok := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' ||
			strings.ContainsRune("._-@:", r) || slash && r == '/'
		if !ok {
			allowed := "letters, digits and . _ - @ :"
			if slash {
				allowed += " /"
			}
			return fmt.Errorf("%s name %q may contain only %s", what, s, allowed)
		}
	}
	return nil
}
