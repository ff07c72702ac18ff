package boot

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/aios-go/aios/internal/access"
	"github.com/aios-go/aios/internal/config"
	"github.com/aios-go/aios/internal/kernel"
	"github.com/aios-go/aios/internal/sched"
)

func TestMarkedDestructive(t *testing.T) {
	list := []string{"calculator", "fs__*", "author/rm"}
	for name, want := range map[string]bool{
		"calculator": true, "calculator2": false, "fs__rm": true, "fs__": true, "fsx__rm": false,
		"author__rm": true, "author/rm": true, "author__rmdir": false, "current_time": false,
	} {
		if got := markedDestructive(list, name); got != want {
			t.Errorf("markedDestructive(%q) = %v, want %v", name, got, want)
		}
	}
	if !markedDestructive([]string{"*"}, "anything") || markedDestructive(nil, "calculator") {
		t.Error(`"*" must mark every tool, and an empty list none`)
	}
}

// With access.auth on, a tool the operator lists in tools.destructive asks for approval
// (whatever its hints say), and one not listed runs at once.
func TestDestructiveToolAsksApproval(t *testing.T) {
	for _, marked := range []bool{false, true} {
		cfg := toolConfig(t, func(tc *config.Tools) {
			tc.Builtin = []string{"calculator"}
			if marked {
				tc.Destructive = []string{"calc*"}
			}
		})
		cfg.Access.Auth = true
		cfg.Access.ApprovalTimeout = time.Minute
		sys, err := Build(cfg, nil)
		if err != nil {
			t.Fatal(err)
		}
		shutdown(t, sys)
		t.Cleanup(func() { _ = sys.CloseAccess() })
		asks, stop := sys.Access.Approvals.Subscribe()
		type reply struct {
			res any
			err error
		}
		done := make(chan reply, 1)
		go func() {
			res, _, err := sys.Kernel.Do(context.Background(), kernel.Call{Agent: "a", Module: sched.Tool, Op: "call",
				Resource: "calculator", Args: json.RawMessage(`{"expression": "2+3"}`)})
			done <- reply{res, err}
		}()
		if !marked {
			select {
			case r := <-done:
				if r.err != nil {
					t.Fatalf("an unmarked tool: %v", r.err)
				}
			case ap := <-asks:
				t.Fatalf("an unmarked tool asked for approval: %+v", ap)
			}
			stop()
			continue
		}
		var ap access.Approval
		select {
		case ap = <-asks:
		case r := <-done:
			t.Fatalf("a tool marked destructive ran without asking: %v %v", r.res, r.err)
		}
		stop()
		if ap.Action != access.ToolCall || ap.Resource != "Tool:calculator" {
			t.Fatalf("approval: %+v", ap)
		}
		if _, err := sys.Access.Approvals.Decide(context.Background(), ap.ID, true, "admin:test", ""); err != nil {
			t.Fatal(err)
		}
		if r := <-done; r.err != nil {
			t.Fatalf("the approved call: %v", r.err)
		}
	}
}
