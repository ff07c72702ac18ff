package memory_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/aios-go/aios/internal/memory"
)

// The kill -9 test re-executes this test binary as a child that adds notes and prints
// each id once Add has returned; the parent kills it with SIGKILL mid-stream and checks
// that every printed (acknowledged) id is in the database.
const childEnv = "AIOS_MEMORY_KILL_CHILD"

func maybeChild() {
	path := os.Getenv(childEnv)
	if path == "" {
		return
	}
	ctx := context.Background()
	m, err := memory.Open(ctx, memory.Config{Path: path, HotBytes: 16 << 10})
	if err != nil {
		fmt.Println("ERR", err)
		os.Exit(2)
	}
	for i := 0; ; i++ {
		n, err := m.Add(ctx, "alice", memory.Note{Content: fmt.Sprintf("acknowledged fact %d", i), Tags: []string{"kill"}})
		if err != nil {
			fmt.Println("ERR", err)
			os.Exit(2)
		}
		c := n.Content + " updated"
		if _, err := m.Update(ctx, "alice", n.ID, memory.Patch{Content: &c}); err != nil {
			fmt.Println("ERR", err)
			os.Exit(2)
		}
		fmt.Println(n.ID)
	}
}

func TestKill9KeepsAcknowledgedNotes(t *testing.T) {
	if testing.Short() {
		t.Skip("starts child processes")
	}
	path := filepath.Join(t.TempDir(), "memory.db")
	var acked []string
	for cycle := range 3 {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), childEnv+"="+path)
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(out)
		start := len(acked)
		deadline := time.Now().Add(20 * time.Second)
		for len(acked) < start+20 && time.Now().Before(deadline) && sc.Scan() {
			line := sc.Text()
			if len(line) > 3 && line[:3] == "ERR" {
				t.Fatalf("child: %s", line)
			}
			acked = append(acked, line)
		}
		cmd.Process.Signal(syscall.SIGKILL)
		cmd.Wait()
		if len(acked) == start {
			t.Fatalf("cycle %d: the child acknowledged nothing", cycle)
		}
	}
	m, err := memory.Open(context.Background(), memory.Config{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	for _, id := range acked {
		n, err := m.Get(context.Background(), "alice", id)
		if err != nil {
			t.Fatalf("acknowledged note %s lost after kill -9: %v", id, err)
		}
		if n.Content[len(n.Content)-len("updated"):] != "updated" {
			t.Fatalf("acknowledged update of %s lost: %q", id, n.Content)
		}
	}
	t.Logf("%d acknowledged notes (added and updated) survived 3 kill -9 cycles", len(acked))
}
