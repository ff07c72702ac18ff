package e2e

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/aios-go/aios/api"
)

// TestStorageDurabilityKill9 checks the storage module's promise that an acknowledged
// write survives the kernel being killed: concurrent writers overwrite files through
// /query, the real kernel is killed with SIGKILL at a random moment while they run, and
// after a restart on the same data directory every file must hold exactly its last
// acknowledged content, or the content of the one write that was in flight when the
// kernel died. Never an older content, never a torn one, and no acknowledged version
// number may be missing from the file's history.
//
// A failure prints the seed; AIOS_E2E_SEED=<seed> replays the same contents, paths and
// kill delays (the interleaving of the writers still differs from run to run).
func TestStorageDurabilityKill9(t *testing.T) {
	if runtime.GOOS == "windows" {
		skipOrFail(t, "the kill -9 durability test needs Unix signals (SIGKILL and its wait status)")
	}
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("AIOS_E2E_SEED"); s != "" {
		var err error
		if seed, err = strconv.ParseUint(s, 10, 64); err != nil {
			t.Fatalf("AIOS_E2E_SEED=%q is not an unsigned integer", s)
		}
	}
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 0))

	const (
		cycles         = 5
		writers        = 4
		filesPerWriter = 6
		agent          = "durability"
	)
	work := t.TempDir()
	dataDir := filepath.Join(work, "data")
	hc := &http.Client{Transport: &http.Transport{}, Timeout: 20 * time.Second}
	t.Cleanup(hc.CloseIdleConnections)
	c := &storageClient{hc: hc, agent: agent}

	// One writer owns each file, so a file's writes are sequential: at most one of them
	// is in flight when the kernel dies.
	files := make([]*durableFile, writers*filesPerWriter)
	for i := range files {
		files[i] = &durableFile{
			path:     fmt.Sprintf("/w%d/f%d.txt", i/filesPerWriter, i%filesPerWriter),
			versions: map[int]string{},
			seqOf:    map[string]string{},
		}
	}

	acked := 0
	for cycle := range cycles + 1 {
		k := startChild(t, work, dataDir, cycle)
		c.url = k.URL
		inflight, landed := verifyFiles(t, c, files, cycle)
		if cycle > 0 {
			t.Logf("restart %d: %d of the %d writes in flight at the kill landed", cycle, landed, inflight)
		}
		if t.Failed() {
			k.stop(t)
			return
		}
		if cycle == cycles {
			// The last start only verifies, then stops gracefully: the store must also
			// close cleanly after all those kills.
			k.stop(t)
			break
		}

		var killed atomic.Bool
		var wg sync.WaitGroup
		var n atomic.Int64
		firstAck := make(chan struct{})
		var once sync.Once
		for w := range writers {
			own := files[w*filesPerWriter : (w+1)*filesPerWriter]
			wr := rand.New(rand.NewPCG(seed, uint64(cycle*writers+w+1)))
			wg.Add(1)
			go func() {
				defer wg.Done()
				for seq := 0; !killed.Load(); seq++ {
					f := own[wr.IntN(len(own))]
					wt := newWrite(wr, f.path, cycle, w, seq)
					f.seqOf[wt.sha] = wt.seq
					f.inflight = append(f.inflight, wt)
					v, err := c.write(f.path, wt.content)
					if err != nil {
						// After the kill every call fails; before it, none may.
						if !killed.Load() {
							t.Errorf("cycle %d: write %s (%s) failed before the kill: %v", cycle, f.path, wt.seq, err)
						}
						return
					}
					wt.version = v
					f.current, f.inflight = wt, nil
					f.versions[v] = wt.sha
					n.Add(1)
					once.Do(func() { close(firstAck) })
				}
			}()
		}
		// The kill comes at a random moment after the first acknowledgement, so every
		// cycle has acknowledged writes to lose. The race-instrumented kernel writes about
		// five times slower; a longer window keeps the writes per kill comparable.
		delay := time.Duration(150+rng.IntN(451)) * time.Millisecond
		if raceEnabled {
			delay *= 3
		}
		select {
		case <-firstAck:
			time.Sleep(delay)
		case <-time.After(30 * time.Second):
			t.Errorf("cycle %d: no write acknowledged in 30s", cycle)
		}
		// Writers stop at their next call once killed is set, even if the kill fails.
		killed.Store(true)
		k.kill(t)
		wg.Wait()
		if t.Failed() {
			return
		}
		acked += int(n.Load())
		t.Logf("cycle %d: killed %v after the first acknowledgement, %d writes acknowledged", cycle, delay, n.Load())
	}
	t.Logf("%d writes acknowledged over %d kills, all present after restarts", acked, cycles)
}

// durableFile is what the test knows of one file. Only its writer touches it while the
// kernel runs, and only the test goroutine while it verifies.
type durableFile struct {
	path     string
	current  *durableWrite     // the last write known to have landed; nil if none
	inflight []*durableWrite   // writes issued after current, not acknowledged
	versions map[int]string    // acknowledged version number -> sha256 of its content
	seqOf    map[string]string // sha256 of every content ever written -> its seq, for messages
}

type durableWrite struct {
	seq     string
	content string
	sha     string
	version int
}

// newWrite makes a write's content: a header naming it, then letters; about one write
// in six is 100 KB, so some commits span many pages and chunks, the rest 1 to 8 KB.
func newWrite(r *rand.Rand, path string, cycle, writer, seq int) *durableWrite {
	size := 1<<10 + r.IntN(7<<10)
	if r.IntN(6) == 0 {
		size = 100 << 10
	}
	id := fmt.Sprintf("c%d-w%d-%d", cycle, writer, seq)
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s size %d\n", path, id, size)
	const letters = "abcdefghijklmnopqrstuvwxyz     \n"
	for b.Len() < size {
		b.WriteByte(letters[r.IntN(len(letters))])
	}
	sum := sha256.Sum256([]byte(b.String()))
	return &durableWrite{seq: id, content: b.String(), sha: hex.EncodeToString(sum[:])}
}

// keptVersions is the storage module's default history length: older versions are
// pruned by design, so only the newest ones are checked.
const keptVersions = 20

// verifyFiles checks every file against what was acknowledged, after a restart, and
// settles the in-flight writes: each either landed (and is now the file's current
// content) or never will.
func verifyFiles(t *testing.T, c *storageClient, files []*durableFile, cycle int) (inflight, landedN int) {
	t.Helper()
	for _, f := range files {
		inflight += len(f.inflight)
		content, found, err := c.read(f.path)
		if err != nil {
			t.Errorf("restart %d: read %s: %v", cycle, f.path, err)
			continue
		}
		var landed *durableWrite
		switch {
		case !found && f.current != nil:
			t.Errorf("restart %d: %s is gone; write %s (version %d) was acknowledged", cycle, f.path, f.current.seq, f.current.version)
			continue
		case !found:
		case f.current != nil && content == f.current.content:
		default:
			for _, w := range f.inflight {
				if content == w.content {
					landed = w
				}
			}
			if landed == nil {
				t.Errorf("restart %d: %s holds %s; want the acknowledged write %s or one in flight (%d)",
					cycle, f.path, describe(f, content), seqOrNone(f.current), len(f.inflight))
				continue
			}
		}
		f.inflight = nil
		if landed != nil {
			landedN++
		}
		if !found {
			continue // never written, and the one write in flight did not land
		}

		h, err := c.versions(f.path)
		if err != nil {
			t.Errorf("restart %d: versions of %s: %v", cycle, f.path, err)
			continue
		}
		vs := h.Versions
		if len(vs) == 0 {
			t.Errorf("restart %d: %s exists but has no versions", cycle, f.path)
			continue
		}
		// The history is newest first.
		byN := map[int]string{}
		for i, v := range vs {
			byN[v.N] = v.SHA256
			if i > 0 && v.N >= vs[i-1].N {
				t.Errorf("restart %d: history of %s is not newest first: %d after %d", cycle, f.path, v.N, vs[i-1].N)
			}
		}
		last := vs[0]
		if landed != nil {
			// The in-flight write landed: it is the newest version, and from now on as
			// good as acknowledged.
			if last.SHA256 != landed.sha {
				t.Errorf("restart %d: %s holds write %s but its newest version %d has another content (%s)",
					cycle, f.path, landed.seq, last.N, describeSHA(f, last.SHA256))
				continue
			}
			landed.version = last.N
			f.current = landed
			f.versions[last.N] = landed.sha
		}
		if last.N < f.current.version || last.SHA256 != f.current.sha {
			t.Errorf("restart %d: %s: newest version is %d (%s); want %d (write %s)",
				cycle, f.path, last.N, describeSHA(f, last.SHA256), f.current.version, f.current.seq)
		}
		for n, sha := range f.versions {
			if n <= last.N-keptVersions {
				continue
			}
			got, ok := byN[n]
			switch {
			case !ok:
				t.Errorf("restart %d: %s lost acknowledged version %d (history %d..%d)", cycle, f.path, n, vs[len(vs)-1].N, last.N)
			case got != sha:
				t.Errorf("restart %d: %s version %d holds %s; want write %s", cycle, f.path, n, describeSHA(f, got), f.seqOf[sha])
			}
		}
	}
	return inflight, landedN
}

func seqOrNone(w *durableWrite) string {
	if w == nil {
		return "(none)"
	}
	return w.seq
}

// describe names a content the way a failure message needs: which earlier write it is,
// or how it is torn.
func describe(f *durableFile, content string) string {
	sum := sha256.Sum256([]byte(content))
	if d := describeSHA(f, hex.EncodeToString(sum[:])); !strings.HasPrefix(d, "unknown") {
		return d
	}
	head, _, _ := strings.Cut(content, "\n")
	return fmt.Sprintf("unknown content (%d bytes, torn? first line %.80q)", len(content), head)
}

func describeSHA(f *durableFile, sha string) string {
	if seq, ok := f.seqOf[sha]; ok {
		return fmt.Sprintf("the older write %s", seq)
	}
	return "unknown content sha256 " + sha
}

// child is a kernel the test kills: startKernel's cleanup would report a SIGKILLed
// kernel as a failure, and it gives each kernel a fresh data directory.
type child struct {
	*kernel
	exited chan error
	done   bool
}

// startChild starts `aios serve` on dataDir, as the n-th kernel of the test, and waits
// until it answers. Its log is work/aios-<n>.log.
func startChild(t *testing.T, work, dataDir string, n int) *child {
	t.Helper()
	bin := aiosBinary(t)
	addr := freeAddr(t)
	logPath := filepath.Join(work, fmt.Sprintf("aios-%d.log", n))
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "serve", "--addr", addr, "--data-dir", dataDir)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Dir = work
	err = cmd.Start()
	logf.Close()
	if err != nil {
		t.Fatalf("start %s: %v", bin, err)
	}
	k := &child{kernel: &kernel{URL: "http://" + addr, cmd: cmd, log: logPath}, exited: make(chan error, 1)}
	go func() { k.exited <- cmd.Wait() }()
	t.Cleanup(func() {
		if !k.done {
			_ = cmd.Process.Kill()
			<-k.exited
		}
		if strings.Contains(k.Log(), "WARNING: DATA RACE") {
			t.Errorf("the race detector flagged kernel %d:\n%s", n, k.Log())
		} else if t.Failed() {
			t.Logf("kernel %d log:\n%s", n, k.Log())
		}
	})

	hc := &http.Client{Timeout: time.Second}
	defer hc.CloseIdleConnections()
	deadline := time.Now().Add(60 * time.Second)
	for {
		select {
		case err := <-k.exited:
			k.done = true
			t.Fatalf("kernel %d exited before it was ready (%v):\n%s", n, err, k.Log())
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
			t.Fatalf("kernel %d at %s not ready after 60s (last: %v):\n%s", n, k.URL, statusOf(resp, err), k.Log())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// kill sends SIGKILL by pid and reaps the kernel, which must not have exited on its own
// before.
func (k *child) kill(t *testing.T) {
	t.Helper()
	if err := syscall.Kill(k.cmd.Process.Pid, syscall.SIGKILL); err != nil {
		t.Errorf("kill -9 %d: %v", k.cmd.Process.Pid, err)
		return
	}
	err := <-k.exited
	k.done = true
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		t.Errorf("kernel pid %d: wait after SIGKILL = %v", k.cmd.Process.Pid, err)
		return
	}
	if ws, ok := ee.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Errorf("kernel pid %d ended with %v, not by the SIGKILL:\n%s", k.cmd.Process.Pid, err, k.Log())
	}
}

// stop ends the kernel with SIGTERM; it must shut down cleanly.
func (k *child) stop(t *testing.T) {
	t.Helper()
	_ = k.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-k.exited:
		k.done = true
		if err != nil {
			t.Errorf("kernel exited with %v after SIGTERM:\n%s", err, k.Log())
		}
	case <-time.After(15 * time.Second):
		t.Errorf("kernel pid %d ignored SIGTERM for 15s", k.cmd.Process.Pid)
	}
}

// storageClient speaks the storage syscalls the test needs: AIOS's /query for writes
// and reads, the REST surface for a file's history.
type storageClient struct {
	hc         *http.Client
	url, agent string
}

var versionRE = regexp.MustCompile(`\(version (\d+)\)$`)

// write returns the acknowledged version: the call answered HTTP 200 with status_code
// 200.
func (c *storageClient) write(path, content string) (int, error) {
	msg, err := c.query(api.StorageWrite, api.StorageParams{FilePath: path, Content: &content})
	if err != nil {
		return 0, err
	}
	m := versionRE.FindStringSubmatch(msg)
	if m == nil {
		return 0, fmt.Errorf("write answered %q, which names no version", msg)
	}
	return strconv.Atoi(m[1])
}

// read returns the file's content, or found false when the kernel says it does not
// exist.
func (c *storageClient) read(path string) (content string, found bool, err error) {
	msg, err := c.query(api.StorageRead, api.StorageParams{FilePath: path})
	if api.KindOf(err) == api.CallerNotFound {
		return "", false, nil
	}
	return msg, err == nil, err
}

func (c *storageClient) query(op string, p api.StorageParams) (string, error) {
	data, err := json.Marshal(api.StorageQuery{QueryClass: api.QueryStorage, OperationType: op, Params: p})
	if err != nil {
		return "", err
	}
	body, err := json.Marshal(api.QueryRequest{AgentName: c.agent, QueryType: api.QueryStorage, QueryData: data})
	if err != nil {
		return "", err
	}
	resp, err := c.hc.Post(c.url+"/query", "application/json", bytes.NewReader(body))
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("%s %s: HTTP %s: %s", op, p.FilePath, resp.Status, raw)
	}
	var out struct {
		Response api.ModuleResponse `json:"response"`
	}
	if err := json.Unmarshal(raw, &out); err != nil {
		return "", fmt.Errorf("%s %s: %v in %.200s", op, p.FilePath, err, raw)
	}
	r := out.Response
	if r.StatusCode != http.StatusOK || r.ResponseMessage == nil {
		msg := ""
		if r.Error != nil {
			msg = *r.Error
		}
		return "", api.Errorf(r.Kind, "%s %s: status_code %d: %s", op, p.FilePath, r.StatusCode, msg)
	}
	return *r.ResponseMessage, nil
}

func (c *storageClient) versions(path string) (api.StorageHistory, error) {
	var h api.StorageHistory
	req, err := http.NewRequestWithContext(context.Background(), http.MethodGet, c.url+"/v1/storage/versions"+path, nil)
	if err != nil {
		return h, err
	}
	req.Header.Set(api.HeaderAgent, c.agent)
	resp, err := c.hc.Do(req)
	if err != nil {
		return h, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return h, err
	}
	switch resp.StatusCode {
	case http.StatusOK:
		return h, json.Unmarshal(raw, &h)
	case http.StatusNotFound:
		return h, api.Errorf(api.CallerNotFound, "versions of %s: %s", path, raw)
	}
	return h, fmt.Errorf("versions of %s: HTTP %s: %s", path, resp.Status, raw)
}
