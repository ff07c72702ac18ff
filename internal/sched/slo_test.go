package sched

import (
	"strings"
	"testing"
	"time"
)

func TestSLODeadline(t *testing.T) {
	s := time.Second
	for _, tc := range []struct {
		name          string
		slo           SLO
		start, submit time.Duration
		want          time.Duration
	}{
		{"ttft first", SLO{TCT: 100 * s, TTFT: 5 * s}, 10 * s, 50 * s, 55 * s},
		{"tct first", SLO{TCT: 100 * s, TTFT: 5 * s}, 10 * s, 108 * s, 110 * s},
		{"tct only", SLO{TCT: 100 * s}, 10 * s, 108 * s, 110 * s},
		{"ttft only", SLO{TTFT: 5 * s}, 10 * s, 108 * s, 113 * s},
		{"none", SLO{}, 10 * s, 108 * s, 0},
	} {
		if got := tc.slo.Deadline(tc.start, tc.submit); got != tc.want {
			t.Errorf("%s: deadline %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestObjectivesForAndCheck(t *testing.T) {
	o := Objectives{
		Agents:   map[string]SLO{"alice": {TTFT: time.Second}},
		Tenants:  map[string]SLO{"acme": {TCT: time.Minute}},
		TenantOf: func(a string) string { return map[string]string{"alice": "acme", "bob": "acme"}[a] },
	}
	if err := o.Check(); err != nil {
		t.Fatal(err)
	}
	if s, ok := o.For("alice"); !ok || s != (SLO{TTFT: time.Second}) {
		t.Errorf("alice: %v %v, want her own SLO over her tenant's", s, ok)
	}
	if s, ok := o.For("bob"); !ok || s != (SLO{TCT: time.Minute}) {
		t.Errorf("bob: %v %v, want his tenant's", s, ok)
	}
	if _, ok := o.For("carol"); ok {
		t.Error("carol has no tenant with an SLO, yet one applied")
	}
	for _, tc := range []struct {
		o    Objectives
		want string
	}{
		{Objectives{Agents: map[string]SLO{"a": {TCT: -time.Second}}}, "positive"},
		{Objectives{Agents: map[string]SLO{"a": {}}}, "needs a tct or a ttft"},
		{Objectives{Tenants: map[string]SLO{"t": {TCT: time.Second}}}, "tenant"},
	} {
		if err := tc.o.Check(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: error %v, want one saying %q", tc.o, err, tc.want)
		}
	}
}

func TestProgramStarts(t *testing.T) {
	s := time.Second
	p := NewProgramStarts(60*s, 10)
	if got := p.Seen("p", 5*s); got != 5*s {
		t.Errorf("first call: start %v, want 5s", got)
	}
	if got := p.Seen("p", 30*s); got != 5*s {
		t.Errorf("later call: start %v, want the first call's 5s", got)
	}
	// Idle for 60s after its call at 30s: forgotten, so its next call starts it again.
	if got := p.Seen("p", 90*s); got != 90*s {
		t.Errorf("after idling: start %v, want 90s", got)
	}
	p.End("p")
	if p.Len() != 0 {
		t.Errorf("%d programs remembered after End, want 0", p.Len())
	}
}

// sloRun drives the slo policy alone: every pick is taken and started at once, and a
// finished call reports no output, so a client's counter is the prompts it was served.
type sloRun struct {
	t   *testing.T
	p   Policy
	seq uint64
}

func newSLORun(t *testing.T, bound float64) *sloRun {
	p, err := NewPolicy(Config{Name: "slo", SLOBound: bound})
	if err != nil {
		t.Fatal(err)
	}
	return &sloRun{t: t, p: p}
}

func (r *sloRun) push(agent string, input int, deadline time.Duration) *Call {
	r.seq++
	c := &Call{ID: r.seq, Agent: agent, InputTokens: input, Deadline: deadline, seq: r.seq}
	r.p.Push(c, 0)
	return c
}

// expect checks that the next picks are want, in order.
func (r *sloRun) expect(want ...*Call) {
	r.t.Helper()
	for i, w := range want {
		if got := r.next(); got != w {
			r.t.Fatalf("pick %d: call %d, want %d", i, got.ID, w.ID)
		}
	}
}

func (r *sloRun) next() *Call {
	c := r.p.Pick(0, func(*Call) Verdict { return Take })
	if c == nil {
		r.t.Fatal("nothing picked")
	}
	r.p.(Observer).Started(c, 0)
	r.p.(Observer).Stopped(c, 0, true)
	return c
}

func TestSLONearDeadlineFirstWithinShare(t *testing.T) {
	r := newSLORun(t, 100)
	a := r.push("a", 10, 100*time.Second)
	b := r.push("b", 10, 20*time.Second)
	none := r.push("c", 10, 0)
	// Equal counters (0): all within the share, so b's nearer deadline goes before a's
	// earlier arrival (fair would run a first), and c, with no deadline, last.
	r.expect(b, a, none)
}

func TestSLOBurstingClientCannotTakeOthersDeadlines(t *testing.T) {
	r := newSLORun(t, 100)
	a := r.push("a", 10, 100*time.Second)
	h1 := r.push("heavy", 1000, time.Second)
	h2 := r.push("heavy", 10, time.Second)
	// Both at counter 0: h1's deadline is nearest. Serving it charges heavy 1000, past
	// a's 0 + the bound of 100, so a now goes before h2 despite h2's nearer deadline.
	r.expect(h1, a, h2)
}

func TestSLODefaultBoundIsTwiceTheCostliestHead(t *testing.T) {
	r := newSLORun(t, 0)
	a := r.push("a", 30, 100*time.Second)
	h1 := r.push("heavy", 50, time.Second)
	h2 := r.push("heavy", 10, time.Second)
	h3 := r.push("heavy", 10, time.Second)
	// After h1 heavy's counter is 50; the bound is 2 × a's 30 = 60 over a's 0, so heavy
	// is still within its share and h2's deadline wins. After h2 heavy is at 60, still
	// within; the bound is now 2 × max(30, 10) = 60, and h3 goes too. Then a.
	r.expect(h1, h2, h3, a)
	r = newSLORun(t, 0)
	a = r.push("a", 30, 100*time.Second)
	h1 = r.push("heavy", 70, time.Second)
	h2 = r.push("heavy", 10, time.Second)
	// heavy at 70 after h1 is past 0 + 2 × 30 = 60, so a goes before h2.
	r.expect(h1, a, h2)
}
