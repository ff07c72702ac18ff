package tool

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/aios-go/aios/api"
)

func run(t *testing.T, m *Manager, name, agent, args string) {
	t.Helper()
	if !m.TryAcquire(name) {
		t.Fatalf("no slot for %s", name)
	}
	defer m.Release(name)
	_, _ = m.Run(context.Background(), name, Input{Agent: agent, Session: agent + "-s", Args: json.RawMessage(args)})
}

// Each agent's calls are logged apart, newest first, with their arguments, outcome and
// session; failures carry their kind; limit cuts the list.
func TestCallLogPerAgent(t *testing.T) {
	m := newManager(t, Config{}, echo("echo", "builtin"))
	run(t, m, "echo", "alice", `{"text":"one"}`)
	run(t, m, "echo", "bob", `{"text":"bob's"}`)
	run(t, m, "echo", "alice", `{"text":"two"}`)
	run(t, m, "echo", "alice", `{"nope":1}`) // fails validation
	run(t, m, "missing", "alice", `{}`)

	got := m.Calls("alice", 0)
	if len(got) != 4 {
		t.Fatalf("alice's log: %+v", got)
	}
	if got[3].Args != `{"text":"one"}` || got[2].Args != `{"text":"two"}` || got[3].OutputBytes != 3 || got[3].Kind != "" {
		t.Fatalf("alice's first calls: %+v", got[2:])
	}
	if got[1].Kind != api.CallerBadRequest || got[1].Error == "" {
		t.Fatalf("the invalid call: %+v", got[1])
	}
	if got[0].Tool != "missing" || got[0].Kind == "" || got[0].Session != "alice-s" {
		t.Fatalf("the call of an unknown tool: %+v", got[0])
	}
	if b := m.Calls("bob", 0); len(b) != 1 || b[0].Args != `{"text":"bob's"}` {
		t.Fatalf("bob's log: %+v", b)
	}
	if l := m.Calls("alice", 2); len(l) != 2 || l[0].Tool != "missing" {
		t.Fatalf("limit 2: %+v", l)
	}
	if n := m.Calls("carol", 0); n == nil || len(n) != 0 {
		t.Fatalf("an agent with no calls: %#v", n)
	}
}

// The log is bounded: 100 calls per agent (the oldest go), arguments cut to 1 KiB on a
// character boundary, and 1024 agents (the one written to longest ago goes).
func TestCallLogBounds(t *testing.T) {
	m := newManager(t, Config{}, newTool("any", "builtin", ``, nil))
	for i := range logPerAgent + 5 {
		run(t, m, "any", "alice", fmt.Sprintf(`{"i":%d}`, i))
	}
	got := m.Calls("alice", 0)
	if len(got) != logPerAgent || got[0].Args != fmt.Sprintf(`{"i":%d}`, logPerAgent+4) || got[logPerAgent-1].Args != `{"i":5}` {
		t.Fatalf("kept %d calls, newest %q, oldest %q", len(got), got[0].Args, got[len(got)-1].Args)
	}

	long := `{"s":"` + strings.Repeat("é", logArgsBytes) + `"}`
	run(t, m, "any", "bob", long)
	b := m.Calls("bob", 1)[0]
	if !b.ArgsCut || len(b.Args) > logArgsBytes || len(b.Args) < logArgsBytes-utf8.UTFMax || !utf8.ValidString(b.Args) {
		t.Fatalf("cut args: %d bytes, cut %v, valid %v", len(b.Args), b.ArgsCut, utf8.ValidString(b.Args))
	}

	for i := range logAgents {
		run(t, m, "any", fmt.Sprintf("a%04d", i), `{}`)
	}
	if len(m.Calls("alice", 0)) != 0 {
		t.Fatal("alice, written to longest ago, is still kept past the agents' bound")
	}
	if len(m.Calls(fmt.Sprintf("a%04d", logAgents-1), 0)) != 1 {
		t.Fatal("the newest agent's call is lost")
	}
	m.calls.mu.Lock()
	n := len(m.calls.agents)
	m.calls.mu.Unlock()
	if n > logAgents {
		t.Fatalf("%d agents kept, bound %d", n, logAgents)
	}
}
