package tool

import (
	"fmt"
	"sort"
	"strings"
	"time"
)

// Limits bound one tool's calls. A zero field means "not set": Config.Defaults fills it,
// then the package defaults below.
type Limits struct {
	Concurrency      int           `json:"concurrency"`         // parallel calls of the tool; 0 → 8
	Queue            int           `json:"queue"`               // calls that may wait for a free slot; beyond that new calls are refused; 0 → 64
	QueueTimeout     time.Duration `json:"queue_timeout_ns"`    // longest wait for a slot; 0 → 30s
	Timeout          time.Duration `json:"timeout_ns"`          // longest run of one call; 0 → 60s
	MaxOutput        int           `json:"max_output"`          // bytes of Result.Content kept (cut on a UTF-8 boundary, Truncated set, a note appended); 0 → 64 KiB
	BreakerThreshold int           `json:"breaker_threshold"`   // consecutive failures that open the tool's breaker; 0 → 5; < 0 disables it
	BreakerCooldown  time.Duration `json:"breaker_cooldown_ns"` // wait before a half-open probe; 0 → 5s; doubles after each failed probe, up to 2 min
}

// Package defaults, and the ceiling of the breaker's doubling cooldown.
const (
	DefaultConcurrency      = 8
	DefaultQueue            = 64
	DefaultQueueTimeout     = 30 * time.Second
	DefaultTimeout          = 60 * time.Second
	DefaultMaxOutput        = 64 << 10
	DefaultBreakerThreshold = 5
	DefaultBreakerCooldown  = 5 * time.Second
	MaxBreakerCooldown      = 2 * time.Minute
)

// WithDefaults fills the zero fields with the package defaults.
func (l Limits) WithDefaults() Limits {
	return l.inherit(Limits{
		Concurrency:      DefaultConcurrency,
		Queue:            DefaultQueue,
		QueueTimeout:     DefaultQueueTimeout,
		Timeout:          DefaultTimeout,
		MaxOutput:        DefaultMaxOutput,
		BreakerThreshold: DefaultBreakerThreshold,
		BreakerCooldown:  DefaultBreakerCooldown,
	})
}

// inherit fills l's zero fields from d.
func (l Limits) inherit(d Limits) Limits {
	if l.Concurrency == 0 {
		l.Concurrency = d.Concurrency
	}
	if l.Queue == 0 {
		l.Queue = d.Queue
	}
	if l.QueueTimeout == 0 {
		l.QueueTimeout = d.QueueTimeout
	}
	if l.Timeout == 0 {
		l.Timeout = d.Timeout
	}
	if l.MaxOutput == 0 {
		l.MaxOutput = d.MaxOutput
	}
	if l.BreakerThreshold == 0 {
		l.BreakerThreshold = d.BreakerThreshold
	}
	if l.BreakerCooldown == 0 {
		l.BreakerCooldown = d.BreakerCooldown
	}
	return l
}

func (l Limits) check() error {
	for _, f := range []struct {
		name string
		bad  bool
	}{
		{"concurrency", l.Concurrency < 0},
		{"queue", l.Queue < 0},
		{"queue_timeout", l.QueueTimeout < 0},
		{"timeout", l.Timeout < 0},
		{"max_output", l.MaxOutput < 0},
		{"breaker_cooldown", l.BreakerCooldown < 0},
	} {
		if f.bad {
			return fmt.Errorf("%s may not be negative (0 takes the default)", f.name)
		}
	}
	return nil
}

// limitTable resolves a tool's limits: an exact name beats a pattern, a longer pattern
// beats a shorter one, and the entry that wins takes its zero fields from the defaults.
// Entries do not merge with each other, so one entry alone says what a tool gets.
type limitTable struct {
	defaults Limits // already WithDefaults
	exact    map[string]Limits
	patterns []limitPattern // longest prefix first
}

type limitPattern struct {
	prefix string
	limits Limits
}

func newLimitTable(cfg Config) (limitTable, error) {
	if err := cfg.Defaults.check(); err != nil {
		return limitTable{}, fmt.Errorf("tool limits: defaults: %w", err)
	}
	t := limitTable{defaults: cfg.Defaults.WithDefaults(), exact: map[string]Limits{}}
	for key, l := range cfg.PerTool {
		if err := l.check(); err != nil {
			return limitTable{}, fmt.Errorf("tool limits for %q: %w", key, err)
		}
		name := Canonical(key)
		prefix, isPattern := strings.CutSuffix(name, "*")
		if strings.Contains(prefix, "*") {
			return limitTable{}, fmt.Errorf("tool limits for %q: a pattern may hold one \"*\", at its end (as in \"server__*\")", key)
		}
		if prefix != "" && !validName(prefix) {
			return limitTable{}, fmt.Errorf("tool limits for %q: not a tool name or pattern (letters, digits, _ . - and a final *)", key)
		}
		resolved := l.inherit(t.defaults)
		if !isPattern {
			t.exact[name] = resolved
			continue
		}
		t.patterns = append(t.patterns, limitPattern{prefix, resolved})
	}
	// Canonical can fold two keys ("a/b*" and "a__b*") into one prefix; the sort keeps
	// the pick deterministic, but which of the two wins is not specified.
	sort.Slice(t.patterns, func(i, j int) bool {
		if len(t.patterns[i].prefix) != len(t.patterns[j].prefix) {
			return len(t.patterns[i].prefix) > len(t.patterns[j].prefix)
		}
		return t.patterns[i].prefix < t.patterns[j].prefix
	})
	return t, nil
}

func (t limitTable) of(name string) Limits {
	if l, ok := t.exact[name]; ok {
		return l
	}
	for _, p := range t.patterns {
		if strings.HasPrefix(name, p.prefix) {
			return p.limits
		}
	}
	return t.defaults
}
