package server

import (
	"cmp"
	"context"
	"slices"
	"sync"
	"time"

	"github.com/aios-go/aios/api"
	"github.com/aios-go/aios/internal/kernel"
	"github.com/aios-go/aios/internal/sched"
)

// memoryEvery bounds how often the dashboard asks the memory module for its counts: they
// run SQL aggregates, and every open dashboard asks twice a second.
const memoryEvery = 5 * time.Second

// dashboard assembles the kernel's state for /ui from what the kernel and the modules
// already report: Status, Snapshot, the recent calls, the usage book, working-set, tool
// and memory counters.
type dashboard struct {
	s *Server

	memMu  sync.Mutex
	memAt  time.Time
	memErr error
	mem    *api.MemoryStats
}

// state is the dashboard's view now; withRecent adds the recent ended calls.
func (d *dashboard) state(ctx context.Context, withRecent bool) api.DashboardState {
	k := d.s.k
	cs := k.Status()
	snap := k.Snapshot()
	// Only calls that ended by the snapshot: one that ended since is in its in-flight
	// list, and a stream sends it as an "end" event after LastEnded.
	recent := k.Ended(0)
	for len(recent) > 0 && recent[len(recent)-1].Seq > snap.LastEnded {
		recent = recent[:len(recent)-1]
	}
	usage := k.Usage(kernel.UsageFilter{})

	st := api.DashboardState{
		TimeMs: unixMs(snap.Time), StartedMs: unixMs(k.Started()),
		Status: cs.Status, Scheduler: cs.Scheduler, Cores: cs.LLMCores,
		InFlight: make([]api.DashboardSyscall, 0, len(snap.InFlight)), LastEnded: snap.LastEnded,
		Usage: usage.Total,
	}
	if st.Cores == nil {
		st.Cores = []api.LLMCoreStatus{}
	}
	// The counts come from the snapshot, taken at the same moment as the calls in
	// flight, so the panels agree with each other.
	for m := sched.Module(0); m < sched.NumModules; m++ {
		st.Modules = append(st.Modules, api.DashboardModule{Name: m.String(), Enabled: k.Enabled(m), Queued: snap.Queued[m], Running: snap.Running[m]})
	}
	for i := range st.Cores {
		for _, l := range snap.Cores {
			if l.ID == st.Cores[i].ID {
				st.Cores[i].Inflight, st.Cores[i].TokensInflight = l.Inflight, l.Tokens
			}
		}
	}
	for _, v := range snap.InFlight {
		st.InFlight = append(st.InFlight, syscallView(v))
	}
	if withRecent {
		st.Recent = make([]api.DashboardSyscall, 0, len(recent))
		for _, v := range recent {
			st.Recent = append(st.Recent, syscallView(v))
		}
	}
	st.Agents = agentsOf(usage.Agents, snap.InFlight, recent)
	if ws := k.WorkingSetStats(); ws.Enabled {
		st.WorkingSet = &api.DashboardWorkingSet{Active: ws.Active, Tokens: ws.Tokens, Admissions: ws.Admissions, Suspensions: ws.Suspensions}
	}
	if d.s.opts.ToolStatus != nil {
		st.Tools = d.s.opts.ToolStatus()
	}
	st.Memory = d.memory(ctx)
	return st
}

// memory returns the memory module's counters, asked at most every memoryEvery.
func (d *dashboard) memory(ctx context.Context) *api.MemoryStats {
	if d.s.opts.MemoryStats == nil {
		return nil
	}
	d.memMu.Lock()
	defer d.memMu.Unlock()
	if !d.memAt.IsZero() && time.Since(d.memAt) < memoryEvery {
		return d.mem
	}
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	m, err := d.s.opts.MemoryStats.Stats(ctx)
	if err != nil {
		if d.memErr == nil {
			d.s.log.Warn("dashboard: the memory module's counters are unavailable", "err", err)
		}
		d.memErr, d.memAt = err, time.Now()
		return d.mem // the last good answer, if any
	}
	d.memErr, d.memAt = nil, time.Now()
	d.mem = &api.MemoryStats{
		HotNotes: m.HotNotes, HotBytes: m.HotBytes, BudgetBytes: m.Budget, Evictions: m.Evictions, Faults: m.Faults,
		Notes: m.Notes, IndexBytes: m.IndexBytes, TrieLogicalBytes: m.TrieLogicalBytes, TrieStoredBytes: m.TrieStoredBytes,
		CompressionRatio: m.CompressionRatio,
	}
	return d.mem
}

// agentsOf lists every agent the usage book charged or that has calls in flight or
// among the recent calls, by name, with its programs seen in those calls.
func agentsOf(usage map[string]api.UsageCounters, inflight, recent []kernel.SyscallView) []api.DashboardAgent {
	type agent struct {
		api.DashboardAgent
		progs map[string]*api.DashboardProgram
	}
	all := map[string]*agent{}
	get := func(name string) *agent {
		a := all[name]
		if a == nil {
			a = &agent{DashboardAgent: api.DashboardAgent{Name: name}, progs: map[string]*api.DashboardProgram{}}
			all[name] = a
		}
		return a
	}
	seen := func(v kernel.SyscallView, at time.Time) (*agent, *api.DashboardProgram) {
		a := get(v.Agent)
		p := a.progs[v.Program]
		if p == nil {
			p = &api.DashboardProgram{Name: v.Program}
			a.progs[v.Program] = p
		}
		ms := unixMs(at)
		a.LastActiveMs = max(a.LastActiveMs, ms)
		p.LastActiveMs = max(p.LastActiveMs, ms)
		return a, p
	}
	for name, u := range usage {
		get(name).Usage = u
	}
	for _, v := range recent {
		seen(v, v.End)
	}
	for _, v := range inflight {
		a, p := seen(v, v.Arrival)
		p.Inflight++
		if v.State == "queued" {
			a.Queued++
		} else {
			a.Running++
		}
	}
	out := make([]api.DashboardAgent, 0, len(all))
	for _, a := range all {
		a.Programs = make([]api.DashboardProgram, 0, len(a.progs))
		for _, p := range a.progs {
			a.Programs = append(a.Programs, *p)
		}
		slices.SortFunc(a.Programs, func(x, y api.DashboardProgram) int { return cmp.Compare(x.Name, y.Name) })
		out = append(out, a.DashboardAgent)
	}
	slices.SortFunc(out, func(x, y api.DashboardAgent) int { return cmp.Compare(x.Name, y.Name) })
	return out
}

// syscallView is a kernel view of a syscall in the dashboard's wire shape.
func syscallView(v kernel.SyscallView) api.DashboardSyscall {
	return api.DashboardSyscall{
		ID: v.ID, Seq: v.Seq, Agent: v.Agent, Program: v.Program, Module: v.Module.String(), Op: v.Op,
		Resource: v.Resource, Core: v.Core, State: v.State, Kind: v.Kind,
		ArrivalMs: unixMs(v.Arrival), StartMs: unixMs(v.Start), EndMs: unixMs(v.End),
		WaitedMs: float64(v.Waited) / float64(time.Millisecond),
		Slices:   v.Slices, Preempted: v.Preempted, Tokens: v.Tokens,
	}
}

// unixMs is t in Unix milliseconds, with its fraction; 0 for the zero time.
func unixMs(t time.Time) float64 {
	if t.IsZero() {
		return 0
	}
	return float64(t.UnixMicro()) / 1e3
}
