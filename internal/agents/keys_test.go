package agents

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aios-go/aios/api"
)

// fakeKeys stands in for the kernel's access manager: it issues "key-<program>" and
// counts each key's issues and revocations.
type fakeKeys struct {
	mu      sync.Mutex
	agents  map[string]string // program → agent
	revoked map[string]int    // program → revocations
	refuse  error
}

func newFakeKeys() *fakeKeys {
	return &fakeKeys{agents: map[string]string{}, revoked: map[string]int{}}
}

func (f *fakeKeys) keys(_ context.Context, agent, program string) (string, func(), error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.refuse != nil {
		return "", nil, f.refuse
	}
	f.agents[program] = agent
	return "key-" + program, func() {
		f.mu.Lock()
		f.revoked[program]++
		f.mu.Unlock()
	}, nil
}

// state says who a program's key was issued to and how often it was revoked.
func (f *fakeKeys) state(program string) (string, int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.agents[program], f.revoked[program]
}

const printKeys = `echo "keys $AIOS_AGENT_KEY $OPENAI_API_KEY $ANTHROPIC_API_KEY"`

// Each run gets its own key in all three variables, and it is revoked exactly once when
// the run ends, however it ends; a run's restarts keep its key.
func TestRunKeyIssuedAndRevoked(t *testing.T) {
	fk := newFakeKeys()
	h := newHooks()
	r := newRuntime(t, h.opts(Options{Keys: fk.keys, KillGrace: 100 * time.Millisecond}))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	cases := []struct {
		name   string
		script string
		spec   func(*Spec)
		end    func(rec api.AgentRun)
		state  api.AgentState
	}{
		{name: "exits", script: printKeys, state: api.AgentExited},
		{name: "fails", script: printKeys + "; exit 2", state: api.AgentFailed},
		{name: "cancelled", script: printKeys + "; echo up-cancelled; exec sleep 1000", state: api.AgentCancelled,
			end: func(rec api.AgentRun) {
				h.waitLine(t, "up-cancelled")
				if _, err := r.Cancel(ctx, rec.ExecutionID); err != nil {
					t.Fatal(err)
				}
			}},
		{name: "timed-out", script: printKeys + "; exec sleep 1000", state: api.AgentFailed,
			spec: func(s *Spec) { s.Timeout = 300 * time.Millisecond }},
		{name: "out-of-restarts", script: printKeys + "; exit 7", state: api.AgentFailed,
			spec: func(s *Spec) {
				s.Restart = &api.AgentRestart{Policy: "on-failure", MaxRestarts: 2, BackoffSeconds: 0.01}
			}},
	}
	for _, c := range cases {
		spec := Spec{Package: shAgent(t, c.name, c.script, nil), Task: "t"}
		if c.spec != nil {
			c.spec(&spec)
		}
		rec, err := r.Start(spec)
		if err != nil {
			t.Fatal(err)
		}
		// A run that exits at once may have ended (and lost its key) already.
		if agent, n := fk.state(rec.Program); agent != c.name || n > 1 {
			t.Fatalf("%s at start: key for %q, revoked %d times", c.name, agent, n)
		}
		if c.end != nil {
			c.end(rec)
		}
		rec = wait(t, r, rec.ExecutionID)
		if rec.State != c.state {
			t.Errorf("%s: state %s: %+v", c.name, rec.State, rec)
		}
		if _, n := fk.state(rec.Program); n != 1 {
			t.Errorf("%s: the key was revoked %d times once the run ended", c.name, n)
		}
		key := "key-" + rec.Program
		want := fmt.Sprintf("keys %s %s %s", key, key, key)
		logs, _ := r.Logs(rec.ExecutionID, 0)
		attempts := 0
		for _, l := range logs.Lines {
			if strings.HasPrefix(l.Text, "keys ") {
				attempts++
				if l.Text != want {
					t.Errorf("%s, attempt %d: %q, want %q", c.name, l.Attempt, l.Text, want)
				}
			}
		}
		if wantAttempts := rec.Restarts + 1; attempts != wantAttempts {
			t.Errorf("%s: %d attempts printed their key, want %d", c.name, attempts, wantAttempts)
		}
	}
}

// A run still queued when it is cancelled, and runs stopped by Close, have their keys
// revoked too.
func TestRunKeyRevokedWhenQueuedOrClosed(t *testing.T) {
	fk := newFakeKeys()
	h := newHooks()
	r, err := New(h.opts(Options{Keys: fk.keys, MaxRunning: 1, KillGrace: 50 * time.Millisecond}))
	if err != nil {
		t.Fatal(err)
	}
	running, err := r.Start(Spec{Package: shAgent(t, "a", "echo up; exec sleep 1000", nil), Task: "t"})
	if err != nil {
		t.Fatal(err)
	}
	h.waitLine(t, "up")
	queued, _ := r.Start(Spec{Package: shAgent(t, "b", "exec sleep 1000", nil), Task: "t"})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if rec, err := r.Cancel(ctx, queued.ExecutionID); err != nil || rec.State != api.AgentCancelled {
		t.Fatalf("cancel of the queued run: %+v %v", rec, err)
	}
	if _, n := fk.state(queued.Program); n != 1 {
		t.Errorf("the queued run's key was revoked %d times", n)
	}
	if err := r.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if _, n := fk.state(running.Program); n != 1 {
		t.Errorf("the running run's key was revoked %d times after Close", n)
	}
}

// A key that cannot be issued (a disabled agent, say) fails the start with its error, and
// no run is recorded; without Keys the variables say there is no key.
func TestRunKeyRefused(t *testing.T) {
	fk := newFakeKeys()
	fk.refuse = api.Errorf(api.PolicyDenied, "agent x is disabled")
	r := newRuntime(t, newHooks().opts(Options{Keys: fk.keys}))
	_, err := r.Start(Spec{Package: shAgent(t, "x", "true", nil), Task: "t"})
	if api.KindOf(err) != api.PolicyDenied || !strings.Contains(err.Error(), "disabled") {
		t.Fatalf("err = %v", err)
	}
	if l := r.List(); len(l) != 0 {
		t.Fatalf("a run that did not start is listed: %+v", l)
	}

	r = newRuntime(t, newHooks().opts(Options{}))
	rec, err := r.Start(Spec{Package: shAgent(t, "nokey", printKeys, nil), Task: "t"})
	if err != nil {
		t.Fatal(err)
	}
	rec = wait(t, r, rec.ExecutionID)
	if out := logText(t, r, rec.ExecutionID); !strings.Contains(out, "keys  aios aios") {
		t.Errorf("without Keys: %s", out)
	}
}
