package tool

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"sort"
	"strings"
	"sync"

	"github.com/aios-go/aios/api"
)

// Config configures a Manager.
type Config struct {
	Defaults Limits // zero fields take the package defaults
	// PerTool is keyed by a tool name ("author/tool" is read as "author__tool") or a
	// pattern "server__*". An exact name beats a pattern, a longer pattern a shorter
	// one; the entry that matches takes its zero fields from Defaults.
	PerTool map[string]Limits
	Logger  *slog.Logger
}

// Manager is the registry of tools and runs their calls. The kernel schedules tool
// calls: it takes a slot with TryAcquire (queueing the call when none is free, by the
// tool's Limits.Queue and QueueTimeout), calls Run, then Release. One mutex guards
// everything and is never held while a tool runs, so Run's bookkeeping costs a few
// short critical sections and TryAcquire is safe under the kernel's own lock.
type Manager struct {
	limits limitTable
	log    *slog.Logger

	mu       sync.Mutex
	tools    map[string]*entry // by canonical name
	inflight map[string]int    // slots taken, by canonical name, known tool or not
	down     map[string]error  // sources that are down, and why

	calls callLog // each agent's recent calls
}

// entry is a registered tool. Everything but br and stats is fixed at registration;
// br and stats change under Manager.mu.
type entry struct {
	tool   Tool
	spec   Spec
	schema *argSchema
	limits Limits
	br     breaker
	stats  *counters // shared with the entry that replaces this one
}

// New builds an empty Manager, refusing negative limits and malformed patterns.
func New(cfg Config) (*Manager, error) {
	lt, err := newLimitTable(cfg)
	if err != nil {
		return nil, err
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Manager{
		limits:   lt,
		log:      log,
		tools:    map[string]*entry{},
		inflight: map[string]int{},
		down:     map[string]error{},
	}, nil
}

// nameRule is what LLM APIs accept as a function name (OpenAI's rule, plus ".").
var nameRule = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,128}$`)

func validName(s string) bool { return nameRule.MatchString(s) }

// prepare checks a tool and compiles its schema, outside the lock.
func (m *Manager) prepare(t Tool) (*entry, error) {
	if t == nil {
		return nil, errors.New("nil tool")
	}
	spec := t.Spec()
	if !validName(spec.Name) {
		return nil, fmt.Errorf("tool name %q: want 1 to 128 letters, digits, _ . or - (the rule LLM APIs set for function names)", spec.Name)
	}
	if len(bytes.TrimSpace(spec.InputSchema)) == 0 {
		spec.InputSchema = objectSchema
	}
	schema, err := compileSchema(spec.Name, spec.InputSchema)
	if err != nil {
		return nil, err
	}
	l := m.limits.of(spec.Name)
	return &entry{tool: t, spec: spec, schema: schema, limits: l, br: newBreaker(l), stats: &counters{}}, nil
}

// Register adds one tool; its name must be free.
func (m *Manager) Register(t Tool) error {
	e, err := m.prepare(t)
	if err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if old, ok := m.tools[e.spec.Name]; ok {
		return fmt.Errorf("tool %s is already registered (source %q)", e.spec.Name, old.spec.Source)
	}
	m.tools[e.spec.Name] = e
	m.log.Debug("tool registered", "tool", e.spec.Name, "source", e.spec.Source)
	return nil
}

// SetSource replaces every tool of a source with tools, at once: an MCP server's tools
// on connect, reconnect and list_changed. Every tool must name source as its Source. A
// tool that fails to register, or whose name another source holds, fails the whole
// call and changes nothing. A tool kept under the same name keeps its stats; its
// breaker starts closed, as the source behind it is a new connection.
func (m *Manager) SetSource(source string, tools []Tool) error {
	fresh := make(map[string]*entry, len(tools))
	for _, t := range tools {
		e, err := m.prepare(t)
		if err != nil {
			return fmt.Errorf("tools of %s: %w", source, err)
		}
		if e.spec.Source != source {
			return fmt.Errorf("tools of %s: tool %s says its source is %q", source, e.spec.Name, e.spec.Source)
		}
		if _, dup := fresh[e.spec.Name]; dup {
			return fmt.Errorf("tools of %s: tool %s is listed twice", source, e.spec.Name)
		}
		fresh[e.spec.Name] = e
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for name := range fresh {
		if old, ok := m.tools[name]; ok && old.spec.Source != source {
			return fmt.Errorf("tools of %s: tool %s is already registered by source %q", source, name, old.spec.Source)
		}
	}
	removed := 0
	for name, old := range m.tools {
		if old.spec.Source != source {
			continue
		}
		if e, kept := fresh[name]; kept {
			e.stats = old.stats
		} else {
			removed++
		}
		delete(m.tools, name)
	}
	for name, e := range fresh {
		m.tools[name] = e
	}
	m.log.Info("tools of a source set", "source", source, "tools", len(fresh), "removed", removed)
	return nil
}

// SetSourceDown marks a source down (err != nil), so calls of its tools fail at once
// naming the reason, or up again (err == nil). A source may be marked before it has
// any tools.
func (m *Manager) SetSourceDown(source string, err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err == nil {
		delete(m.down, source)
		return
	}
	m.down[source] = err
}

// List returns every tool's Spec, sorted by name.
func (m *Manager) List() []Spec {
	m.mu.Lock()
	out := make([]Spec, 0, len(m.tools))
	for _, e := range m.tools {
		out = append(out, e.spec)
	}
	m.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Lookup finds a tool by name; "author/tool" names "author__tool".
func (m *Manager) Lookup(name string) (Spec, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	e, ok := m.tools[Canonical(name)]
	if !ok {
		return Spec{}, false
	}
	return e.spec, true
}

// LimitsOf returns a tool's resolved limits; for a name not registered, the limits it
// would get.
func (m *Manager) LimitsOf(name string) Limits {
	name = Canonical(name)
	m.mu.Lock()
	e, ok := m.tools[name]
	m.mu.Unlock()
	if ok {
		return e.limits
	}
	return m.limits.of(name)
}

// Validate checks arguments against the tool's schema, as Run does first; the kernel
// may call it before queueing a call, so a bad call is refused without waiting.
func (m *Manager) Validate(name string, args json.RawMessage) error {
	name = Canonical(name)
	m.mu.Lock()
	e, ok := m.tools[name]
	if !ok {
		err := m.notFoundLocked(name)
		m.mu.Unlock()
		return err
	}
	m.mu.Unlock()
	if err := e.schema.validate(name, args); err != nil {
		m.mu.Lock()
		e.stats.rejected++
		m.mu.Unlock()
		return err
	}
	return nil
}

// TryAcquire takes one of the tool's Concurrency slots if one is free, without
// blocking. An unknown tool always gets one: Run answers it with not found, and the
// slot is counted all the same so that Release stays symmetric.
func (m *Manager) TryAcquire(name string) bool {
	name = Canonical(name)
	m.mu.Lock()
	defer m.mu.Unlock()
	e, ok := m.tools[name]
	if ok && m.inflight[name] >= e.limits.Concurrency {
		return false
	}
	m.inflight[name]++
	if ok {
		e.stats.peak = max(e.stats.peak, m.inflight[name])
	}
	return true
}

// Release gives back a slot TryAcquire took.
func (m *Manager) Release(name string) {
	name = Canonical(name)
	m.mu.Lock()
	defer m.mu.Unlock()
	switch n := m.inflight[name]; {
	case n > 1:
		m.inflight[name] = n - 1
	default:
		delete(m.inflight, name)
	}
}

// maxListed bounds the names a not-found error lists.
const maxListed = 20

func (m *Manager) notFoundLocked(name string) error {
	names := make([]string, 0, len(m.tools))
	for n := range m.tools {
		names = append(names, n)
	}
	sort.Strings(names)
	if len(names) == 0 {
		return api.Errorf(api.CallerNotFound, "no tool named %s; no tools are available", name)
	}
	list := strings.Join(names[:min(len(names), maxListed)], ", ")
	if len(names) > maxListed {
		list += fmt.Sprintf(" and %d more", len(names)-maxListed)
	}
	return api.Errorf(api.CallerNotFound, "no tool named %s; available: %s", name, list)
}

// Stats returns every tool's counters, sorted by name.
func (m *Manager) Stats() []Stats {
	m.mu.Lock()
	out := make([]Stats, 0, len(m.tools))
	for name, e := range m.tools {
		c := e.stats
		out = append(out, Stats{
			Name: name, Source: e.spec.Source, Inflight: m.inflight[name], PeakInflight: c.peak,
			Calls: c.calls, Errors: c.errors, Rejected: c.rejected, Timeouts: c.timeouts,
			BreakerState: e.br.state, MeanDuration: c.mean(), Limits: e.limits,
		})
	}
	m.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}
