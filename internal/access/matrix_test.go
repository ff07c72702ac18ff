package access

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/aios-go/aios/api"
)

// The cast of the access matrix. Group names repeat across tenants on purpose: erin's
// "research" is globex's, not acme's.
var cast = []Agent{
	{Name: "alice", Tenant: "acme", Groups: []string{"research"}},
	{Name: "bob", Tenant: "acme", Groups: []string{"ops", "research"}},
	{Name: "carol", Tenant: "acme", Groups: []string{"ops"}},
	{Name: "dave", Tenant: "acme"},
	{Name: "erin", Tenant: "globex", Groups: []string{"ops", "research"}},
}

type relation string

const (
	self         relation = "self"
	sameGroup    relation = "same group"
	otherGroup   relation = "other group" // same tenant, no group shared
	otherTenant  relation = "other tenant"
	unregistered relation = "unregistered owner"
)

func relationOf(p, o Agent, registered bool) relation {
	switch {
	case !registered:
		return unregistered
	case p.Name == o.Name:
		return self
	case p.Tenant != o.Tenant:
		return otherTenant
	}
	for _, g := range p.Groups {
		if slices.Contains(o.Groups, g) {
			return sameGroup
		}
	}
	return otherGroup
}

// nsOp is an operation on a namespace, with what distinguishes it for policy.
type nsOp struct {
	name string
	act  Action
	c    Context
}

var nsOps = []nsOp{
	{"memory.read", MemoryRead, Context{Path: "/notes"}},
	{"memory.write", MemoryWrite, Context{Path: "/notes"}},
	{"storage.read", StorageRead, Context{Path: "/a.txt"}},
	{"storage.write new file", StorageWrite, Context{Path: "/new.txt"}},
	{"storage.write over a file", StorageWrite, Context{Path: "/a.txt", Exists: true}},
	{"storage.delete", StorageDelete, Context{Path: "/a.txt"}},
	{"storage.rollback", StorageRollback, Context{Path: "/a.txt"}},
	{"storage.share", StorageShare, Context{Path: "/a.txt"}},
	{"tool.log.read", ToolLogRead, Context{}},
}

// expectedNamespace is the explicit table: for each relation between the calling agent
// and the namespace's owner, and each operation, what the gate must decide.
var expectedNamespace = map[relation]map[string]Effect{
	self: {
		"memory.read": Allow, "memory.write": Allow, "storage.read": Allow, "storage.write new file": Allow,
		"storage.write over a file": Ask, "storage.delete": Ask, "storage.rollback": Ask, "storage.share": Allow, "tool.log.read": Allow,
	},
	sameGroup: {
		"memory.read": Allow, "memory.write": Allow, "storage.read": Allow, "storage.write new file": Allow,
		"storage.write over a file": Ask, "storage.delete": Ask, "storage.rollback": Ask, "storage.share": Allow, "tool.log.read": Allow,
	},
	otherGroup: {
		"memory.read": Deny, "memory.write": Deny, "storage.read": Deny, "storage.write new file": Deny,
		"storage.write over a file": Deny, "storage.delete": Deny, "storage.rollback": Deny, "storage.share": Deny, "tool.log.read": Deny,
	},
	otherTenant: {
		"memory.read": Deny, "memory.write": Deny, "storage.read": Deny, "storage.write new file": Deny,
		"storage.write over a file": Deny, "storage.delete": Deny, "storage.rollback": Deny, "storage.share": Deny, "tool.log.read": Deny,
	},
	unregistered: {
		"memory.read": Deny, "memory.write": Deny, "storage.read": Deny, "storage.write new file": Deny,
		"storage.write over a file": Deny, "storage.delete": Deny, "storage.rollback": Deny, "storage.share": Deny, "tool.log.read": Deny,
	},
}

// otherCase is a call on a model, a tool or a route, by an agent or an admin.
type otherCase struct {
	name string
	act  Action
	res  Resource
	c    Context
	// What an agent and an admin get.
	agent, admin Effect
}

var otherCases = []otherCase{
	{"llm on a model", LLMGenerate, Model("sim-llama"), Context{InputTokens: 100, OutputTokens: 100}, Allow, Deny},
	{"tool, no hints", ToolCall, Tool("search"), Context{}, Allow, Deny},
	{"tool the config marks destructive", ToolCall, Tool("rm"), Context{Tool: ToolInfo{Destructive: ptr(true), Hints: Hints{Destructive: ptr(false), ReadOnly: ptr(true)}}}, Ask, Deny},
	{"tool whose server says destructive", ToolCall, Tool("drop"), Context{Tool: ToolInfo{Hints: Hints{Destructive: ptr(true)}}}, Ask, Deny},
	{"tool the server says destructive and config does not", ToolCall, Tool("drop"), Context{Tool: ToolInfo{Destructive: ptr(false), Hints: Hints{Destructive: ptr(true)}}}, Allow, Deny},
	{"tool the server says read-only and destructive", ToolCall, Tool("ls"), Context{Tool: ToolInfo{Hints: Hints{Destructive: ptr(true), ReadOnly: ptr(true)}}}, Allow, Deny},
	{"tool the server says is not destructive", ToolCall, Tool("echo"), Context{Tool: ToolInfo{Hints: Hints{Destructive: ptr(false)}}}, Allow, Deny},
	{"admin.read", AdminRead, Route("/admin/usage"), Context{}, Deny, Allow},
	{"admin.write", AdminWrite, Route("/admin/agents"), Context{}, Deny, Allow},
	{"approval.decide", ApprovalDecide, Route("/v1/approvals/apr_1"), Context{}, Deny, Allow},
}

type cell struct {
	who, what string
	p         Principal
	act       Action
	res       Resource
	c         Context
	want      Effect
}

// matrix lists every combination with its expected decision.
func matrix(m *Manager) []cell {
	var cells []cell
	owners := append(slices.Clone(cast), Agent{Name: "nobody"})
	for _, pa := range cast {
		p := Principal{Kind: KindAgent, Name: pa.Name, Tenant: pa.Tenant, Groups: pa.Groups}
		for i, o := range owners {
			rel := relationOf(pa, o, i < len(cast))
			for _, op := range nsOps {
				cells = append(cells, cell{p.String(), fmt.Sprintf("%s on %s's namespace (%s)", op.name, o.Name, rel),
					p, op.act, Namespace(o.Name), op.c, expectedNamespace[rel][op.name]})
			}
		}
		for _, oc := range otherCases {
			cells = append(cells, cell{p.String(), oc.name, p, oc.act, oc.res, oc.c, oc.agent})
		}
	}
	admin := Principal{Kind: KindAdmin, Name: "ops"}
	for _, o := range cast {
		for _, op := range nsOps {
			cells = append(cells, cell{admin.String(), op.name + " on " + o.Name + "'s namespace", admin, op.act, Namespace(o.Name), op.c, Deny})
		}
	}
	for _, oc := range otherCases {
		cells = append(cells, cell{admin.String(), oc.name, admin, oc.act, oc.res, oc.c, oc.admin})
	}
	// Nobody (no principal) gets nothing.
	for _, oc := range otherCases {
		cells = append(cells, cell{"anonymous", oc.name, Principal{}, oc.act, oc.res, oc.c, Deny})
	}
	for _, op := range nsOps {
		cells = append(cells, cell{"anonymous", op.name, Principal{}, op.act, Namespace("alice"), op.c, Deny})
	}
	return cells
}

func registerCast(t *testing.T, m *Manager) {
	ctx := context.Background()
	for _, tn := range []string{"acme", "globex"} {
		must[Tenant](t)(m.Directory.AddTenant(ctx, tn))
	}
	for _, a := range cast {
		must[Agent](t)(m.Directory.AddAgent(ctx, a))
	}
}

// TestAccessMatrix checks every combination of agent, group relation, operation and
// resource against the table above: zero unauthorized successes (allowed where the
// table denies, or allowed without approval where it asks) and zero wrongful denials.
// It runs the policies alone (Evaluate), then the whole gate (Check) with an approver
// that approves everything, on each backend.
func TestAccessMatrix(t *testing.T) {
	forEachBackend(t, func(t *testing.T, cfg StoreConfig) {
		ctx := context.Background()
		m := open(t, cfg, newFakeClock(), "")
		registerCast(t, m)
		cells := matrix(m)

		relations := map[relation]bool{}
		for _, pa := range cast {
			for i, o := range append(slices.Clone(cast), Agent{Name: "nobody"}) {
				relations[relationOf(pa, o, i < len(cast))] = true
			}
		}
		if len(relations) != 5 {
			t.Fatalf("the cast covers relations %v, want all five", relations)
		}

		var unauthorized, wrongful, friction int
		for _, c := range cells {
			r, err := m.Evaluate(ctx, c.p, c.act, c.res, c.c)
			if err != nil {
				t.Fatal(err)
			}
			switch {
			case r.Effect == c.want:
				continue
			case c.want == Deny || (c.want == Ask && r.Effect == Allow):
				unauthorized++
			case r.Effect == Deny:
				wrongful++
			default:
				friction++ // asked where the table allows
			}
			t.Errorf("%s: %s: %s (%s), want %s", c.who, c.what, r.Effect, r.Reason, c.want)
		}
		t.Logf("evaluate: %d cells, %d unauthorized successes, %d wrongful denials, %d needless asks", len(cells), unauthorized, wrongful, friction)

		// The whole gate: an approver approves every ask, so each call succeeds exactly
		// when the table does not deny it, and asks exactly when it says ask.
		sub, stop := m.Approvals.Subscribe()
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ap := range sub {
				if _, err := m.Approvals.Decide(ctx, ap.ID, true, "admin:ops", "matrix"); err != nil {
					t.Error(err)
				}
			}
		}()
		defer func() { stop(); wg.Wait() }()

		unauthorized, wrongful = 0, 0
		for _, c := range cells {
			d, err := m.Check(ctx, c.p, c.act, c.res, c.c)
			ok := err == nil
			switch {
			case c.want == Deny && ok:
				unauthorized++
				t.Errorf("check: %s: %s passed the gate", c.who, c.what)
			case c.want != Deny && !ok:
				wrongful++
				t.Errorf("check: %s: %s refused: %v", c.who, c.what, err)
			case !ok && kindOf(err) != api.PolicyDenied:
				t.Errorf("check: %s: %s: %v, want policy_denied", c.who, c.what, err)
			case ok && (c.want == Ask) != (d.Approval != nil):
				unauthorized++
				t.Errorf("check: %s: %s: approval %v, want an approval only for ask", c.who, c.what, d.Approval)
			}
			d.Release(0)
		}
		t.Logf("check: %d cells, %d unauthorized successes, %d wrongful denials", len(cells), unauthorized, wrongful)
		if n, err := m.Audit.Verify(ctx); err != nil {
			t.Fatalf("audit chain after the matrix: %d %v", n, err)
		}
	})
}
