package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/aios-go/aios/internal/testnpm"
)

// binDir holds the aios binary, built once for the whole package: every test starts its
// own kernel, but relinking per test would cost seconds each on a 2-core machine.
var (
	binDir    string
	buildOnce sync.Once
	buildBin  string
	buildErr  error
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "aios-e2e-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binDir = dir
	code := 0
	// goleak runs before the binary directory goes; both must happen after m.Run.
	func() {
		defer os.RemoveAll(dir)
		code = m.Run()
		if code == 0 {
			if err := goleak.Find(); err != nil {
				fmt.Fprintf(os.Stderr, "goleak: %v\n", err)
				code = 1
			}
		}
	}()
	os.Exit(code)
}

// skipOrFail skips the test, or fails it when the e2e tests are required.
func skipOrFail(t *testing.T, format string, args ...any) {
	t.Helper()
	testnpm.SkipOrFail(t, format, args...)
}

// repoRoot is the module root: go test runs in the package directory, test/e2e.
func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatalf("no go.mod at %s: %v", root, err)
	}
	return root
}

// aiosBinary builds ./cmd/aios once and returns its path.
func aiosBinary(t *testing.T) string {
	t.Helper()
	root := repoRoot(t)
	buildOnce.Do(func() {
		bin := filepath.Join(binDir, "aios")
		args := []string{"build", "-o", bin}
		if raceEnabled {
			args = append(args, "-race")
		}
		args = append(args, "./cmd/aios")
		cmd := exec.Command("go", args...)
		cmd.Dir = root
		out, err := cmd.CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go %s: %v\n%s", strings.Join(args, " "), err, out)
			return
		}
		buildBin = bin
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return buildBin
}

// kernel is a running `aios serve`.
type kernel struct {
	URL string
	cmd *exec.Cmd
	log string // path of its combined stdout and stderr
}

// Log returns what the kernel has printed so far.
func (k *kernel) Log() string {
	b, _ := os.ReadFile(k.log)
	return string(b)
}

// freeAddr finds a loopback port nobody listens on. Another process could take it before
// the kernel binds it; startKernel then sees the kernel exit and says so.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// startKernel starts `aios serve` on the embedded simulated core with a fresh data
// directory, waits until GET /status answers 200, and stops it when the test ends.
func startKernel(t *testing.T, extraArgs ...string) *kernel {
	t.Helper()
	bin := aiosBinary(t)
	tmp := t.TempDir()
	addr := freeAddr(t)
	logPath := filepath.Join(tmp, "aios.log")
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	args := append([]string{"serve", "--addr", addr, "--data-dir", filepath.Join(tmp, "data")}, extraArgs...)
	cmd := exec.Command(bin, args...)
	// An *os.File is handed to the child directly, so no copying goroutine outlives it.
	cmd.Stdout, cmd.Stderr = logf, logf
	// Keep a user's aios.yaml out of the way: the test wants the embedded defaults.
	cmd.Dir = tmp
	if err := cmd.Start(); err != nil {
		logf.Close()
		t.Fatalf("start %s: %v", bin, err)
	}
	logf.Close()
	k := &kernel{URL: "http://" + addr, cmd: cmd, log: logPath}

	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	var exitErr error
	stopped := false
	t.Cleanup(func() {
		if !stopped {
			// SIGTERM first: it exercises the graceful shutdown; the kill is the backstop.
			_ = cmd.Process.Signal(syscall.SIGTERM)
			select {
			case exitErr = <-exited:
			case <-time.After(15 * time.Second):
				t.Errorf("kernel pid %d ignored SIGTERM for 15s; killing it", cmd.Process.Pid)
				_ = cmd.Process.Kill()
				exitErr = <-exited
			}
		}
		log := k.Log()
		if strings.Contains(log, "WARNING: DATA RACE") {
			t.Errorf("the race detector flagged the kernel:\n%s", log)
		} else if exitErr != nil {
			t.Errorf("kernel exited with %v:\n%s", exitErr, log)
		} else if t.Failed() {
			t.Logf("kernel log:\n%s", log)
		}
	})

	// The race-instrumented binary starts slower; 60s covers a loaded CI machine.
	hc := &http.Client{Timeout: time.Second}
	defer hc.CloseIdleConnections()
	deadline := time.Now().Add(60 * time.Second)
	for {
		select {
		case exitErr = <-exited:
			stopped = true
			t.Fatalf("kernel exited before it was ready (%v):\n%s", exitErr, k.Log())
		default:
		}
		resp, err := hc.Get(k.URL + "/status")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return k
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("kernel at %s not ready after 60s (last: %v):\n%s", k.URL, statusOf(resp, err), k.Log())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func statusOf(resp *http.Response, err error) string {
	if err != nil {
		return err.Error()
	}
	return resp.Status
}

// runCmd runs cmd with a deadline and returns its combined output.
func runCmd(ctx context.Context, cmd *exec.Cmd) (string, error) {
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	// Without a WaitDelay, a grandchild holding the output pipe would keep Wait blocked
	// past the deadline.
	cmd.WaitDelay = 5 * time.Second
	err := cmd.Run()
	if ctx.Err() != nil {
		err = errors.Join(err, ctx.Err())
	}
	return out.String(), err
}
