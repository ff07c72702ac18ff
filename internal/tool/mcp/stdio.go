package mcp

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"slices"
	"syscall"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"
)

const (
	stderrKeep  = 16 << 10
	stderrLines = 8
	// A server whose leader exited can leave children holding its stderr; after this
	// the kernel stops waiting for their output.
	pipeWaitDelay = time.Second
)

// stopGrace is how long a stdio server has to exit after its stdin is closed (the way
// MCP asks it to), and again after SIGTERM, before it is killed. A var for tests.
var stopGrace = 2 * time.Second

// process is one run of a stdio server. The kernel builds the command itself, rather
// than handing it to the SDK's CommandTransport, to know its PID and to put it in its own
// process group: servers launched through npx or a shell start children that must die
// with them.
type process struct {
	cmd    *exec.Cmd
	pid    int
	stdin  io.WriteCloser
	stdout io.ReadCloser
	stderr *ring
	exited chan struct{} // closed once cmd.Wait returned
	err    error         // cmd.Wait's, read after exited
}

func startProcess(cfg ServerConfig) (*process, error) {
	cmd := exec.Command(cfg.Command, cfg.Args...)
	cmd.Dir = cfg.Dir
	cmd.Env = os.Environ()
	keys := make([]string, 0, len(cfg.Env))
	for k := range cfg.Env {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		cmd.Env = append(cmd.Env, k+"="+cfg.Env[k])
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	p := &process{cmd: cmd, stderr: newRing(stderrKeep), exited: make(chan struct{})}
	cmd.Stderr = p.stderr
	cmd.WaitDelay = pipeWaitDelay
	var err error
	if p.stdin, err = cmd.StdinPipe(); err != nil {
		return nil, err
	}
	if p.stdout, err = cmd.StdoutPipe(); err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", cfg.Command, err)
	}
	p.pid = cmd.Process.Pid
	// Waiting also closes our end of stdout once the server is gone, which is what ends
	// the SDK's session even when a child of the server still holds the pipe open.
	go func() {
		p.err = cmd.Wait()
		close(p.exited)
	}()
	return p, nil
}

func (p *process) waitExit(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-p.exited:
		return true
	case <-t.C:
		return false
	}
}

// signalGroup signals the server and every process it started. After the leader is
// reaped its group may still hold children; once they are gone too, ESRCH is expected.
func (p *process) signalGroup(sig syscall.Signal) {
	_ = syscall.Kill(-p.pid, sig)
}

// stop ends the server and its children and waits for the server to be reaped.
func (p *process) stop() {
	_ = p.stdin.Close()
	if !p.waitExit(stopGrace) {
		p.signalGroup(syscall.SIGTERM)
		if !p.waitExit(stopGrace) {
			p.signalGroup(syscall.SIGKILL)
			<-p.exited
		}
	}
	p.signalGroup(syscall.SIGKILL)
}

// describe says how the server ended and what it last wrote to stderr, for errors and
// logs: a crash is diagnosed from this text alone.
func (p *process) describe() string {
	s := fmt.Sprintf("process %d is still running", p.pid)
	select {
	case <-p.exited:
		var ee *exec.ExitError
		switch {
		case p.err == nil:
			s = fmt.Sprintf("process %d exited with status 0", p.pid)
		case errors.As(p.err, &ee):
			s = fmt.Sprintf("process %d ended: %v", p.pid, ee) // "exit status 1", "signal: killed"
		default:
			s = fmt.Sprintf("process %d: %v", p.pid, p.err)
		}
	default:
	}
	if t := p.stderr.tail(stderrLines); t != "" {
		s += "; stderr: " + t
	}
	return s
}

// tapTransport is a stdio transport whose responses the hint tap reads first.
type tapTransport struct {
	inner sdk.Transport
	tap   *hintTap
}

func (t tapTransport) Connect(ctx context.Context) (sdk.Connection, error) {
	c, err := t.inner.Connect(ctx)
	if err != nil {
		return nil, err
	}
	return tappedConn{Connection: c, tap: t.tap}, nil
}
