package access

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/aios-go/aios/api"
	"github.com/aios-go/aios/internal/sqldb"
)

// ScopeKind says what a quota limits: one agent, or all agents of a tenant together.
type ScopeKind string

const (
	ScopeAgent  ScopeKind = "agent"
	ScopeTenant ScopeKind = "tenant"
)

// Scope is an agent or a tenant.
type Scope struct {
	Kind ScopeKind `json:"kind"`
	Name string    `json:"name"`
}

func (s Scope) String() string { return string(s.Kind) + " " + s.Name }

// Limits are a scope's quotas; 0 means no limit.
type Limits struct {
	// Token budgets per clock hour and per UTC day: what LLM calls may use in the
	// window. A call is admitted while what was used, plus what calls in flight may
	// still use, plus its own estimate, fits.
	TokensPerHour int64 `json:"tokens_per_hour,omitempty"`
	TokensPerDay  int64 `json:"tokens_per_day,omitempty"`
	// RPM bounds syscalls of any module per minute; TPM, LLM tokens per minute. Both
	// are token buckets (a minute's worth may come at once).
	RPM int `json:"rpm,omitempty"`
	TPM int `json:"tpm,omitempty"`
	// MaxConcurrent bounds syscalls admitted and not yet released.
	MaxConcurrent int `json:"max_concurrent,omitempty"`
}

type period struct {
	name string
	len  time.Duration
}

var periods = [2]period{{"hour", time.Hour}, {"day", 24 * time.Hour}}

func (l Limits) budget(i int) int64 {
	if i == 0 {
		return l.TokensPerHour
	}
	return l.TokensPerDay
}

// windowStart is the start of the window of period i that holds t: the clock hour, or
// the UTC day.
func windowStart(i int, t time.Time) time.Time {
	t = t.UTC()
	if i == 0 {
		return t.Truncate(time.Hour)
	}
	return time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC)
}

type window struct {
	start    time.Time
	used     int64 // tokens calls that ended used
	reserved int64 // estimates of calls in flight admitted in this window
	gen      uint64
}

type scopeState struct {
	limits   Limits
	windows  [2]window
	rpm, tpm *rate.Limiter
	inflight int
	dirty    bool
}

// Quotas enforces per-agent and per-tenant limits at admission. Only scopes that have
// limits are counted, from when they get them. Counters live in memory
// and are written to the store by Flush (the manager's Run does every few seconds, and
// Close); a kernel that dies loses at most the usage since the last flush. Kernels
// sharing a database each enforce their own counters.
type Quotas struct {
	store *Store
	audit *Audit
	clock Clock

	mu     sync.Mutex
	scopes map[Scope]*scopeState
}

func newQuotas(ctx context.Context, s *Store, a *Audit, c Clock) (*Quotas, error) {
	q := &Quotas{store: s, audit: a, clock: c, scopes: map[Scope]*scopeState{}}
	rows, err := s.db.Read().Query(ctx, `SELECT scope, name, limits FROM access_quotas`)
	if err != nil {
		return nil, internal(err, "read quotas")
	}
	for rows.Next() {
		var kind, name, lj string
		if err := rows.Scan(&kind, &name, &lj); err != nil {
			rows.Close()
			return nil, internal(err, "read quotas")
		}
		var l Limits
		if err := json.Unmarshal([]byte(lj), &l); err != nil {
			rows.Close()
			return nil, internal(err, "the quota of %s %s is damaged", kind, name)
		}
		q.state(Scope{ScopeKind(kind), name}).setLimits(l, c.Now())
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, internal(err, "read quotas")
	}
	rows, err = s.db.Read().Query(ctx, `SELECT scope, name, period, window_start, used FROM access_quota_usage`)
	if err != nil {
		return nil, internal(err, "read quota usage")
	}
	defer rows.Close()
	for rows.Next() {
		var kind, name, per string
		var start, used int64
		if err := rows.Scan(&kind, &name, &per, &start, &used); err != nil {
			return nil, internal(err, "read quota usage")
		}
		i := slices.IndexFunc(periods[:], func(p period) bool { return p.name == per })
		if i < 0 {
			continue
		}
		st := q.state(Scope{ScopeKind(kind), name})
		st.windows[i].start, st.windows[i].used = time.Unix(0, start).UTC(), used
	}
	return q, internal(rows.Err(), "read quota usage")
}

// state returns the state of s, creating it; q.mu must be held (or q not yet shared).
func (q *Quotas) state(s Scope) *scopeState {
	st, ok := q.scopes[s]
	if !ok {
		st = &scopeState{}
		q.scopes[s] = st
	}
	return st
}

func (st *scopeState) setLimits(l Limits, now time.Time) {
	st.limits = l
	st.rpm = bucket(st.rpm, l.RPM, now)
	st.tpm = bucket(st.tpm, l.TPM, now)
}

// bucket is a per-minute token bucket of size n; an existing one keeps its level.
func bucket(b *rate.Limiter, n int, now time.Time) *rate.Limiter {
	if n <= 0 {
		return nil
	}
	if b == nil {
		return rate.NewLimiter(rate.Limit(float64(n)/60), n)
	}
	b.SetLimitAt(now, rate.Limit(float64(n)/60))
	b.SetBurstAt(now, n)
	return b
}

// roll starts a new window when the clock has left the current one.
func (st *scopeState) roll(now time.Time) {
	for i := range st.windows {
		w := &st.windows[i]
		if s := windowStart(i, now); !w.start.Equal(s) {
			*w = window{start: s, gen: w.gen + 1}
			st.dirty = true
		}
	}
}

// Set replaces the limits of s.
func (q *Quotas) Set(ctx context.Context, s Scope, l Limits) error {
	if s.Kind != ScopeAgent && s.Kind != ScopeTenant {
		return api.Errorf(api.CallerBadRequest, "access: a quota is for an agent or a tenant, not %q", s.Kind)
	}
	if l.TokensPerHour < 0 || l.TokensPerDay < 0 || l.RPM < 0 || l.TPM < 0 || l.MaxConcurrent < 0 {
		return api.Errorf(api.CallerBadRequest, "access: quota limits cannot be negative (0 means no limit)")
	}
	lj, _ := json.Marshal(l)
	err := q.store.write(ctx, func(tx sqldb.Tx) error {
		_, err := tx.Exec(ctx, `INSERT INTO access_quotas (scope, name, limits) VALUES ($1, $2, $3)
			ON CONFLICT (scope, name) DO UPDATE SET limits = excluded.limits`, string(s.Kind), s.Name, string(lj))
		return err
	})
	if err != nil {
		return internal(err, "set the quota of %s", s)
	}
	q.mu.Lock()
	q.state(s).setLimits(l, q.clock.Now())
	q.mu.Unlock()
	return q.audit.record(ctx, "quota.set", "Quota:"+string(s.Kind)+":"+s.Name, "done", map[string]string{"limits": string(lj)})
}

// Limits returns the limits of s (zero when it has none).
func (q *Quotas) Limits(s Scope) Limits {
	q.mu.Lock()
	defer q.mu.Unlock()
	if st, ok := q.scopes[s]; ok {
		return st.limits
	}
	return Limits{}
}

// Release ends an admitted call: actual is the tokens it used (0 for calls without
// tokens, or that failed before using any). Calling it again does nothing.
type Release func(actual int64)

func noRelease(int64) {}

// scopesOf are the scopes a principal's calls count against.
func scopesOf(p Principal) []Scope {
	t := p.Tenant
	if t == "" {
		t = DefaultTenant
	}
	return []Scope{{ScopeAgent, p.Name}, {ScopeTenant, t}}
}

// Admit admits one syscall of p, estimated to use estimate tokens, against p's quotas
// and its tenant's, or refuses it with policy_quota_exceeded and a RetryAfter: when
// the window, bucket or slot that refused it will allow it (for a call larger than a
// whole budget, never: RetryAfter is 0 and the message says so). Admins have no quotas.
// The release must be called once the call ends, with the tokens it used.
func (q *Quotas) Admit(p Principal, act Action, estimate int64) (Release, error) {
	if p.Kind != KindAgent {
		return noRelease, nil
	}
	estimate = max(0, estimate)
	q.mu.Lock()
	defer q.mu.Unlock()
	// Only scopes with a quota are counted: with authentication off, agent names are
	// whatever callers send, and counting each would grow without bound. What every
	// agent uses is the kernel's accounting's to report (/admin/usage).
	var scopes []Scope
	for _, s := range scopesOf(p) {
		if st, ok := q.scopes[s]; ok && st.limits != (Limits{}) {
			scopes = append(scopes, s)
		}
	}
	if len(scopes) == 0 {
		return noRelease, nil
	}
	now := q.clock.Now()
	var refusal *api.Error
	for _, s := range scopes {
		st := q.state(s)
		st.roll(now)
		if err := st.check(s, now, estimate); err != nil && (refusal == nil || err.RetryAfter > refusal.RetryAfter) {
			refusal = err
		}
	}
	if refusal != nil {
		return nil, refusal
	}
	type held struct {
		st  *scopeState
		gen [2]uint64
	}
	hs := make([]held, len(scopes))
	for i, s := range scopes {
		st := q.state(s)
		st.inflight++
		if st.rpm != nil {
			st.rpm.AllowN(now, 1)
		}
		for j := range st.windows {
			st.windows[j].reserved += estimate
			hs[i].gen[j] = st.windows[j].gen
		}
		hs[i].st = st
	}
	var once sync.Once
	return func(actual int64) {
		once.Do(func() {
			actual = max(0, actual)
			q.mu.Lock()
			defer q.mu.Unlock()
			now := q.clock.Now()
			for _, h := range hs {
				st := h.st
				st.roll(now)
				st.inflight--
				for j := range st.windows {
					w := &st.windows[j]
					if w.gen == h.gen[j] {
						w.reserved -= estimate
					}
					w.used += actual
				}
				charge(st.tpm, now, actual)
				st.dirty = true
			}
		})
	}, nil
}

// charge takes n tokens from b, into debt if need be, so the next calls wait for what
// this one used. A reservation may not exceed the burst, hence the chunks.
func charge(b *rate.Limiter, now time.Time, n int64) {
	if b == nil {
		return
	}
	for n > 0 {
		c := min(n, int64(b.Burst()))
		b.ReserveN(now, int(c))
		n -= c
	}
}

// check says whether one more call of estimate tokens fits s's limits, and if not, why
// and when it would. q.mu is held.
func (st *scopeState) check(s Scope, now time.Time, estimate int64) *api.Error {
	l := st.limits
	var worst *api.Error
	refuse := func(after time.Duration, format string, args ...any) {
		e := api.Errorf(api.PolicyQuota, "%s %s", s, fmt.Sprintf(format, args...))
		e.RetryAfter = after
		if worst == nil || after > worst.RetryAfter {
			worst = e
		}
	}
	if l.MaxConcurrent > 0 && st.inflight >= l.MaxConcurrent {
		// When a slot frees is not known; a second is a fair first wait.
		refuse(time.Second, "has %d syscalls in flight, its most; retry when one ends", st.inflight)
	}
	if st.rpm != nil {
		if have := st.rpm.TokensAt(now); have < 1 {
			refuse(wait(1-have, l.RPM), "is at its limit of %d requests per minute", l.RPM)
		}
	}
	if st.tpm != nil && estimate > 0 {
		need := min(float64(estimate), float64(l.TPM))
		if have := st.tpm.TokensAt(now); have < need {
			refuse(wait(need-have, l.TPM), "is at its limit of %d tokens per minute", l.TPM)
		}
	}
	for i, p := range periods {
		b := l.budget(i)
		if b <= 0 {
			continue
		}
		w := st.windows[i]
		switch {
		case estimate > b:
			e := api.Errorf(api.PolicyQuota, "%s: this call may use %d tokens, more than the whole budget of %d tokens per %s; ask for fewer tokens (max_tokens) or a larger quota",
				s, estimate, b, p.name)
			if worst == nil {
				worst = e
			}
		case w.used+w.reserved+estimate > b:
			refuse(w.start.Add(p.len).Sub(now), "has used %d of its %d tokens this %s (%d more in flight); the budget renews at %s",
				w.used, b, p.name, w.reserved, w.start.Add(p.len).Format(time.RFC3339))
		}
	}
	return worst
}

// wait is how long a per-minute bucket of size n takes to refill missing tokens.
func wait(missing float64, n int) time.Duration {
	return time.Duration(missing / float64(n) * float64(time.Minute)).Round(time.Millisecond)
}

// Usage is what a scope has used against its limits.
type Usage struct {
	Scope  Scope  `json:"scope"`
	Limits Limits `json:"limits"`
	// Per window: tokens used, estimates of calls in flight, and when it renews.
	HourUsed     int64     `json:"hour_used"`
	HourReserved int64     `json:"hour_reserved"`
	HourRenews   time.Time `json:"hour_renews"`
	DayUsed      int64     `json:"day_used"`
	DayReserved  int64     `json:"day_reserved"`
	DayRenews    time.Time `json:"day_renews"`
	InFlight     int       `json:"in_flight"`
	// RPMLeft and TPMLeft are the buckets' levels now (absent without the limit).
	RPMLeft *float64 `json:"rpm_left,omitempty"`
	TPMLeft *float64 `json:"tpm_left,omitempty"`
}

// Usage reports p's usage and its tenant's (admins have none).
func (q *Quotas) Usage(p Principal) []Usage {
	out := []Usage{}
	if p.Kind != KindAgent {
		return out
	}
	for _, s := range scopesOf(p) {
		out = append(out, q.UsageOf(s))
	}
	return out
}

// UsageOf reports the usage of one scope: zero for a scope without a quota, whose
// calls are not counted here.
func (q *Quotas) UsageOf(s Scope) Usage {
	q.mu.Lock()
	defer q.mu.Unlock()
	now := q.clock.Now()
	st, ok := q.scopes[s]
	if !ok {
		st = &scopeState{}
	}
	st.roll(now)
	u := Usage{Scope: s, Limits: st.limits, InFlight: st.inflight,
		HourUsed: st.windows[0].used, HourReserved: st.windows[0].reserved, HourRenews: st.windows[0].start.Add(time.Hour),
		DayUsed: st.windows[1].used, DayReserved: st.windows[1].reserved, DayRenews: st.windows[1].start.Add(24 * time.Hour)}
	if st.rpm != nil {
		v := st.rpm.TokensAt(now)
		u.RPMLeft = &v
	}
	if st.tpm != nil {
		v := st.tpm.TokensAt(now)
		u.TPMLeft = &v
	}
	return u
}

// Scopes lists the scopes that have limits.
func (q *Quotas) Scopes() []Scope {
	q.mu.Lock()
	defer q.mu.Unlock()
	var out []Scope
	for s, st := range q.scopes {
		if st.limits != (Limits{}) {
			out = append(out, s)
		}
	}
	slices.SortFunc(out, func(a, b Scope) int {
		if a.Kind != b.Kind {
			return strings.Compare(string(a.Kind), string(b.Kind))
		}
		return strings.Compare(a.Name, b.Name)
	})
	return out
}

// Reset clears what s has used: its budgets start over and its buckets are full again.
// Calls in flight still end normally; what they use counts from now on.
func (q *Quotas) Reset(ctx context.Context, s Scope) error {
	q.mu.Lock()
	st, ok := q.scopes[s]
	if !ok {
		q.mu.Unlock()
		return api.Errorf(api.CallerNotFound, "access: %s has no quota to reset", s)
	}
	now := q.clock.Now()
	st.roll(now)
	for i := range st.windows {
		st.windows[i] = window{start: st.windows[i].start, gen: st.windows[i].gen + 1}
	}
	st.rpm, st.tpm = nil, nil
	st.setLimits(st.limits, now)
	st.dirty = true
	q.mu.Unlock()
	if err := q.Flush(ctx); err != nil {
		return err
	}
	return q.audit.record(ctx, "quota.reset", "Quota:"+string(s.Kind)+":"+s.Name, "done", nil)
}

// Flush writes the counters changed since the last flush.
func (q *Quotas) Flush(ctx context.Context) error {
	type row struct {
		s     Scope
		per   string
		start int64
		used  int64
	}
	var rows []row
	var flushed []*scopeState
	q.mu.Lock()
	for s, st := range q.scopes {
		if !st.dirty {
			continue
		}
		for i, w := range st.windows {
			if !w.start.IsZero() {
				rows = append(rows, row{s, periods[i].name, w.start.UnixNano(), w.used})
			}
		}
		st.dirty = false
		flushed = append(flushed, st)
	}
	q.mu.Unlock()
	if len(rows) == 0 {
		return nil
	}
	err := q.store.write(ctx, func(tx sqldb.Tx) error {
		for _, r := range rows {
			if _, err := tx.Exec(ctx, `INSERT INTO access_quota_usage (scope, name, period, window_start, used) VALUES ($1, $2, $3, $4, $5)
				ON CONFLICT (scope, name, period) DO UPDATE SET window_start = excluded.window_start, used = excluded.used`,
				string(r.s.Kind), r.s.Name, r.per, r.start, r.used); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		q.mu.Lock()
		for _, st := range flushed {
			st.dirty = true // try again next time
		}
		q.mu.Unlock()
		return internal(err, "write quota usage")
	}
	return nil
}
