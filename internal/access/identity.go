package access

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/aios-go/aios/api"
	"github.com/aios-go/aios/internal/sqldb"
)

// Tenant is an organisation whose agents are walled off from every other tenant's.
type Tenant struct {
	Name    string    `json:"name"`
	Created time.Time `json:"created"`
}

// Agent is a registered agent.
type Agent struct {
	Name   string `json:"name"`
	Tenant string `json:"tenant"`
	// Groups are privilege groups within the tenant. Agents that share a group may read
	// and change each other's memory and storage (AIOS's privilege groups).
	Groups   []string  `json:"groups"`
	Created  time.Time `json:"created"`
	Disabled bool      `json:"disabled"`
}

// Directory registers tenants and agents and answers who is in which group.
type Directory struct {
	store *Store
	audit *Audit
	clock Clock
	ttl   time.Duration

	// Every syscall on a namespace needs its owner's tenant and groups; reading them
	// once per ttl instead of once per call keeps PostgreSQL's round trip off the hot
	// path. Changes made through this Directory take effect at once; changes made by
	// another kernel sharing the database, within ttl.
	mu    sync.Mutex
	cache map[string]cachedAgent
}

type cachedAgent struct {
	a     Agent
	found bool
	at    time.Time
}

func newDirectory(s *Store, a *Audit, c Clock, ttl time.Duration) *Directory {
	return &Directory{store: s, audit: a, clock: c, ttl: ttl, cache: map[string]cachedAgent{}}
}

// AddTenant registers a tenant.
func (d *Directory) AddTenant(ctx context.Context, name string) (Tenant, error) {
	if err := checkName("tenant", name, false); err != nil {
		return Tenant{}, api.Wrap(api.CallerBadRequest, err, "access")
	}
	t := Tenant{Name: name, Created: d.clock.Now()}
	var n int64
	err := d.store.write(ctx, func(tx sqldb.Tx) error {
		var err error
		n, err = tx.Exec(ctx, `INSERT INTO access_tenants (name, created) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING`, name, t.Created.UnixNano())
		return err
	})
	if err != nil {
		return Tenant{}, internal(err, "add tenant %s", name)
	}
	if n == 0 {
		return Tenant{}, api.Errorf(api.CallerBadRequest, "access: tenant %s exists already", name)
	}
	return t, d.audit.record(ctx, "tenant.add", "Tenant:"+name, "done", nil)
}

// Tenants lists the tenants by name.
func (d *Directory) Tenants(ctx context.Context) ([]Tenant, error) {
	rows, err := d.store.db.Read().Query(ctx, `SELECT name, created FROM access_tenants ORDER BY name`)
	if err != nil {
		return nil, internal(err, "list tenants")
	}
	defer rows.Close()
	var out []Tenant
	for rows.Next() {
		var t Tenant
		var c int64
		if err := rows.Scan(&t.Name, &c); err != nil {
			return nil, internal(err, "list tenants")
		}
		t.Created = time.Unix(0, c)
		out = append(out, t)
	}
	return out, internal(rows.Err(), "list tenants")
}

// AddAgent registers a. Its tenant must exist, except DefaultTenant (the default),
// which is created on first use.
func (d *Directory) AddAgent(ctx context.Context, a Agent) (Agent, error) {
	if a.Tenant == "" {
		a.Tenant = DefaultTenant
	}
	if err := checkName("agent", a.Name, true); err != nil {
		return Agent{}, api.Wrap(api.CallerBadRequest, err, "access")
	}
	groups, err := normGroups(a.Groups)
	if err != nil {
		return Agent{}, err
	}
	a.Groups, a.Created, a.Disabled = groups, d.clock.Now(), false
	gj, _ := json.Marshal(a.Groups)
	var dup, noTenant bool
	err = d.store.write(ctx, func(tx sqldb.Tx) error {
		if a.Tenant == DefaultTenant {
			if _, err := tx.Exec(ctx, `INSERT INTO access_tenants (name, created) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING`,
				DefaultTenant, a.Created.UnixNano()); err != nil {
				return err
			}
		}
		var one int
		err := tx.QueryRow(ctx, `SELECT 1 FROM access_tenants WHERE name = $1`, a.Tenant).Scan(&one)
		if errors.Is(err, sqldb.ErrNoRows) {
			noTenant = true
			return nil
		} else if err != nil {
			return err
		}
		n, err := tx.Exec(ctx, `INSERT INTO access_agents (name, tenant, groups_json, created, disabled) VALUES ($1, $2, $3, $4, 0)
			ON CONFLICT (name) DO NOTHING`, a.Name, a.Tenant, string(gj), a.Created.UnixNano())
		dup = n == 0
		return err
	})
	switch {
	case err != nil:
		return Agent{}, internal(err, "add agent %s", a.Name)
	case noTenant:
		return Agent{}, api.Errorf(api.CallerBadRequest, "access: tenant %s does not exist; add it first", a.Tenant)
	case dup:
		return Agent{}, api.Errorf(api.CallerBadRequest, "access: agent %s exists already", a.Name)
	}
	d.forget(a.Name)
	return a, d.audit.record(ctx, "agent.add", "Agent:"+a.Name, "done",
		map[string]string{"tenant": a.Tenant, "groups": strings.Join(a.Groups, ",")})
}

func normGroups(gs []string) ([]string, error) {
	out := make([]string, 0, len(gs))
	for _, g := range gs {
		if err := checkName("group", g, false); err != nil {
			return nil, api.Wrap(api.CallerBadRequest, err, "access")
		}
		out = append(out, g)
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

// Agent returns the registered agent name, or caller_not_found.
func (d *Directory) Agent(ctx context.Context, name string) (Agent, error) {
	a, found, err := d.read(ctx, name)
	if err != nil {
		return Agent{}, err
	}
	if !found {
		return Agent{}, api.Errorf(api.CallerNotFound, "access: no agent %s is registered", name)
	}
	return a, nil
}

// Agents lists the agents of tenant, or of every tenant when tenant is "".
func (d *Directory) Agents(ctx context.Context, tenant string) ([]Agent, error) {
	q, args := `SELECT name, tenant, groups_json, created, disabled FROM access_agents ORDER BY name`, []any{}
	if tenant != "" {
		q, args = `SELECT name, tenant, groups_json, created, disabled FROM access_agents WHERE tenant = $1 ORDER BY name`, []any{tenant}
	}
	rows, err := d.store.db.Read().Query(ctx, q, args...)
	if err != nil {
		return nil, internal(err, "list agents")
	}
	defer rows.Close()
	var out []Agent
	for rows.Next() {
		a, err := scanAgent(rows)
		if err != nil {
			return nil, internal(err, "list agents")
		}
		out = append(out, a)
	}
	return out, internal(rows.Err(), "list agents")
}

func scanAgent(r sqldb.Row) (Agent, error) {
	var a Agent
	var gj string
	var created, disabled int64
	if err := r.Scan(&a.Name, &a.Tenant, &gj, &created, &disabled); err != nil {
		return Agent{}, err
	}
	if err := json.Unmarshal([]byte(gj), &a.Groups); err != nil {
		return Agent{}, err
	}
	a.Created, a.Disabled = time.Unix(0, created), disabled != 0
	return a, nil
}

// SetGroups replaces the groups of agent name.
func (d *Directory) SetGroups(ctx context.Context, name string, groups []string) (Agent, error) {
	gs, err := normGroups(groups)
	if err != nil {
		return Agent{}, err
	}
	gj, _ := json.Marshal(gs)
	return d.update(ctx, name, "agent.groups", `UPDATE access_agents SET groups_json = $2 WHERE name = $1`, string(gj),
		map[string]string{"groups": strings.Join(gs, ",")})
}

// SetDisabled disables (or enables again) agent name: a disabled agent's keys do not
// authenticate.
func (d *Directory) SetDisabled(ctx context.Context, name string, disabled bool) (Agent, error) {
	v, what := int64(0), "agent.enable"
	if disabled {
		v, what = 1, "agent.disable"
	}
	return d.update(ctx, name, what, `UPDATE access_agents SET disabled = $2 WHERE name = $1`, v, nil)
}

func (d *Directory) update(ctx context.Context, name, what, q string, v any, details map[string]string) (Agent, error) {
	var n int64
	err := d.store.write(ctx, func(tx sqldb.Tx) error {
		var err error
		n, err = tx.Exec(ctx, q, name, v)
		return err
	})
	if err != nil {
		return Agent{}, internal(err, "%s %s", what, name)
	}
	if n == 0 {
		return Agent{}, api.Errorf(api.CallerNotFound, "access: no agent %s is registered", name)
	}
	d.forget(name)
	if err := d.audit.record(ctx, what, "Agent:"+name, "done", details); err != nil {
		return Agent{}, err
	}
	return d.Agent(ctx, name)
}

func (d *Directory) forget(name string) {
	d.mu.Lock()
	delete(d.cache, name)
	d.mu.Unlock()
}

// lookup is read through the cache: for the gate and authentication.
func (d *Directory) lookup(ctx context.Context, name string) (Agent, bool, error) {
	now := d.clock.Now()
	d.mu.Lock()
	c, ok := d.cache[name]
	d.mu.Unlock()
	if ok && now.Sub(c.at) < d.ttl && now.Sub(c.at) >= 0 {
		return c.a, c.found, nil
	}
	a, found, err := d.read(ctx, name)
	if err != nil {
		return Agent{}, false, err
	}
	d.mu.Lock()
	if len(d.cache) > 100_000 { // names callers make up must not grow it without bound
		clear(d.cache)
	}
	d.cache[name] = cachedAgent{a: a, found: found, at: now}
	d.mu.Unlock()
	return a, found, nil
}

func (d *Directory) read(ctx context.Context, name string) (Agent, bool, error) {
	a, err := scanAgent(d.store.db.Read().QueryRow(ctx,
		`SELECT name, tenant, groups_json, created, disabled FROM access_agents WHERE name = $1`, name))
	if errors.Is(err, sqldb.ErrNoRows) {
		return Agent{}, false, nil
	}
	if err != nil {
		return Agent{}, false, internal(err, "read agent %s", name)
	}
	return a, true, nil
}
