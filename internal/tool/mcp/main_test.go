package mcp

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/aios-go/aios/internal/testleak"
	"github.com/aios-go/aios/internal/testnpm"
	"github.com/aios-go/aios/internal/tool"
)

func TestMain(m *testing.M) {
	// Restarts and shutdowns in tests need not wait as long as a real kernel does.
	stopGrace = 500 * time.Millisecond
	goleak.VerifyTestMain(m, testleak.Ignore()...)
}

// npmServer is the path of a reference server's binary in test/e2e/mcp-npm.
func npmServer(t *testing.T, bin string) string {
	t.Helper()
	return testnpm.Bin(t, "mcp-npm", bin)
}

// registrar records what a server registers, as the tool manager would see it.
type registrar struct {
	mu     sync.Mutex
	tools  map[string]tool.Tool
	sets   int
	down   error // nil: up
	downs  []error
	source string
}

func newRegistrar() *registrar { return &registrar{tools: map[string]tool.Tool{}} }

func (r *registrar) SetSource(source string, tools []tool.Tool) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.source = source
	r.tools = map[string]tool.Tool{}
	for _, t := range tools {
		r.tools[t.Spec().Name] = t
	}
	r.sets++
	return nil
}

func (r *registrar) SetSourceDown(source string, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.down = err
	r.downs = append(r.downs, err)
}

func (r *registrar) tool(t *testing.T, name string) tool.Tool {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	tl, ok := r.tools[name]
	if !ok {
		names := make([]string, 0, len(r.tools))
		for n := range r.tools {
			names = append(names, n)
		}
		t.Fatalf("tool %s not registered; have %v", name, names)
	}
	return tl
}

func (r *registrar) state() (sets int, down error, downs []error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.sets, r.down, append([]error(nil), r.downs...)
}

// waitFor polls cond until it holds, failing the test after a deadline generous enough
// for node to start on a loaded machine.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// testLog shows the server's crash and restart logs with the test's output.
func testLog(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
}

func processAlive(pid int) bool {
	if syscall.Kill(pid, 0) != nil {
		return false
	}
	// A killed grandchild is reparented to PID 1, which in a container may never reap
	// it: a zombie is dead for this purpose.
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	if i := bytes.LastIndexByte(b, ')'); i >= 0 && i+2 < len(b) {
		return b[i+2] != 'Z'
	}
	return true
}

func toolInput(args string) tool.Input {
	return tool.Input{Agent: "test", Args: json.RawMessage(args)}
}

func readPID(t *testing.T, path string) int {
	t.Helper()
	var pid int
	waitFor(t, "the pid file", func() bool {
		b, err := os.ReadFile(path)
		if err != nil {
			return false
		}
		_, err = fmt.Sscan(string(b), &pid)
		return err == nil
	})
	return pid
}
