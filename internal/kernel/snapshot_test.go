package kernel

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aios-go/aios/api"
	"github.com/aios-go/aios/internal/llm"
	"github.com/aios-go/aios/internal/llm/sim"
	"github.com/aios-go/aios/internal/llm/simcore"
	"github.com/aios-go/aios/internal/sched"
)

// The snapshot shows each call in flight in the state it is in (running on its core,
// queued behind it, a tool call on its tool), and the ring then holds each as it ended:
// in order, with its terminal state, kind and timings.
func TestSnapshotInFlightAndEnded(t *testing.T) {
	release := make(chan struct{})
	core := CoreConfig{Model: "m", Backend: "test", Core: &funcCore{
		cap: llm.Capacity{MaxInflight: 1},
		gen: func(ctx context.Context, req *llm.Request, emit func(llm.Delta)) (*llm.Result, error) {
			emit(llm.Delta{Text: "x"})
			select {
			case <-release:
				return &llm.Result{Text: "x", Usage: api.Usage{PromptTokens: 3, CompletionTokens: 1, TotalTokens: 4}}, nil
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		},
	}}
	g := newGated(1, 0, 0)
	k := newKernel(t, Options{Services: map[sched.Module]Service{sched.Tool: g}}, core)
	ctx := t.Context()

	running, err := k.SubmitLLM(ctx, LLMCall{Agent: "alice", Program: "p1", Op: "chat", Request: llm.Request{Messages: userMsg("hi"), MaxTokens: 10}})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the first call running", func() bool { return k.Status().Running["llm"] == 1 })
	queued, err := k.SubmitLLM(ctx, LLMCall{Agent: "bob", Op: "chat", Request: llm.Request{Messages: userMsg("hi"), MaxTokens: 10}})
	if err != nil {
		t.Fatal(err)
	}
	cctx, cancel := context.WithCancel(ctx)
	abandoned, err := k.SubmitLLM(cctx, LLMCall{Agent: "carol", Op: "chat", Request: llm.Request{Messages: userMsg("hi"), MaxTokens: 10}})
	if err != nil {
		t.Fatal(err)
	}
	tool, err := k.Submit(ctx, Call{Agent: "alice", Program: "p1", Module: sched.Tool, Op: "call", Resource: "slow"})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the tool call running", func() bool { return k.Status().Running["tool"] == 1 })

	s := k.Snapshot()
	if len(s.InFlight) != 4 || s.LastEnded != 0 {
		t.Fatalf("snapshot: %d in flight, last ended %d: %+v", len(s.InFlight), s.LastEnded, s.InFlight)
	}
	if s.Queued[sched.LLM] != 2 || s.Running[sched.LLM] != 1 || s.Running[sched.Tool] != 1 || s.Queued[sched.Tool] != 0 ||
		len(s.Cores) != 1 || s.Cores[0].ID != "test/m#0" || s.Cores[0].Inflight != 1 || s.Cores[0].Tokens == 0 {
		t.Errorf("counts: queued %v running %v cores %+v", s.Queued, s.Running, s.Cores)
	}
	byID := map[uint64]SyscallView{}
	for i, v := range s.InFlight {
		if i > 0 && v.ID <= s.InFlight[i-1].ID {
			t.Fatalf("in-flight calls not in ID order: %+v", s.InFlight)
		}
		byID[v.ID] = v
	}
	r := byID[running.ID]
	if r.State != "running" || r.Agent != "alice" || r.Program != "p1" || r.Module != sched.LLM || r.Op != "chat" ||
		r.Resource != "m" || r.Core != "test/m#0" || r.Slices != 1 || r.Tokens == 0 || r.Start.IsZero() || !r.End.IsZero() {
		t.Errorf("running call: %+v", r)
	}
	q := byID[queued.ID]
	if q.State != "queued" || q.Agent != "bob" || q.Program != "bob" || q.Core != "" || q.Slices != 0 || !q.Start.IsZero() ||
		q.Waited <= 0 || q.Waited > s.Time.Sub(q.Arrival) {
		t.Errorf("queued call: %+v (snapshot at %v)", q, s.Time)
	}
	tv := byID[tool.ID]
	if tv.State != "running" || tv.Module != sched.Tool || tv.Resource != "slow" || tv.Op != "call" || tv.Core != "" || tv.Tokens != 0 {
		t.Errorf("tool call: %+v", tv)
	}

	cancel()
	if _, err := abandoned.Wait(ctx); api.KindOf(err) != api.CallerCancelled {
		t.Fatalf("abandoned call: %v", err)
	}
	close(release)
	close(g.release)
	for _, sc := range []*Syscall{running, queued, tool} {
		if _, err := sc.Wait(ctx); err != nil {
			t.Fatalf("call %d: %v", sc.ID, err)
		}
	}
	// A call is recorded just after its waiters are released.
	waitFor(t, "four calls in the ring", func() bool { return len(k.Ended(0)) == 4 })
	ended := k.Ended(0)
	if len(ended) != 4 {
		t.Fatalf("ended: %+v", ended)
	}
	seen := map[uint64]SyscallView{}
	for i, v := range ended {
		if v.Seq != uint64(i+1) {
			t.Fatalf("ended[%d] has seq %d: %+v", i, v.Seq, ended)
		}
		seen[v.ID] = v
	}
	if a := seen[abandoned.ID]; a.State != "cancelled" || a.Kind != api.CallerCancelled || !a.Start.IsZero() || a.Slices != 0 ||
		a.Waited != abandoned.Timings().Turnaround {
		t.Errorf("abandoned call in the ring: %+v", a)
	}
	for _, sc := range []*Syscall{running, queued, tool} {
		v, tm := seen[sc.ID], sc.Timings()
		if v.State != "done" || v.Kind != "" || v.Core != "" || !v.Arrival.Equal(tm.Arrival) || !v.Start.Equal(tm.Start) ||
			!v.End.Equal(tm.End) || v.Waited != tm.Waiting || v.Slices != 1 {
			t.Errorf("call %d in the ring: %+v, timings %+v", sc.ID, v, tm)
		}
	}
	if got := k.Ended(3); len(got) != 1 || got[0].Seq != 4 {
		t.Errorf("Ended(3): %+v", got)
	}
	if got := k.Ended(4); got != nil {
		t.Errorf("Ended(4): %+v", got)
	}
	if s := k.Snapshot(); len(s.InFlight) != 0 || s.LastEnded != 4 {
		t.Errorf("after all ended: %+v", s)
	}
}

// A preempted LLM call's slices are in the ring: one more than its context switches.
func TestSnapshotCountsSlices(t *testing.T) {
	c, err := simcore.New(simcore.Config{Config: sim.Config{Model: "sim", Speed: 25}, MaxInflight: 1})
	if err != nil {
		t.Fatal(err)
	}
	k := newKernel(t, Options{Policy: "rr", TimeSlice: 5 * time.Millisecond, WorkingSet: &sched.WorkingSet{}},
		CoreConfig{Model: "sim", Backend: "sim", Core: c})
	var wg sync.WaitGroup
	calls := make([]*Syscall, 3)
	for i := range calls {
		wg.Go(func() {
			_, sc, err := k.CallLLM(t.Context(), LLMCall{Agent: "a", Program: string(rune('p' + i)),
				Request: llm.Request{Messages: userMsg("task"), MaxTokens: 120}})
			if err != nil {
				t.Error(err)
			}
			calls[i] = sc
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	total := 0
	for _, v := range k.Ended(0) {
		for _, sc := range calls {
			if sc.ID == v.ID && (v.Preempted != sc.Preempted() || v.Slices != v.Preempted+1) {
				t.Errorf("call %d: preempted %d slices %d, its syscall says preempted %d", v.ID, v.Preempted, v.Slices, sc.Preempted())
			}
		}
		total += v.Preempted
	}
	if total == 0 {
		t.Fatal("no call was preempted: the test did not exercise the context switch")
	}
}

// The ring keeps the last RecentSize calls; a reader that fell behind gets those.
func TestSnapshotRingIsBounded(t *testing.T) {
	var r recentRing
	for i := range RecentSize + 10 {
		r.add(SyscallView{ID: uint64(i + 1)})
	}
	all := r.since(0)
	if len(all) != RecentSize || all[0].Seq != 11 || all[0].ID != 11 || all[len(all)-1].Seq != RecentSize+10 {
		t.Fatalf("since(0): %d entries from seq %d to %d", len(all), all[0].Seq, all[len(all)-1].Seq)
	}
	if got := r.since(RecentSize + 7); len(got) != 3 || got[0].ID != RecentSize+8 {
		t.Fatalf("since(last-3): %+v", got)
	}
	if got := r.since(RecentSize + 10); got != nil {
		t.Fatalf("since(last): %+v", got)
	}
}

// Options.OnEnd and every observer added with ObserveEnds hear of each ended syscall
// once; a stopped observer hears of no more.
func TestSnapshotObserversFanOut(t *testing.T) {
	var onEnd, first, second atomic.Int64
	k := newKernel(t, Options{OnEnd: func(*Syscall) { onEnd.Add(1) }}, echoCore())
	stop1 := k.ObserveEnds(func(*Syscall) { first.Add(1) })
	stop2 := k.ObserveEnds(func(*Syscall) { second.Add(1) })
	defer stop2()
	call := func() {
		t.Helper()
		if _, _, err := k.CallLLM(t.Context(), LLMCall{Agent: "a", Request: llm.Request{Messages: userMsg("hi")}}); err != nil {
			t.Fatal(err)
		}
	}
	call()
	// The observers run after the caller is released: wait for them, as a reader would.
	waitFor(t, "the first call observed", func() bool { return onEnd.Load() == 1 && first.Load() == 1 && second.Load() == 1 })
	stop1()
	call()
	waitFor(t, "the second call observed", func() bool { return onEnd.Load() == 2 && second.Load() == 2 })
	if n := first.Load(); n != 1 {
		t.Fatalf("a stopped observer heard of %d calls, want 1", n)
	}
}
