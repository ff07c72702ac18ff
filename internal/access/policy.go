package access

import (
	_ "embed"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/cedar-policy/cedar-go"
	"github.com/cedar-policy/cedar-go/types"
	xast "github.com/cedar-policy/cedar-go/x/exp/ast"
)

//go:embed base.cedar
var basePolicies []byte

// BuiltinPolicies is the text of the built-in policies, for documentation and tools.
func BuiltinPolicies() string { return string(basePolicies) }

const builtinFile = "builtin:base.cedar"

// Effect is a decision's outcome. Cedar itself knows only permit and forbid; Ask is
// Allow with a condition (see PolicySet).
type Effect string

const (
	Allow Effect = "allow"
	Deny  Effect = "deny"
	Ask   Effect = "ask"
)

// PolicyFile is one source of Cedar policies.
type PolicyFile struct {
	Name string
	Text []byte
}

// PolicyError says why a policy source was refused and where.
type PolicyError struct {
	File         string
	Line, Column int // 0 when the fault has no one place
	Msg          string
}

func (e *PolicyError) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("%s:%d:%d: %s", e.File, e.Line, e.Column, e.Msg)
	}
	return e.File + ": " + e.Msg
}

// PolicySet is a compiled, immutable set of policies in three parts:
//
//   - grant: permit and forbid policies, with Cedar's own semantics: denied unless some
//     permit matches, and any matching forbid wins over every permit, whatever the
//     order of policies or files.
//   - ask: permit policies annotated @ask("reason"). They never grant: among calls
//     grant allows, one that any of them matches needs a person's approval.
//   - noask: permit policies annotated @noask. A call one of them matches does not
//     need approval even if an @ask policy matches it: how an operator exempts, say,
//     overwrites under /scratch from the built-in ask on overwrite.
//
// Each part is evaluated by Cedar's authorizer on its own, so within each, order does
// not matter either.
type PolicySet struct {
	grant, ask, noask *cedar.PolicySet
	info              map[cedar.PolicyID]policyInfo
	files             []string
}

type policyInfo struct {
	ask string // the reason of an @ask policy
	pos cedar.Position
}

// Files lists the sources the set was compiled from.
func (ps *PolicySet) Files() []string { return slices.Clone(ps.files) }

// Len is the number of policies in the set.
func (ps *PolicySet) Len() int { return len(ps.info) }

var (
	cedarPos    = regexp.MustCompile(`<input>:(\d+):(\d+):? ?`)
	exactGot    = regexp.MustCompile(`exact got (.*) want (.*)$`)
	quotedToken = regexp.MustCompile(`^("(?:[^"\\]|\\.)*"): `)
)

// lastTextLine is the line and column just past the last non-blank text.
func lastTextLine(text []byte) (int, int) {
	lines := strings.Split(strings.TrimRight(string(text), " \t\r\n"), "\n")
	return len(lines), len([]rune(lines[len(lines)-1])) + 1
}

// CompilePolicies parses files into one set. A file that does not parse, a policy that
// names an entity type or action the kernel does not have (a typo that would make a
// forbid silently never match), a misused @ask or @noask, or an @id used twice, is
// refused with the file and line at fault.
func CompilePolicies(files ...PolicyFile) (ps *PolicySet, err error) {
	ps = &PolicySet{grant: cedar.NewPolicySet(), ask: cedar.NewPolicySet(), noask: cedar.NewPolicySet(),
		info: map[cedar.PolicyID]policyInfo{}}
	for _, f := range files {
		list, err := parseFile(f)
		if err != nil {
			return nil, err
		}
		ps.files = append(ps.files, f.Name)
		for _, p := range list {
			if err := ps.add(f.Name, p); err != nil {
				return nil, err
			}
		}
	}
	return ps, nil
}

func parseFile(f PolicyFile) (list cedar.PolicyList, err error) {
	// The parser is a third party's, fed text from a file anyone with access to the
	// policy directory can write: a panic in it must refuse the file, not stop the kernel.
	defer func() {
		if r := recover(); r != nil {
			list, err = nil, &PolicyError{File: f.Name, Msg: fmt.Sprintf("the Cedar parser failed on this file: %v", r)}
		}
	}()
	list, err = cedar.NewPolicyListFromBytes(f.Name, f.Text)
	if err != nil {
		pe := &PolicyError{File: f.Name, Msg: strings.TrimPrefix(err.Error(), "parser error: ")}
		if m := cedarPos.FindStringSubmatchIndex(pe.Msg); m != nil {
			pe.Line, _ = strconv.Atoi(pe.Msg[m[2]:m[3]])
			pe.Column, _ = strconv.Atoi(pe.Msg[m[4]:m[5]])
			pe.Msg = strings.TrimPrefix(pe.Msg[:m[0]]+pe.Msg[m[1]:], "parse error at ")
			pe.Msg = strings.TrimSpace(pe.Msg)
		}
		if rest, ok := strings.CutPrefix(pe.Msg, `"": `); ok {
			// The parser met the end of the file: the fault is at the end of the last
			// line with text on it (a missing ";" or "}"), not on the empty line after.
			pe.Msg = "the file ends too early: " + rest
			pe.Line, pe.Column = lastTextLine(f.Text)
		}
		if m := exactGot.FindStringSubmatch(pe.Msg); m != nil {
			found := strconv.Quote(m[1])
			if m[1] == "" {
				found = "the end of the file"
			}
			pe.Msg = strings.Replace(pe.Msg, m[0], fmt.Sprintf("expected %q, found %s", m[2], found), 1)
			pe.Msg = quotedToken.ReplaceAllString(pe.Msg, "")
		} else {
			pe.Msg = quotedToken.ReplaceAllString(pe.Msg, "at $1: ")
		}
		return nil, pe
	}
	return list, nil
}

func (ps *PolicySet) add(file string, p *cedar.Policy) error {
	pos := p.Position()
	fail := func(format string, args ...any) error {
		return &PolicyError{File: file, Line: pos.Line, Column: pos.Column, Msg: fmt.Sprintf(format, args...)}
	}
	ann := p.Annotations()
	id := cedar.PolicyID(fmt.Sprintf("%s:%d", file, pos.Line))
	if v, ok := ann["id"]; ok {
		id = cedar.PolicyID(v)
	}
	if prev, dup := ps.info[id]; dup {
		return fail("policy id %q is used already at %s:%d", id, prev.pos.Filename, prev.pos.Line)
	}
	if err := checkScope(p); err != nil {
		return fail("%v", err)
	}
	reason, ask := ann["ask"]
	_, noask := ann["noask"]
	switch {
	case ask && noask:
		return fail("a policy is @ask or @noask, not both")
	case (ask || noask) && p.Effect() != cedar.Permit:
		return fail("@ask and @noask go on permit policies (they say which allowed calls need approval); a forbid denies outright")
	case ask && strings.TrimSpace(string(reason)) == "":
		return fail("@ask needs a reason, which the approver reads: @ask(\"deleting a file cannot be undone\")")
	case ask:
		ps.ask.Add(id, p)
	case noask:
		ps.noask.Add(id, p)
	default:
		ps.grant.Add(id, p)
	}
	ps.info[id] = policyInfo{ask: string(reason), pos: pos}
	return nil
}

var (
	principalTypes = []types.EntityType{"Agent", "Admin", "Tenant", "Group"}
	resourceTypes  = []types.EntityType{"Model", "Namespace", "Tool", "Route", "Agent", "Tenant", "Group"}
)

// actionGroups are the Action entities policies may name besides the actions.
var actionGroups = func() map[string]bool {
	g := map[string]bool{}
	for _, info := range actionInfo {
		for _, n := range info.groups {
			g[n] = true
		}
	}
	return g
}()

func knownAction(id types.String) bool {
	_, ok := actionInfo[Action(id)]
	return ok || actionGroups[string(id)]
}

// checkScope refuses entity types and actions the kernel never sends: Cedar has no
// schema here to catch `Action::"storage.delte"`, and such a forbid would never match.
func checkScope(p *cedar.Policy) error {
	a := p.AST()
	uid := func(where string, u types.EntityUID, allowed []types.EntityType) error {
		if u.Type == "Action" {
			if !knownAction(u.ID) {
				return fmt.Errorf("unknown action %s in the %s; the actions are %s and the groups %s",
					u, where, strings.Join(actionNames(), ", "), strings.Join(groupNames(), ", "))
			}
			return nil
		}
		if !slices.Contains(allowed, u.Type) {
			return fmt.Errorf("unknown entity type %s in the %s; it may be one of %s", u.Type, where, typeNames(allowed))
		}
		return nil
	}
	typ := func(where string, t types.EntityType, allowed []types.EntityType) error {
		if !slices.Contains(allowed, t) {
			return fmt.Errorf("unknown entity type %s in the %s; it may be one of %s", t, where, typeNames(allowed))
		}
		return nil
	}
	scope := func(where string, n any, allowed []types.EntityType) error {
		switch s := n.(type) {
		case xast.ScopeTypeEq:
			return uid(where, s.Entity, allowed)
		case xast.ScopeTypeIn:
			return uid(where, s.Entity, allowed)
		case xast.ScopeTypeInSet:
			for _, e := range s.Entities {
				if err := uid(where, e, allowed); err != nil {
					return err
				}
			}
		case xast.ScopeTypeIs:
			return typ(where, s.Type, allowed)
		case xast.ScopeTypeIsIn:
			if err := typ(where, s.Type, allowed); err != nil {
				return err
			}
			return uid(where, s.Entity, allowed)
		}
		return nil
	}
	if err := scope("principal", a.Principal, principalTypes); err != nil {
		return err
	}
	if err := scope("action", a.Action, []types.EntityType{"Action"}); err != nil {
		return err
	}
	if err := scope("resource", a.Resource, resourceTypes); err != nil {
		return err
	}
	all := append(slices.Clone(resourceTypes), "Admin", "Action")
	var bad error
	for _, c := range a.Conditions {
		xast.Inspect(xast.NewNode(c.Body), func(n xast.IsNode) bool {
			v, ok := n.(xast.NodeValue)
			if !ok || bad != nil {
				return bad == nil
			}
			if u, ok := v.Value.(types.EntityUID); ok {
				bad = uid("condition", u, all)
			}
			return true
		})
	}
	return bad
}

func actionNames() []string {
	var out []string
	for _, a := range Actions() {
		out = append(out, string(a))
	}
	return out
}

func groupNames() []string {
	var out []string
	for g := range actionGroups {
		out = append(out, g)
	}
	slices.Sort(out)
	return out
}

func typeNames(ts []types.EntityType) string {
	var out []string
	for _, t := range ts {
		out = append(out, string(t))
	}
	return strings.Join(out, ", ")
}

// Result is what a policy set says of one request.
type Result struct {
	Effect Effect
	// Policies are the ids of the policies that decided: the forbids that denied, the
	// permits that allowed, the @ask policies that ask (and @noask ones that exempted).
	Policies []string
	// Reason says why, for people: the forbidding policies, "no policy permits ...",
	// or the @ask reasons.
	Reason string
	// Errors are policies that failed to evaluate (a missing attribute, a type error).
	// Cedar skips them, so a forbid that errors does not deny: write `has` guards.
	Errors []string
}

func (ps *PolicySet) evaluate(em cedar.EntityMap, req cedar.Request) Result {
	var r Result
	d, diag := ps.grant.IsAuthorized(em, req)
	r.Errors = diagErrors(diag)
	if d == cedar.Deny {
		r.Effect = Deny
		r.Policies = reasonIDs(diag)
		if len(r.Policies) > 0 {
			r.Reason = "forbidden by policy " + strings.Join(r.Policies, ", ")
		} else {
			r.Reason = "no policy permits it"
		}
		return r
	}
	granted := reasonIDs(diag)
	a, adiag := ps.ask.IsAuthorized(em, req)
	r.Errors = append(r.Errors, diagErrors(adiag)...)
	if a == cedar.Deny {
		r.Effect, r.Policies = Allow, granted
		return r
	}
	n, ndiag := ps.noask.IsAuthorized(em, req)
	r.Errors = append(r.Errors, diagErrors(ndiag)...)
	if n == cedar.Allow {
		r.Effect, r.Policies = Allow, append(granted, reasonIDs(ndiag)...)
		return r
	}
	r.Effect, r.Policies = Ask, reasonIDs(adiag)
	var reasons []string
	for _, id := range r.Policies {
		reasons = append(reasons, ps.info[cedar.PolicyID(id)].ask)
	}
	slices.Sort(reasons)
	r.Reason = strings.Join(slices.Compact(reasons), "; ")
	return r
}

func reasonIDs(d cedar.Diagnostic) []string {
	var out []string
	for _, r := range d.Reasons {
		out = append(out, string(r.PolicyID))
	}
	slices.Sort(out)
	return out
}

func diagErrors(d cedar.Diagnostic) []string {
	var out []string
	for _, e := range d.Errors {
		out = append(out, fmt.Sprintf("policy %s: %s", e.PolicyID, e.Message))
	}
	slices.Sort(out)
	return out
}
