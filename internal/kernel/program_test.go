package kernel

import (
	"context"
	"errors"
	"testing"

	"github.com/aios-go/aios/api"
	"github.com/aios-go/aios/internal/llm"
)

// TestCancelProgramEndsQueuedAndRunningCalls: one core, one slot. Program p has a call
// running and two queued; program q has one queued. Cancelling p ends p's three calls
// in state cancelled with the cause given, and q's call then runs to completion.
func TestCancelProgramEndsQueuedAndRunningCalls(t *testing.T) {
	started := make(chan string, 4)
	release := make(chan struct{})
	core := &funcCore{
		cap: llm.Capacity{MaxInflight: 1},
		gen: func(ctx context.Context, req *llm.Request, emit func(llm.Delta)) (*llm.Result, error) {
			started <- string(req.Messages[0].Content)
			select {
			case <-ctx.Done():
				return nil, context.Cause(ctx)
			case <-release:
				return &llm.Result{Text: "ok", FinishReason: "stop"}, nil
			}
		},
	}
	k := newKernel(t, Options{}, CoreConfig{Model: "m", Backend: "test", Core: core})
	submit := func(program, text string) *Syscall {
		t.Helper()
		sc, err := k.Submit(context.Background(), LLMCall{Agent: "a", Program: program, Request: llm.Request{Messages: userMsg(text)}}.Call())
		if err != nil {
			t.Fatal(err)
		}
		return sc
	}
	running := submit("p", "p1")
	if got := <-started; got != "p1" {
		t.Fatalf("first call to run: %q", got)
	}
	queued := []*Syscall{submit("p", "p2"), submit("p", "p3")}
	other := submit("q", "q1")

	cause := api.Errorf(api.CallerCancelled, "agent run 7 was cancelled")
	if n := k.CancelProgram("p", cause); n != 3 {
		t.Errorf("CancelProgram cancelled %d calls, want 3", n)
	}
	for _, sc := range append([]*Syscall{running}, queued...) {
		_, err := sc.Wait(context.Background())
		if sc.State() != StateCancelled {
			t.Errorf("call %d of p: state %q (err %v), want cancelled", sc.ID, sc.State(), err)
		}
		if !errors.Is(err, cause) && api.KindOf(err) != api.CallerCancelled {
			t.Errorf("call %d of p: err %v, want the cancel cause", sc.ID, err)
		}
	}
	// q's call was not touched: it gets the core now and finishes when released.
	if got := <-started; got != "q1" {
		t.Fatalf("after the cancel, %q ran; want q1", got)
	}
	close(release)
	if _, err := other.Wait(context.Background()); err != nil || other.State() != StateDone {
		t.Errorf("q's call: state %q, err %v", other.State(), err)
	}
	if n := k.CancelProgram("p", nil); n != 0 {
		t.Errorf("second CancelProgram cancelled %d calls, want 0", n)
	}
}

// TestCancelProgramPlainCauseIsCallerCancelled: a cause that is not a typed error still
// ends the calls as cancelled, with the cause kept.
func TestCancelProgramPlainCauseIsCallerCancelled(t *testing.T) {
	started := make(chan struct{}, 1)
	core := &funcCore{
		cap: llm.Capacity{MaxInflight: 1},
		gen: func(ctx context.Context, req *llm.Request, emit func(llm.Delta)) (*llm.Result, error) {
			started <- struct{}{}
			<-ctx.Done()
			return nil, context.Cause(ctx)
		},
	}
	k := newKernel(t, Options{}, CoreConfig{Model: "m", Backend: "test", Core: core})
	sc, err := k.Submit(context.Background(), LLMCall{Agent: "a", Program: "run-1", Request: llm.Request{Messages: userMsg("x")}}.Call())
	if err != nil {
		t.Fatal(err)
	}
	<-started
	plain := errors.New("agent process killed")
	if n := k.CancelProgram("run-1", plain); n != 1 {
		t.Fatalf("cancelled %d", n)
	}
	_, err = sc.Wait(context.Background())
	if api.KindOf(err) != api.CallerCancelled || !errors.Is(err, plain) || sc.State() != StateCancelled {
		t.Errorf("err %v (kind %s), state %q", err, api.KindOf(err), sc.State())
	}
	if k.CancelProgram("", plain) != 0 {
		t.Error("an empty program name matched calls")
	}
}

// A program's class is its system prompt (or developer message): programs sharing it
// share a class, a different one or none does not.
func TestProgramClass(t *testing.T) {
	sys := func(role, text string) []api.Message {
		return []api.Message{{Role: role, Content: api.Content(text)}, {Role: "user", Content: "task"}}
	}
	a, b := programClass(sys("system", "You are a SWE agent.")), programClass(sys("system", "You are a SWE agent."))
	if a == "" || a != b {
		t.Fatalf("same system prompt, classes %q and %q", a, b)
	}
	if c := programClass(sys("developer", "You are a SWE agent.")); c != a {
		t.Fatalf("developer message: %q, want %q", c, a)
	}
	if c := programClass(sys("system", "You chat.")); c == a {
		t.Fatal("different system prompts share a class")
	}
	if c := programClass([]api.Message{{Role: "user", Content: "hi"}}); c != "" {
		t.Fatalf("no system prompt, class %q", c)
	}
}
