package kernel

import (
	"context"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aios-go/aios/internal/sched"
)

// An LLM call's deadline is the earlier of its program's start + TCT and its own
// submission + TTFT; a program's start is its first call, until EndProgram.
func TestSLODeadlines(t *testing.T) {
	s := time.Second
	var clock atomic.Int64
	at := func(d time.Duration) { clock.Store(int64(d)) }
	release := make(chan struct{})
	var once sync.Once
	open := func() { once.Do(func() { close(release) }) }
	k := newKernel(t, Options{
		Policy: "slo",
		Clock:  func() time.Duration { return time.Duration(clock.Load()) },
		SLO:    sched.Objectives{Agents: map[string]sched.SLO{"a": {TCT: 100 * s, TTFT: 5 * s}}},
	}, CoreConfig{Model: "m", Backend: "test", Core: blockedCore(release)})
	t.Cleanup(open)
	submit := func(agent, program string) time.Duration {
		t.Helper()
		c := chat(agent)
		c.Program = program
		sc, err := k.SubmitLLM(context.Background(), c)
		if err != nil {
			t.Fatal(err)
		}
		return sc.call.Deadline
	}
	at(10 * s)
	if d := submit("a", "p"); d != 15*s {
		t.Errorf("first call at 10s: deadline %v, want its TTFT's 15s", d)
	}
	at(200 * s)
	if d := submit("a", "p"); d != 110*s {
		t.Errorf("call at 200s of a program started at 10s: deadline %v, want its TCT's 110s", d)
	}
	if d := submit("b", "q"); d != 0 {
		t.Errorf("agent without objectives: deadline %v, want none", d)
	}
	k.EndProgram("p")
	at(300 * s)
	if d := submit("a", "p"); d != 305*s {
		t.Errorf("after EndProgram the program starts again: deadline %v, want 305s", d)
	}
	open()
}

// Objectives under a policy that ignores deadlines, or that cannot be met, refuse to
// start.
func TestSLORefusedAtStart(t *testing.T) {
	core := CoreConfig{Model: "m", Backend: "test", Core: blockedCore(make(chan struct{}))}
	for _, c := range []struct {
		opts Options
		want string
	}{
		{Options{Policy: "fair", SLO: sched.Objectives{Agents: map[string]sched.SLO{"a": {TCT: time.Minute}}}}, "only slo orders calls by their deadlines"},
		{Options{Policy: "slo", SLO: sched.Objectives{Agents: map[string]sched.SLO{"a": {TTFT: -time.Second}}}}, "must be positive"},
	} {
		_, err := New(c.opts, []CoreConfig{core})
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: %v, want an error saying %q", c.opts.SLO, err, c.want)
		}
	}
}
