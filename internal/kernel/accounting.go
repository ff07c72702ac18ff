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
	mu     sync.Mutex
	since  time.Time
	total  api.UsageCounters
	agents map[string]*api.UsageCounters
	models map[string]*api.UsageCounters
	// agentModels splits each agent's counters by model, for reports filtered by agent.
	agentModels map[cell]*api.UsageCounters
	sessions    map[string]*sessionUsage
}

// cell names one agent's calls of one model.
type cell struct{ agent, model string }

type sessionUsage struct {
	api.UsageCounters
	seen time.Time
	// cells split the session by agent and model, so a report filtered by session adds
	// up from them. A session has few of each.
	cells map[cell]*api.UsageCounters
}

func newUsageBook(now time.Time) *usageBook {
	return &usageBook{
		since:       now,
		agents:      map[string]*api.UsageCounters{},
		models:      map[string]*api.UsageCounters{},
		agentModels: map[cell]*api.UsageCounters{},
		sessions:    map[string]*sessionUsage{},
	}
}

// cutShort is the result of an LLM call that ended without one (failed, cancelled, cut
// off mid-stream), for the books: the tokens it had streamed, the text deltas it
// emitted, about one token each. Backends report usage only with a complete answer, yet
// a client that hangs up mid-stream has had those tokens made. Its prompt is not
// charged, as no backend said what it counted.
func (k *Kernel) cutShort(sc *Syscall) *llm.Result {
	k.mu.Lock()
	n := sc.produced
	k.mu.Unlock()
	return &llm.Result{Usage: api.Usage{CompletionTokens: n, TotalTokens: n}}
}

// record charges a terminal LLM syscall what res reports: a completed call its
// backend's usage, one that ended in err what cutShort found. A call with err counts as
// failed.
func (b *usageBook) record(sc *Syscall, res *llm.Result, err error, now time.Time) {
	if sc.Module != sched.LLM {
		return
	}
	var u api.Usage
	if res != nil {
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
	at := cell{sc.Agent, sc.req.Model}
	b.mu.Lock()
	defer b.mu.Unlock()
	add(&b.total)
	add(counter(b.agents, sc.Agent))
	add(counter(b.models, sc.req.Model))
	add(counter(b.agentModels, at))
	s, ok := b.sessions[sc.Program]
	if !ok {
		if len(b.sessions) >= maxSessions {
			b.evictSession()
		}
		s = &sessionUsage{cells: map[cell]*api.UsageCounters{}}
		b.sessions[sc.Program] = s
	}
	s.seen = now
	add(&s.UsageCounters)
	add(counter(s.cells, at))
}

func counter[K comparable](m map[K]*api.UsageCounters, key K) *api.UsageCounters {
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

// Usage reports the token accounting since the kernel started. A filter applies to
// every part of the report, the total included: filtered by agent, the total is that
// agent's, the sessions are its share of each session it called in, the models those
// it called; filtered by session, everything adds up from that session's calls (a
// session evicted from the bounded table reports nothing).
func (k *Kernel) Usage(f UsageFilter) api.UsageReport {
	b := k.usage
	b.mu.Lock()
	defer b.mu.Unlock()
	r := api.UsageReport{
		Since:    b.since,
		Agents:   map[string]api.UsageCounters{},
		Sessions: map[string]api.UsageCounters{},
		Models:   map[string]api.UsageCounters{},
	}
	switch {
	case f.Agent == "" && f.Session == "":
		r.Total = b.total
		for a, c := range b.agents {
			r.Agents[a] = *c
		}
		for s, c := range b.sessions {
			r.Sessions[s] = c.UsageCounters
		}
		for m, c := range b.models {
			r.Models[m] = *c
		}
	case f.Session == "":
		// By agent: the agent's own counters are exact even for sessions evicted since.
		c, ok := b.agents[f.Agent]
		if !ok {
			break
		}
		r.Total = *c
		r.Agents[f.Agent] = *c
		for at, c := range b.agentModels {
			if at.agent == f.Agent {
				r.Models[at.model] = *c
			}
		}
		for name, s := range b.sessions {
			for at, c := range s.cells {
				if at.agent == f.Agent {
					r.Sessions[name] = sum(r.Sessions[name], *c)
				}
			}
		}
	default:
		s, ok := b.sessions[f.Session]
		if !ok {
			break
		}
		for at, c := range s.cells {
			if f.Agent != "" && at.agent != f.Agent {
				continue
			}
			r.Total = sum(r.Total, *c)
			r.Agents[at.agent] = sum(r.Agents[at.agent], *c)
			r.Models[at.model] = sum(r.Models[at.model], *c)
		}
		if r.Total.Calls > 0 {
			r.Sessions[f.Session] = r.Total
		}
	}
	return r
}

func sum(a, b api.UsageCounters) api.UsageCounters {
	a.Calls += b.Calls
	a.Failed += b.Failed
	a.PromptTokens += b.PromptTokens
	a.CachedTokens += b.CachedTokens
	a.CompletionTokens += b.CompletionTokens
	a.TotalTokens += b.TotalTokens
	return a
}

// UsageOf is the accounting of one agent, for callers that need one number.
func (k *Kernel) UsageOf(agent string) api.UsageCounters {
	return k.Usage(UsageFilter{Agent: agent}).Agents[agent]
}

// usedTokens is what an LLM call used, for the access gate's token quotas.
func usedTokens(r *llm.Result) int64 {
	if r == nil {
		return 0
	}
	if r.Usage.TotalTokens > 0 {
		return int64(r.Usage.TotalTokens)
	}
	return int64(r.Usage.PromptTokens + r.Usage.CompletionTokens)
}
