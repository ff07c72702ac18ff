package access

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/aios-go/aios/api"
	"github.com/aios-go/aios/internal/sqldb/sqldbtest"
	"github.com/aios-go/aios/internal/testleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, testleak.Ignore()...)
}

// fakeClock is a Clock tests move by hand.
type fakeClock struct {
	mu      sync.Mutex
	now     time.Time
	timers  map[*fakeTimer]bool
	changed chan struct{} // closed and replaced whenever a timer is made
}

type fakeTimer struct {
	c  *fakeClock
	at time.Time
	ch chan time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Date(2026, 3, 14, 9, 26, 53, 0, time.UTC), timers: map[*fakeTimer]bool{}, changed: make(chan struct{})}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) NewTimer(d time.Duration) Timer {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &fakeTimer{c: c, at: c.now.Add(d), ch: make(chan time.Time, 1)}
	if d <= 0 {
		t.ch <- c.now
	} else {
		c.timers[t] = true
	}
	close(c.changed)
	c.changed = make(chan struct{})
	return t
}

func (t *fakeTimer) C() <-chan time.Time { return t.ch }

func (t *fakeTimer) Stop() bool {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	was := t.c.timers[t]
	delete(t.c.timers, t)
	return was
}

// Advance moves the clock and fires the timers that come due.
func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	for t := range c.timers {
		if !t.at.After(c.now) {
			t.ch <- c.now
			delete(c.timers, t)
		}
	}
}

// waitTimers blocks until at least n timers are set: then the code under test is
// waiting on the clock, and Advance reaches it.
func (c *fakeClock) waitTimers(t *testing.T, n int) {
	t.Helper()
	deadline := time.After(30 * time.Second) // a hang, not a timing assertion
	for {
		c.mu.Lock()
		have, ch := len(c.timers), c.changed
		c.mu.Unlock()
		if have >= n {
			return
		}
		select {
		case <-ch:
		case <-deadline:
			t.Fatalf("waited for %d timers; %d are set", n, have)
		}
	}
}

// forEachBackend runs f on SQLite and, when AIOS_TEST_POSTGRES_DSN is set, PostgreSQL.
func forEachBackend(t *testing.T, f func(t *testing.T, cfg StoreConfig)) {
	t.Run("sqlite", func(t *testing.T) {
		f(t, StoreConfig{Path: filepath.Join(t.TempDir(), "access.db")})
	})
	t.Run("postgres", func(t *testing.T) {
		f(t, StoreConfig{Backend: "postgres", DSN: sqldbtest.PostgresDSN(t)})
	})
}

// open opens a manager on cfg with a fake clock and the policies of dir.
func open(t *testing.T, cfg StoreConfig, clk *fakeClock, dir string) *Manager {
	t.Helper()
	m, err := Open(context.Background(), Options{Store: cfg, Clock: clk, PolicyDir: dir, ApprovalTimeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := m.Close(); err != nil {
			t.Error(err)
		}
	})
	return m
}

func sqliteManager(t *testing.T) (*Manager, *fakeClock) {
	clk := newFakeClock()
	return open(t, StoreConfig{Path: filepath.Join(t.TempDir(), "access.db")}, clk, ""), clk
}

func must[T any](t *testing.T) func(T, error) T {
	return func(v T, err error) T {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
}

func kindOf(err error) api.Kind { return api.KindOf(err) }

func wantKind(t *testing.T, err error, k api.Kind) *api.Error {
	t.Helper()
	var ae *api.Error
	if !errors.As(err, &ae) || ae.Kind != k {
		t.Fatalf("err = %v, want kind %s", err, k)
	}
	return ae
}

func writeFile(t *testing.T, path, text string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
}

func ptr[T any](v T) *T { return &v }
