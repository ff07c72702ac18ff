package tool

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/aios-go/aios/api"
)

func TestRegister(t *testing.T) {
	long := strings.Repeat("a", 129)
	cases := []struct {
		name    string
		tool    Tool
		wantErr string // "" means registered
	}{
		{"plain", newTool("calc", "builtin", `{"type":"object"}`, nil), ""},
		{"dots and dashes", newTool("srv__get-page.v2", "mcp:srv", ``, nil), ""},
		{"128 characters", newTool(long[:128], "builtin", ``, nil), ""},
		{"empty name", newTool("", "builtin", ``, nil), "tool name"},
		{"slash", newTool("a/b", "builtin", ``, nil), "tool name"},
		{"space", newTool("a b", "builtin", ``, nil), "tool name"},
		{"129 characters", newTool(long, "builtin", ``, nil), "tool name"},
		{"nil tool", nil, "nil tool"},
		{"schema not JSON", newTool("x", "builtin", `{"type":`, nil), "not JSON"},
		{"schema invalid", newTool("x", "builtin", `{"type":5}`, nil), "does not compile"},
		{"remote $ref", newTool("x", "builtin", `{"type":"object","properties":{"a":{"$ref":"https://example.com/a.json"}}}`, nil), "does not compile"},
		{"relative $ref to a file", newTool("x", "builtin", `{"$ref":"other.json"}`, nil), "does not compile"},
		{"unknown $schema", newTool("x", "builtin", `{"$schema":"https://example.com/my-draft","type":"object"}`, nil), "does not compile"},
		{"draft-07 with definitions", newTool("d7", "mcp:s", `{"$schema":"http://json-schema.org/draft-07/schema#","type":"object","definitions":{"n":{"type":"number"}},"properties":{"a":{"$ref":"#/definitions/n"}}}`, nil), ""},
		{"2020-12 with $defs", newTool("d2020", "mcp:s", `{"$schema":"https://json-schema.org/draft/2020-12/schema","type":"object","$defs":{"n":{"type":"number"}},"properties":{"a":{"$ref":"#/$defs/n"}}}`, nil), ""},
		{"$id and a local $ref", newTool("withid", "mcp:s", `{"$id":"https://example.com/root.json","type":"object","$defs":{"n":{"type":"number"}},"properties":{"a":{"$ref":"#/$defs/n"}}}`, nil), ""},
		{"$id and a sibling document", newTool("x", "mcp:s", `{"$id":"https://example.com/root.json","properties":{"a":{"$ref":"other.json"}}}`, nil), "does not compile"},
		{"ECMAScript pattern", newTool("zod", "mcp:s", `{"type":"object","properties":{"email":{"type":"string","pattern":"^(?!\\.)[a-z.]+@x$"}}}`, nil), ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m := newManager(t, Config{})
			err := m.Register(c.tool)
			if c.wantErr == "" {
				if err != nil {
					t.Fatalf("Register: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), c.wantErr) {
				t.Fatalf("Register: %v, want an error containing %q", err, c.wantErr)
			}
			if len(m.List()) != 0 {
				t.Fatalf("a refused tool is listed: %v", m.List())
			}
		})
	}
}

func TestRegisterDuplicateAndDefaultSchema(t *testing.T) {
	m := newManager(t, Config{}, newTool("a", "builtin", ``, nil))
	if err := m.Register(newTool("a", "http", ``, nil)); err == nil || !strings.Contains(err.Error(), "already registered") {
		t.Fatalf("second a: %v", err)
	}
	spec, ok := m.Lookup("a")
	if !ok || string(spec.InputSchema) != `{"type":"object"}` || spec.Source != "builtin" {
		t.Fatalf("Lookup(a) = %+v, %v", spec, ok)
	}
	// The default schema takes any object, and nothing else.
	if err := m.Validate("a", json.RawMessage(`{"anything":[1,2]}`)); err != nil {
		t.Fatal(err)
	}
	apiErr(t, m.Validate("a", json.RawMessage(`[1]`)), api.CallerBadRequest)
}

func TestLookupAndList(t *testing.T) {
	m := newManager(t, Config{}, echo("zed", "builtin"), echo("alice__notes", "http"), echo("calc", "builtin"))
	for _, name := range []string{"alice/notes", "alice__notes"} {
		if s, ok := m.Lookup(name); !ok || s.Name != "alice__notes" {
			t.Errorf("Lookup(%q) = %q, %v", name, s.Name, ok)
		}
	}
	if _, ok := m.Lookup("bob/notes"); ok {
		t.Error("Lookup(bob/notes) found a tool")
	}
	var names []string
	for _, s := range m.List() {
		names = append(names, s.Name)
	}
	if got := strings.Join(names, ","); got != "alice__notes,calc,zed" {
		t.Errorf("List = %s", got)
	}
	res, err := m.Run(context.Background(), "alice/notes", Input{Args: json.RawMessage(`{"text":"hi"}`)})
	if err != nil || res.Content != "hi" {
		t.Errorf("Run(alice/notes) = %+v, %v", res, err)
	}
}

func TestSetSource(t *testing.T) {
	ctx := context.Background()
	m := newManager(t, Config{}, echo("calc", "builtin"))
	if err := m.SetSource("mcp:fs", []Tool{echo("fs__read", "mcp:fs"), echo("fs__write", "mcp:fs")}); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Run(ctx, "fs__read", Input{Args: json.RawMessage(`{"text":"x"}`)}); err != nil {
		t.Fatal(err)
	}
	names := func() string {
		var n []string
		for _, s := range m.List() {
			n = append(n, s.Name+"@"+s.Source)
		}
		return strings.Join(n, ",")
	}

	// Reconnect with a changed list: write goes, list comes, read stays with its stats.
	if err := m.SetSource("mcp:fs", []Tool{echo("fs__read", "mcp:fs"), echo("fs__list", "mcp:fs")}); err != nil {
		t.Fatal(err)
	}
	if got, want := names(), "calc@builtin,fs__list@mcp:fs,fs__read@mcp:fs"; got != want {
		t.Fatalf("after replace: %s, want %s", got, want)
	}
	if s := statsOf(t, m, "fs__read"); s.Calls != 1 {
		t.Errorf("fs__read kept %d calls, want 1", s.Calls)
	}

	refused := []struct {
		name  string
		tools []Tool
		want  string
	}{
		{"clash with another source", []Tool{echo("fs__x", "mcp:fs"), echo("calc", "mcp:fs")}, `already registered by source "builtin"`},
		{"wrong source", []Tool{echo("fs__x", "mcp:other")}, `says its source is "mcp:other"`},
		{"listed twice", []Tool{echo("fs__x", "mcp:fs"), echo("fs__x", "mcp:fs")}, "listed twice"},
		{"bad name", []Tool{echo("fs__x", "mcp:fs"), echo("fs/y", "mcp:fs")}, "tool name"},
		{"bad schema", []Tool{newTool("fs__x", "mcp:fs", `{"$ref":"http://example.com/x"}`, nil)}, "does not compile"},
	}
	for _, c := range refused {
		t.Run(c.name, func(t *testing.T) {
			err := m.SetSource("mcp:fs", c.tools)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("SetSource: %v, want %q", err, c.want)
			}
			if got, want := names(), "calc@builtin,fs__list@mcp:fs,fs__read@mcp:fs"; got != want {
				t.Fatalf("a refused SetSource changed the registry: %s", got)
			}
		})
	}

	// An empty list removes the source's tools.
	if err := m.SetSource("mcp:fs", nil); err != nil {
		t.Fatal(err)
	}
	if got := names(); got != "calc@builtin" {
		t.Fatalf("after removing: %s", got)
	}
}

func TestNotFound(t *testing.T) {
	ctx := context.Background()
	empty := newManager(t, Config{})
	e := apiErr(t, func() error { _, err := empty.Run(ctx, "x", Input{}); return err }(), api.CallerNotFound)
	if !strings.Contains(e.Message, "no tools are available") {
		t.Errorf("message %q", e.Message)
	}

	m := newManager(t, Config{})
	for i := range 30 {
		if err := m.Register(echo("t"+string(rune('a'+i/10))+string(rune('a'+i%10)), "builtin")); err != nil {
			t.Fatal(err)
		}
	}
	_, err := m.Run(ctx, "nope", Input{})
	e = apiErr(t, err, api.CallerNotFound)
	if !strings.Contains(e.Message, "no tool named nope; available: taa, tab,") || !strings.Contains(e.Message, "and 10 more") {
		t.Errorf("message %q", e.Message)
	}
	apiErr(t, m.Validate("nope", nil), api.CallerNotFound)
}

func TestNewRefuses(t *testing.T) {
	cases := []struct {
		name string
		cfg  Config
		want string
	}{
		{"negative default concurrency", Config{Defaults: Limits{Concurrency: -1}}, "concurrency may not be negative"},
		{"negative timeout", Config{PerTool: map[string]Limits{"a": {Timeout: -time.Second}}}, `"a": timeout`},
		{"negative queue", Config{PerTool: map[string]Limits{"a": {Queue: -1}}}, "queue may not"},
		{"negative output", Config{PerTool: map[string]Limits{"a": {MaxOutput: -1}}}, "max_output"},
		{"negative cooldown", Config{PerTool: map[string]Limits{"a": {BreakerCooldown: -1}}}, "breaker_cooldown"},
		{"star inside", Config{PerTool: map[string]Limits{"a*b": {}}}, "one \"*\""},
		{"two stars", Config{PerTool: map[string]Limits{"a**": {}}}, "one \"*\""},
		{"bad characters", Config{PerTool: map[string]Limits{"a b*": {}}}, "not a tool name"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := New(c.cfg)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("New: %v, want %q", err, c.want)
			}
		})
	}
	// A negative breaker threshold is allowed: it disables the breaker.
	if _, err := New(Config{Defaults: Limits{BreakerThreshold: -1}}); err != nil {
		t.Fatal(err)
	}
}

func TestLimitsOf(t *testing.T) {
	m := newManager(t, Config{
		Defaults: Limits{Timeout: 10 * time.Second},
		PerTool: map[string]Limits{
			"github__*":             {Concurrency: 2},
			"github__search*":       {Concurrency: 3, MaxOutput: 100},
			"github__search_issues": {Timeout: time.Second},
			"alice/notes":           {Queue: 1},
		},
	}, echo("github__search_issues", "mcp:github"))
	def := Limits{Timeout: 10 * time.Second}.WithDefaults()
	with := func(f func(*Limits)) Limits { l := def; f(&l); return l }
	cases := []struct {
		name string
		want Limits
	}{
		{"calc", def},
		{"github__list", with(func(l *Limits) { l.Concurrency = 2 })},
		{"github__search_code", with(func(l *Limits) { l.Concurrency, l.MaxOutput = 3, 100 })},
		{"github__search_issues", with(func(l *Limits) { l.Timeout = time.Second })}, // exact beats patterns, whole
		{"alice/notes", with(func(l *Limits) { l.Queue = 1 })},
		{"alice__notes", with(func(l *Limits) { l.Queue = 1 })},
		{"githu", def},
	}
	for _, c := range cases {
		if got := m.LimitsOf(c.name); got != c.want {
			t.Errorf("LimitsOf(%s) = %+v, want %+v", c.name, got, c.want)
		}
	}
	if got := statsOf(t, m, "github__search_issues").Limits.Timeout; got != time.Second {
		t.Errorf("registered tool's limits: timeout %v", got)
	}
	if d := (Limits{}).WithDefaults(); d != (Limits{8, 64, 30 * time.Second, time.Minute, 64 << 10, 5, 5 * time.Second}) {
		t.Errorf("package defaults %+v", d)
	}
}
