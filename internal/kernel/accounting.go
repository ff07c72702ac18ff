package kernel

import (
	"sync"
	"time"

	"github.com/aios-go/aios/api"
	"github.com/aios-go/aios/internal/llm"
	"github.com/aios-go/aios/internal/sched"
)

// maxSessions bounds the sessions the books keep apart; beyond it the least recently
// active session is dropped from the per-session table (never from the totals), so a
// kernel that sees endless one-shot sessions does not grow without end.
const maxSessions = 1 << 14

// usageBook is the kernel's token accounting: what every agent, session and model has
// been charged, as the backends reported it. It has its own lock so accounting never
// holds up dispatch.
type usageBook struct {
	mu       sync.Mutex
	since    time.Time
	total    api.UsageCounters
	agents   map[string]*api.UsageCounters
	sessions map[string]*sessionUsage
	models   map[string]*api.UsageCounters
}

type sessionUsage struct {
	api.UsageCounters
	seen time.Time
}

func newUsageBook(now time.Time) *usageBook {
	return &usageBook{
		since:    now,
		agents:   map[string]*api.UsageCounters{},
		sessions: map[string]*sessionUsage{},
		models:   map[string]*api.UsageCounters{},
	}
}

// record charges a terminal LLM syscall. A call that failed counts as failed and is
// charged what its result reports, which for a failure is nothing: backends report
// usage only with a complete answer.
func (b *usageBook) record(sc *Syscall, res *llm.Result, err error, now time.Time) {
	if sc.Module != sched.LLM {
		return
	}
	var u api.Usage
	if err == nil && res != nil {
		u = res.Usage
	}
	add := func(c *api.UsageCounters) {
		c.Calls++
		if err != nil {
			c.Failed++
		}
		c.PromptTokens += int64(u.PromptTokens)
		c.CompletionTokens += int64(u.CompletionTokens)
		c.TotalTokens += int64(u.PromptTokens + u.CompletionTokens)
		if u.PromptTokensDetails != nil {
			c.CachedTokens += int64(u.PromptTokensDetails.CachedTokens)
		}
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	add(&b.total)
	add(counter(b.agents, sc.Agent))
	add(counter(b.models, sc.req.Model))
	s, ok := b.sessions[sc.Program]
	if !ok {
		if len(b.sessions) >= maxSessions {
			b.evictSession()
		}
		s = &sessionUsage{}
		b.sessions[sc.Program] = s
	}
	s.seen = now
	add(&s.UsageCounters)
}

func counter(m map[string]*api.UsageCounters, key string) *api.UsageCounters {
	c, ok := m[key]
	if !ok {
		c = &api.UsageCounters{}
		m[key] = c
	}
	return c
}

func (b *usageBook) evictSession() {
	var oldest string
	var at time.Time
	for k, s := range b.sessions {
		if oldest == "" || s.seen.Before(at) {
			oldest, at = k, s.seen
		}
	}
	delete(b.sessions, oldest)
}

// UsageFilter narrows a usage report to one agent and/or one session.
type UsageFilter struct {
	Agent   string
	Session string
}

// Usage reports the token accounting since the kernel started.
func (k *Kernel) Usage(f UsageFilter) api.UsageReport {
	b := k.usage
	b.mu.Lock()
	defer b.mu.Unlock()
	r := api.UsageReport{
		Since:    b.since,
		Total:    b.total,
		Agents:   map[string]api.UsageCounters{},
		Sessions: map[string]api.UsageCounters{},
		Models:   map[string]api.UsageCounters{},
	}
	for a, c := range b.agents {
		if f.Agent == "" || f.Agent == a {
			r.Agents[a] = *c
		}
	}
	for s, c := range b.sessions {
		if f.Session == "" || f.Session == s {
			r.Sessions[s] = c.UsageCounters
		}
	}
	if f.Agent == "" && f.Session == "" {
		for m, c := range b.models {
			r.Models[m] = *c
		}
	}
	return r
}

// UsageOf is the accounting of one agent, for callers that need one number.
func (k *Kernel) UsageOf(agent string) api.UsageCounters {
	return k.Usage(UsageFilter{Agent: agent}).Agents[agent]
}
