package mcp

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aios-go/aios/api"
)

func TestCrashAndRestart(t *testing.T) {
	reg := newRegistrar()
	s := startEverything(t, reg)
	echo := reg.tool(t, "everything__echo")
	pid := s.Status().PID
	setsBefore, _, _ := reg.state()

	// Hold the restart back until the outage has been observed: the registrar sees the
	// server down and calls fail fast, not hang.
	gate := make(chan struct{})
	s.mu.Lock()
	s.restartGate = gate
	s.mu.Unlock()

	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the source to be marked down", func() bool { _, down, _ := reg.state(); return down != nil })
	_, down, _ := reg.state()
	if !strings.Contains(down.Error(), "signal: killed") {
		t.Errorf("down reason %q does not say the process was killed", down)
	}
	if st := s.Status(); st.Connected || st.LastError == "" {
		t.Fatalf("status during the outage: %+v", st)
	}
	_, err := echo.Call(context.Background(), toolInput(`{"message":"x"}`))
	var ae *api.Error
	if !errors.As(err, &ae) || ae.Kind != api.BackendUnavailable || !strings.Contains(err.Error(), "MCP server everything is restarting") {
		t.Fatalf("call during the outage: %v", err)
	}
	if processAlive(pid) {
		t.Fatalf("process %d still alive", pid)
	}
	close(gate)

	// The session is in service before the registrar hears it is back, so that nobody
	// the registrar lets through finds it missing.
	waitFor(t, "the restart", func() bool { _, down, _ := reg.state(); return s.Status().Connected && down == nil })
	st := s.Status()
	if st.Restarts != 1 || st.PID == pid || st.PID == 0 || st.Tools == 0 {
		t.Fatalf("status after restart: %+v (old pid %d)", st, pid)
	}
	sets, down, downs := reg.state()
	if down != nil || sets <= setsBefore || len(downs) < 2 || downs[0] == nil || downs[len(downs)-1] != nil {
		t.Fatalf("registrar after restart: sets %d (before %d), down %v, downs %v", sets, setsBefore, down, downs)
	}
	// The tool registered before the crash works again: it calls whatever session is
	// current.
	if res := call(t, echo, `{"message":"after restart"}`); res.Content != "Echo: after restart" {
		t.Fatalf("echo after restart: %+v", res)
	}
	if res := call(t, reg.tool(t, "everything__echo"), `{"message":"new"}`); res.Content != "Echo: new" {
		t.Fatalf("re-registered echo: %+v", res)
	}
}

func TestCloseKillsProcess(t *testing.T) {
	reg := newRegistrar()
	s := startEverything(t, reg)
	pid := s.Status().PID
	if !processAlive(pid) {
		t.Fatalf("process %d not running", pid)
	}
	start := time.Now()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	t.Logf("Close took %v", time.Since(start))
	if processAlive(pid) {
		t.Fatalf("process %d survived Close", pid)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, down, _ := reg.state(); !errors.Is(down, ErrClosed) {
		t.Fatalf("source after Close: down %v", down)
	}
	_, err := reg.tool(t, "everything__echo").Call(context.Background(), toolInput(`{"message":"x"}`))
	if api.KindOf(err) != api.BackendUnavailable {
		t.Fatalf("call after Close: %v", err)
	}
}

// A server that dies before it answers initialize fails Start with what it wrote to
// stderr, and leaves nothing running.
func TestStartFailsOnCrashingServer(t *testing.T) {
	reg := newRegistrar()
	_, err := Start(context.Background(), ServerConfig{
		Name:    "broken",
		Command: "/bin/sh",
		Args:    []string{"-c", "echo 'fatal: missing API key' >&2; exit 3"},
	}, reg, testLog(t))
	if err == nil {
		t.Fatal("Start succeeded")
	}
	for _, want := range []string{"MCP server broken", "exit status 3", "missing API key"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
	if sets, _, _ := reg.state(); sets != 0 {
		t.Fatal("a server that failed to start registered tools")
	}

	_, err = Start(context.Background(), ServerConfig{Name: "missing", Command: "/nonexistent/mcp-server"}, reg, testLog(t))
	if err == nil || !strings.Contains(err.Error(), "/nonexistent/mcp-server") {
		t.Fatalf("missing command: %v", err)
	}
}

// A server that never answers is given up on after StartTimeout, and killed with the
// children it started.
func TestStartTimeoutKillsGroup(t *testing.T) {
	pidFile := t.TempDir() + "/child"
	start := time.Now()
	_, err := Start(context.Background(), ServerConfig{
		Name:    "silent",
		Command: "/bin/sh",
		// A child that would outlive its parent unless the whole group is killed.
		Args:         []string{"-c", "sleep 300 & echo $! > " + pidFile + "; sleep 300"},
		StartTimeout: 300 * time.Millisecond,
	}, newRegistrar(), testLog(t))
	if err == nil || !strings.Contains(err.Error(), "deadline exceeded") {
		t.Fatalf("Start against a silent server: %v", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("Start took %v to give up", d)
	}
	child := readPID(t, pidFile)
	waitFor(t, "the child of the server to die", func() bool { return !processAlive(child) })
}

// Restarts that fail keep being retried, each failure reported with the server's own
// words, until the server can start again.
func TestRestartRetriesUntilServerWorks(t *testing.T) {
	bin := npmServer(t, "mcp-server-everything")
	dir := t.TempDir()
	broken := filepath.Join(dir, "broken")
	script := fmt.Sprintf(`if [ -e %q ]; then echo "boom: config missing" >&2; exit 1; fi; exec %q stdio`, broken, bin)
	reg := newRegistrar()
	s, err := Start(context.Background(), ServerConfig{
		Name:           "flaky",
		Command:        "/bin/sh",
		Args:           []string{"-c", script},
		RestartBackoff: 10 * time.Millisecond,
		MaxBackoff:     40 * time.Millisecond,
	}, reg, testLog(t))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()

	if err := os.WriteFile(broken, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(s.Status().PID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "three failed restarts", func() bool {
		_, _, downs := reg.state()
		n := 0
		for _, d := range downs {
			if d != nil && strings.Contains(d.Error(), "boom: config missing") && strings.Contains(d.Error(), "exit status 1") {
				n++
			}
		}
		return n >= 3
	})
	if st := s.Status(); st.Connected || !strings.Contains(st.LastError, "boom") || st.Restarts != 0 {
		t.Fatalf("status while restarts fail: %+v", st)
	}

	if err := os.Remove(broken); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the restart", func() bool { _, down, _ := reg.state(); return s.Status().Connected && down == nil })
	if st := s.Status(); st.Restarts != 1 {
		t.Fatalf("status after recovery: %+v", st)
	}
	if res := call(t, reg.tool(t, "flaky__echo"), `{"message":"back"}`); res.Content != "Echo: back" {
		t.Fatalf("echo: %+v", res)
	}
}
