package sched

import (
	"reflect"
	"testing"
	"time"
)

// swapSched is wsSched with swapping: capacity 1000 tokens, admission up to 800,
// suspension past 950; contexts copy back at 1000 tokens/s, with a 100 ms margin.
func swapSched(t *testing.T, swap bool) *Scheduler {
	s := newSched(t, "fifo", 0, CoreSpec{ID: 0, Module: LLM, MaxInflight: 100, MaxTokens: 1000})
	s.EnableWorkingSet(WorkingSet{High: 0.8, Suspend: 0.95, Idle: time.Minute,
		Swap: swap, SwapAfter: time.Second, SwapRate: 1000, SwapMargin: 100 * ms})
	return s
}

// A program that starts a long tool is swapped out, which lets a waiting program in;
// it is warmed its copy time plus the margin before the tool is expected back, up to
// the suspension mark even though that is past the admission mark.
func TestSwapOutOnLongToolAndWarmUp(t *testing.T) {
	s := swapSched(t, true)
	mustSubmit(t, s, &Call{ID: 1, Module: LLM, Program: "a", Tokens: 400}, 0)
	mustSubmit(t, s, &Call{ID: 2, Module: LLM, Program: "b", Tokens: 300}, 0)
	mustSubmit(t, s, &Call{ID: 3, Module: LLM, Program: "c", Tokens: 200}, 0) // 900 > 800
	if r := s.Round(0); ids(r.Start) != "1 2" || len(r.Swaps) != 0 {
		t.Fatalf("round at 0: started %q, swaps %v; want 1 2 and none", ids(r.Start), r.Swaps)
	}
	s.Complete(s.runningCall(1), ms)
	s.Complete(s.runningCall(2), ms)
	// b's tool is expected to take 500 ms, under SwapAfter: b keeps its place.
	s.ToolStarted("b", "t", 500*ms, ms)
	s.ToolStarted("a", "t", 10*time.Second, ms)
	r := s.Round(ms)
	if want := []Swap{{Program: "a"}}; !reflect.DeepEqual(r.Swaps, want) {
		t.Fatalf("swaps %v, want %v", r.Swaps, want)
	}
	if ids(r.Start) != "3" {
		t.Fatalf("after a was swapped out: started %q, want c's call", ids(r.Start))
	}
	// a is expected back at 10.001 s; copying its 400 tokens takes 400 ms, plus 100 ms.
	warm := ms + 10*time.Second - 500*ms
	if !r.HasNext || r.Next != warm {
		t.Fatalf("next round at %v (%v), want the warm-up at %v", r.Next, r.HasNext, warm)
	}
	if r := s.Round(warm - ms); len(r.Swaps) != 0 {
		t.Fatalf("warmed early: %v", r.Swaps)
	}
	r = s.Round(warm)
	if want := []Swap{{Program: "a", In: true}}; !reflect.DeepEqual(r.Swaps, want) {
		t.Fatalf("swaps at the warm-up %v, want %v", r.Swaps, want)
	}
	// 300 + 200 + 400 = 900: past the admission mark, within the suspension mark.
	if active, tokens, _, _ := s.WorkingSetStats(); active != 3 || tokens != 900 {
		t.Fatalf("after the warm-up: %d active with %d tokens, want 3 with 900", active, tokens)
	}
	if !s.Admitted(&Call{Module: LLM, Program: "a"}) {
		t.Fatal("a is not admitted after its warm-up")
	}
	if out, in := s.SwapStats(); out != 1 || in != 1 {
		t.Fatalf("swap stats %d out, %d in; want 1, 1", out, in)
	}
}

// A warm-up that does not fit waits; the program comes back through admission.
func TestWarmUpWaitsForRoom(t *testing.T) {
	s := swapSched(t, true)
	mustSubmit(t, s, &Call{ID: 1, Module: LLM, Program: "a", Tokens: 400}, 0)
	s.Round(0)
	s.Complete(s.runningCall(1), ms)
	s.ToolStarted("a", "t", 2*time.Second, ms)
	mustSubmit(t, s, &Call{ID: 2, Module: LLM, Program: "b", Tokens: 700}, ms)
	if r := s.Round(ms); ids(r.Start) != "2" || len(r.Swaps) != 1 {
		t.Fatalf("started %q with swaps %v; want b's call and a swapped out", ids(r.Start), r.Swaps)
	}
	// 700 + 400 > 950: the warm-up at 1.501 s does not happen, and no timer is asked
	// for it again.
	if r := s.Round(1501 * ms); len(r.Swaps) != 0 || r.HasNext {
		t.Fatalf("warm-up past the suspension mark: swaps %v, next %v (%v)", r.Swaps, r.Next, r.HasNext)
	}
	s.Complete(s.runningCall(2), 1600*ms)
	s.EndProgram("b")
	if r := s.Round(1600 * ms); !reflect.DeepEqual(r.Swaps, []Swap{{Program: "a", In: true}}) {
		t.Fatalf("after b ended: swaps %v, want a warmed", r.Swaps)
	}
}

// Suspending a program to keep the set under the suspension mark swaps it out too;
// without Swap no swap is asked for.
func TestSuspensionSwapsOut(t *testing.T) {
	for _, swap := range []bool{false, true} {
		s := swapSched(t, swap)
		for i, p := range []string{"a", "b"} {
			mustSubmit(t, s, &Call{ID: uint64(i + 1), Module: LLM, Program: p, Tokens: 400}, 0)
		}
		s.Round(0)
		s.Complete(s.runningCall(1), ms)
		s.Complete(s.runningCall(2), ms)
		// a's context grows to 600: 1000 > 950, so b (admitted last) is suspended.
		mustSubmit(t, s, &Call{ID: 3, Module: LLM, Program: "a", Tokens: 600}, 2*ms)
		mustSubmit(t, s, &Call{ID: 4, Module: LLM, Program: "b", Tokens: 450}, 2*ms)
		r := s.Round(2 * ms)
		var want []Swap
		if swap {
			want = []Swap{{Program: "b"}}
		}
		if ids(r.Start) != "3" || !reflect.DeepEqual(r.Swaps, want) {
			t.Errorf("swap %v: started %q, swaps %v; want 3 and %v", swap, ids(r.Start), r.Swaps, want)
		}
	}
}

// A program with a call queued is using its context: its tool does not swap it out.
func TestNoSwapWithCallQueued(t *testing.T) {
	s := swapSched(t, true)
	mustSubmit(t, s, &Call{ID: 1, Module: LLM, Program: "a", Tokens: 400}, 0)
	s.Round(0)
	s.ToolStarted("a", "t", time.Minute, ms) // a parallel branch's tool while call 1 runs
	if r := s.Round(ms); len(r.Swaps) != 0 {
		t.Fatalf("swapped out with a call running: %v", r.Swaps)
	}
}
