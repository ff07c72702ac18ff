package sched

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

const ms = time.Millisecond

// newSched builds a scheduler whose preemptive policies use slice: rr's time slice and
// plas/atlas's base quantum. Groups of the fixed-order policies linger briefly, so
// randomized tests move on in a few virtual milliseconds.
func newSched(t *testing.T, policy string, slice time.Duration, cores ...CoreSpec) *Scheduler {
	t.Helper()
	return newSchedCfg(t, Config{Name: policy, Slice: slice, QuantumBase: slice, Linger: 2 * slice}, cores...)
}

func newSchedCfg(t *testing.T, cfg Config, cores ...CoreSpec) *Scheduler {
	t.Helper()
	s := New(func(Module) Policy {
		p, err := NewPolicy(cfg)
		if err != nil {
			t.Fatal(err)
		}
		return p
	})
	for _, c := range cores {
		if err := s.AddCore(c); err != nil {
			t.Fatal(err)
		}
	}
	return s
}

// event drives the scheduler in a decision table: submit, complete or tick, then the
// dispatch decisions expected at that instant ("id@core ..." or "" for none).
type event struct {
	at       time.Duration
	op       string // submit, complete, preempt (expect preemptions then requeue them), cancel
	id       uint64
	prio     int
	tokens   int
	model    string
	want     string // dispatch decisions after the event
	wantPrem string // for preempt: the calls expected to be preempted

	// What learning and program-aware policies read.
	prog, agent, text string
	in, maxOut        int // prompt tokens and output limit, at submit
	out               int // output tokens produced, set at complete

	check func(t *testing.T) // run after the event's dispatch decisions, if set
}

func runTable(t *testing.T, s *Scheduler, events []event) {
	t.Helper()
	calls := map[uint64]*Call{}
	for i, ev := range events {
		switch ev.op {
		case "submit":
			c := &Call{ID: ev.id, Module: LLM, Priority: ev.prio, Tokens: ev.tokens, Model: ev.model,
				Program: ev.prog, Agent: ev.agent, Text: ev.text, InputTokens: ev.in, MaxOutput: ev.maxOut}
			calls[ev.id] = c
			if err := s.Submit(c, ev.at); err != nil {
				t.Fatalf("event %d: submit %d: %v", i, ev.id, err)
			}
		case "complete":
			calls[ev.id].OutputTokens = ev.out
			s.Complete(calls[ev.id], ev.at)
		case "cancel":
			s.Cancel(calls[ev.id], ev.at)
		case "preempt":
			var got []string
			for _, c := range s.Preemptions(ev.at) {
				got = append(got, fmt.Sprint(c.ID))
				s.Requeue(c, ev.at)
			}
			if g := strings.Join(got, " "); g != ev.wantPrem {
				t.Fatalf("event %d at %v: preempted %q, want %q", i, ev.at, g, ev.wantPrem)
			}
		case "tick":
		default:
			t.Fatalf("bad op %q", ev.op)
		}
		var got []string
		for _, a := range s.Dispatch(ev.at) {
			got = append(got, fmt.Sprintf("%d@%d", a.Call.ID, a.Core))
		}
		if g := strings.Join(got, " "); g != ev.want {
			t.Fatalf("event %d (%s %d at %v): dispatched %q, want %q", i, ev.op, ev.id, ev.at, g, ev.want)
		}
		if ev.check != nil {
			ev.check(t)
		}
	}
}

func oneCore(max int) CoreSpec { return CoreSpec{ID: 0, Module: LLM, MaxInflight: max} }

func TestFIFOOrder(t *testing.T) {
	s := newSched(t, "fifo", 0, oneCore(1))
	runTable(t, s, []event{
		{at: 0, op: "submit", id: 1, want: "1@0"},
		{at: 1 * ms, op: "submit", id: 2, prio: 9, want: ""},
		{at: 2 * ms, op: "submit", id: 3, want: ""},
		{at: 10 * ms, op: "complete", id: 1, want: "2@0"},
		{at: 20 * ms, op: "complete", id: 2, want: "3@0"},
		{at: 30 * ms, op: "complete", id: 3, want: ""},
	})
}

func TestFIFONeverPreempts(t *testing.T) {
	s := newSched(t, "fifo", 0, oneCore(1))
	runTable(t, s, []event{
		{at: 0, op: "submit", id: 1, want: "1@0"},
		{at: 1 * ms, op: "submit", id: 2, want: ""},
		{at: time.Hour, op: "preempt", wantPrem: "", want: ""},
	})
}

func TestRoundRobinSlices(t *testing.T) {
	s := newSched(t, "rr", 10*ms, oneCore(1))
	runTable(t, s, []event{
		{at: 0, op: "submit", id: 1, want: "1@0"},
		{at: 1 * ms, op: "submit", id: 2, want: ""},
		{at: 2 * ms, op: "submit", id: 3, want: ""},
		// Not yet expired.
		{at: 9 * ms, op: "preempt", wantPrem: "", want: ""},
		// 1 used its slice while others wait: it goes to the back; 2 runs.
		{at: 10 * ms, op: "preempt", wantPrem: "1", want: "2@0"},
		{at: 20 * ms, op: "preempt", wantPrem: "2", want: "3@0"},
		{at: 25 * ms, op: "complete", id: 3, want: "1@0"},
		{at: 35 * ms, op: "preempt", wantPrem: "1", want: "2@0"},
		{at: 40 * ms, op: "complete", id: 2, want: "1@0"},
		// Alone: its slice expires but nobody waits, so it keeps the core.
		{at: 100 * ms, op: "preempt", wantPrem: "", want: ""},
		{at: 101 * ms, op: "complete", id: 1, want: ""},
	})
}

func TestRoundRobinAccounting(t *testing.T) {
	s := newSched(t, "rr", 10*ms, oneCore(1))
	a := &Call{ID: 1, Module: LLM}
	b := &Call{ID: 2, Module: LLM}
	mustSubmit(t, s, a, 0)
	s.Dispatch(0)
	mustSubmit(t, s, b, 5*ms)
	for _, c := range s.Preemptions(10 * ms) {
		s.Requeue(c, 10*ms)
	}
	s.Dispatch(10 * ms)
	s.Complete(b, 15*ms)
	s.Dispatch(15 * ms)
	s.Complete(a, 20*ms)
	if a.Service != 15*ms || a.Waited != 5*ms || a.Slices != 2 {
		t.Errorf("a: service %v waited %v slices %d; want 15ms 5ms 2", a.Service, a.Waited, a.Slices)
	}
	if b.Service != 5*ms || b.Waited != 5*ms || b.Slices != 1 {
		t.Errorf("b: service %v waited %v slices %d; want 5ms 5ms 1", b.Service, b.Waited, b.Slices)
	}
	if at, ok := s.NextDeadline(); ok {
		t.Errorf("no call runs, yet NextDeadline = %v", at)
	}
}

func TestRoundRobinSkipsNoPreempt(t *testing.T) {
	s := newSched(t, "rr", 10*ms, oneCore(1))
	a := &Call{ID: 1, Module: LLM, NoPreempt: true}
	mustSubmit(t, s, a, 0)
	s.Dispatch(0)
	mustSubmit(t, s, &Call{ID: 2, Module: LLM}, 1*ms)
	if got := s.Preemptions(50 * ms); len(got) != 0 {
		t.Fatalf("preempted a call marked NoPreempt: %v", got)
	}
}

func TestNextDeadline(t *testing.T) {
	s := newSched(t, "rr", 10*ms, oneCore(2))
	mustSubmit(t, s, &Call{ID: 1, Module: LLM}, 0)
	mustSubmit(t, s, &Call{ID: 2, Module: LLM}, 3*ms)
	s.Dispatch(0)
	s.Dispatch(3 * ms)
	// Nobody waits: no quantum can matter, so there is nothing to wake up for.
	if at, ok := s.NextDeadline(); ok {
		t.Fatalf("NextDeadline = %v with no waiter", at)
	}
	mustSubmit(t, s, &Call{ID: 3, Module: LLM}, 4*ms)
	if at, ok := s.NextDeadline(); !ok || at != 10*ms {
		t.Fatalf("NextDeadline = %v, %v; want 10ms", at, ok)
	}
}

func TestPriorityOrder(t *testing.T) {
	s := newSched(t, "priority", 0, oneCore(1))
	runTable(t, s, []event{
		{at: 0, op: "submit", id: 1, prio: 0, want: "1@0"},
		{at: 1 * ms, op: "submit", id: 2, prio: 1, want: ""},
		{at: 2 * ms, op: "submit", id: 3, prio: 5, want: ""},
		{at: 3 * ms, op: "submit", id: 4, prio: 5, want: ""},
		{at: 4 * ms, op: "submit", id: 5, prio: -1, want: ""},
		{at: 10 * ms, op: "complete", id: 1, want: "3@0"},
		{at: 11 * ms, op: "complete", id: 3, want: "4@0"},
		{at: 12 * ms, op: "complete", id: 4, want: "2@0"},
		{at: 13 * ms, op: "complete", id: 2, want: "5@0"},
	})
}

func TestCancelQueued(t *testing.T) {
	for _, policy := range PolicyNames() {
		t.Run(policy, func(t *testing.T) {
			s := newSched(t, policy, 10*ms, oneCore(1))
			runTable(t, s, []event{
				{at: 0, op: "submit", id: 1, want: "1@0"},
				{at: 1 * ms, op: "submit", id: 2, want: ""},
				{at: 2 * ms, op: "submit", id: 3, want: ""},
				{at: 3 * ms, op: "cancel", id: 2, want: ""},
				{at: 4 * ms, op: "complete", id: 1, want: "3@0"},
			})
			if s.Queued(LLM) != 0 {
				t.Fatalf("queue holds %d calls, want 0", s.Queued(LLM))
			}
		})
	}
}

func TestLeastLoadedRouting(t *testing.T) {
	s := newSched(t, "fifo", 0,
		CoreSpec{ID: 0, Module: LLM, Models: []string{"m"}, MaxInflight: 2},
		CoreSpec{ID: 1, Module: LLM, Models: []string{"m"}, MaxInflight: 4},
		CoreSpec{ID: 2, Module: LLM, Models: []string{"other"}, MaxInflight: 8},
	)
	runTable(t, s, []event{
		{at: 0, op: "submit", id: 1, model: "m", want: "1@0"},        // tie: lowest id
		{at: 0, op: "submit", id: 2, model: "m", want: "2@1"},        // core 0 at 1/2, core 1 at 0/4
		{at: 0, op: "submit", id: 3, model: "m", want: "3@1"},        // 1/2 vs 1/4
		{at: 0, op: "submit", id: 4, model: "m", want: "4@0"},        // 1/2 vs 2/4: tie, lowest id
		{at: 0, op: "submit", id: 5, model: "m", want: "5@1"},        // core 0 full
		{at: 0, op: "submit", id: 6, model: "m", want: "6@1"},        // core 1 takes its 4th
		{at: 0, op: "submit", id: 7, model: "m", want: ""},           // both full
		{at: 0, op: "submit", id: 8, model: "other", want: "8@2"},    // other model unblocked
		{at: 1 * ms, op: "complete", id: 1, model: "m", want: "7@0"}, // freed slot
	})
}

func TestTokenAdmission(t *testing.T) {
	s := newSched(t, "fifo", 0, CoreSpec{ID: 0, Module: LLM, MaxInflight: 10, MaxTokens: 1000})
	runTable(t, s, []event{
		{at: 0, op: "submit", id: 1, tokens: 600, want: "1@0"},
		{at: 0, op: "submit", id: 2, tokens: 500, want: ""}, // 1100 > 1000
		// A smaller call behind a blocked one of the same model waits too (no starvation).
		{at: 0, op: "submit", id: 3, tokens: 100, want: ""},
		{at: 1 * ms, op: "complete", id: 1, want: "2@0 3@0"},
	})
	if err := s.Submit(&Call{ID: 9, Module: LLM, Tokens: 1001}, 0); err != ErrTooLarge {
		t.Fatalf("oversize call: err = %v, want ErrTooLarge", err)
	}
	if err := s.Submit(&Call{ID: 10, Module: LLM, Model: "nope"}, 0); err != nil {
		t.Fatalf("a core with no model list serves any model; got %v", err)
	}
}

func TestSubmitNoCore(t *testing.T) {
	s := newSched(t, "fifo", 0, CoreSpec{ID: 0, Module: LLM, Models: []string{"m"}})
	if err := s.Submit(&Call{ID: 1, Module: LLM, Model: "x"}, 0); err != ErrNoCore {
		t.Fatalf("err = %v, want ErrNoCore", err)
	}
	if err := s.Submit(&Call{ID: 2, Module: Tool}, 0); err != ErrNoCore {
		t.Fatalf("module without cores: err = %v, want ErrNoCore", err)
	}
}

func TestDownCoreIsSkipped(t *testing.T) {
	s := newSched(t, "fifo", 0, CoreSpec{ID: 0, Module: LLM, MaxInflight: 1}, CoreSpec{ID: 1, Module: LLM, MaxInflight: 1})
	s.SetDown(0, true)
	runTable(t, s, []event{
		{at: 0, op: "submit", id: 1, want: "1@1"},
		{at: 0, op: "submit", id: 2, want: ""},
	})
	s.SetDown(0, false)
	if got := s.Dispatch(1 * ms); len(got) != 1 || got[0].Core != 0 {
		t.Fatalf("core back up: dispatched %v, want call 2 on core 0", got)
	}
}

func TestModulesHaveSeparateQueues(t *testing.T) {
	s := newSched(t, "fifo", 0, oneCore(1), CoreSpec{ID: 1, Module: Memory, MaxInflight: 1})
	mustSubmit(t, s, &Call{ID: 1, Module: LLM}, 0)
	mustSubmit(t, s, &Call{ID: 2, Module: LLM}, 0)
	mustSubmit(t, s, &Call{ID: 3, Module: Memory}, 0)
	got := s.Dispatch(0)
	if len(got) != 2 || got[0].Call.ID != 1 || got[1].Call.ID != 3 || got[1].Core != 1 {
		t.Fatalf("dispatch = %v; want 1@0 and 3@1", got)
	}
}

func TestUnknownPolicy(t *testing.T) {
	if _, err := NewPolicy(Config{Name: "lottery"}); err == nil {
		t.Fatal("unknown policy accepted")
	}
	if _, err := NewPolicy(Config{Name: "rr"}); err == nil {
		t.Fatal("rr without a slice accepted")
	}
	if m, ok := ParseModule("storage"); !ok || m != Storage || m.String() != "storage" {
		t.Fatal("ParseModule(storage)")
	}
}

func mustSubmit(t *testing.T, s *Scheduler, c *Call, now time.Duration) {
	t.Helper()
	if err := s.Submit(c, now); err != nil {
		t.Fatal(err)
	}
}

func TestBackfillIsBounded(t *testing.T) {
	s := newSched(t, "fifo", 0, CoreSpec{ID: 0, Module: LLM, MaxInflight: 10, MaxTokens: 1000})
	s.MaxBypass = 2
	runTable(t, s, []event{
		{at: 0, op: "submit", id: 1, tokens: 600, want: "1@0"},
		{at: 0, op: "submit", id: 2, tokens: 500, want: ""}, // waits for room
		// Smaller calls that fit pass it, two at most...
		{at: 0, op: "submit", id: 3, tokens: 100, want: "3@0"},
		{at: 0, op: "submit", id: 4, tokens: 100, want: "4@0"},
		// ...then they wait behind it, though this one would fit.
		{at: 0, op: "submit", id: 5, tokens: 100, want: ""},
		{at: 1 * ms, op: "complete", id: 1, want: "2@0 5@0"},
	})
}

// One dispatcher round, as the kernel and the bench's virtual driver both run it: rr
// with a 1 s slice on one slot. A starts at 0 and the round asks to be run again at 1 s;
// then A is stopped, and once its slice has ended B starts; B's end records its output.
func TestRoundAndSliceEnded(t *testing.T) {
	s := newSched(t, "rr", time.Second, CoreSpec{ID: 0, Module: LLM, MaxInflight: 1})
	a, b := &Call{ID: 1, Module: LLM}, &Call{ID: 2, Module: LLM}
	mustSubmit(t, s, a, 0)
	mustSubmit(t, s, b, 0)
	r := s.Round(0)
	if len(r.Stop) != 0 || ids(r.Start) != "1" || !r.HasNext || r.Next != time.Second {
		t.Fatalf("t=0: %+v", r)
	}
	r = s.Round(time.Second)
	if len(r.Stop) != 1 || r.Stop[0] != a || len(r.Start) != 0 {
		t.Fatalf("t=1s: %+v", r)
	}
	s.SliceEnded(a, true, 0, time.Second)
	if r = s.Round(time.Second); ids(r.Start) != "2" || a.State != Queued {
		t.Fatalf("after A's slice: %+v, A %v", r, a.State)
	}
	s.SliceEnded(b, false, 5, 2*time.Second)
	if b.State != Finished || b.OutputTokens != 5 {
		t.Fatalf("B %v, %d tokens", b.State, b.OutputTokens)
	}
}

// A call is preempted only where its KV stays resident until it resumes: on an LLM core
// with a KV cache, only under working-set admission. rr with a 1 s slice, one slot, two
// calls: at 1 s the first is stopped on a core without KV capacity or with the working
// set, and keeps running on a KV core without it.
func TestPreemptOnlyWhenResident(t *testing.T) {
	for _, tc := range []struct {
		name      string
		maxTokens int
		ws        bool
		want      int
	}{
		{"no KV capacity", 0, false, 1},
		{"KV core, no working set", 1000, false, 0},
		{"KV core, working set", 1000, true, 1},
	} {
		s := newSched(t, "rr", time.Second, CoreSpec{ID: 0, Module: LLM, MaxInflight: 1, MaxTokens: tc.maxTokens})
		if tc.ws {
			s.EnableWorkingSet(WorkingSet{})
		}
		mustSubmit(t, s, &Call{ID: 1, Module: LLM, Program: "a", Tokens: 100}, 0)
		mustSubmit(t, s, &Call{ID: 2, Module: LLM, Program: "b", Tokens: 100}, 0)
		r := s.Round(0)
		if ids(r.Start) != "1" || r.HasNext != (tc.want == 1) {
			t.Fatalf("%s: t=0 %+v", tc.name, r)
		}
		if got := len(s.Round(time.Second).Stop); got != tc.want {
			t.Errorf("%s: %d preempted at 1s, want %d", tc.name, got, tc.want)
		}
	}
}
