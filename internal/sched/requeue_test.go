package sched

import "testing"

// Calls stopped together go back to the queue together, in ID order, once the last is
// back: call 2 comes back before call 1, yet 1 is queued first, and no slot is given
// out while 1 is still out. Service stops counting when each slice came back.
func TestStoppedTogetherRequeuedTogether(t *testing.T) {
	s := newSched(t, "rr", 10*ms, oneCore(2))
	c := map[uint64]*Call{}
	for id := uint64(1); id <= 4; id++ {
		c[id] = &Call{ID: id, Module: LLM}
		mustSubmit(t, s, c[id], 0)
	}
	if got := ids(s.Dispatch(0)); got != "1 2" {
		t.Fatalf("first dispatch: %q", got)
	}
	stop := s.Preemptions(10 * ms)
	if len(stop) != 2 {
		t.Fatalf("preempted %d calls, want 2", len(stop))
	}
	s.Requeue(c[2], 11*ms)
	if got := ids(s.Dispatch(11 * ms)); got != "" {
		t.Fatalf("a slot was given out while call 1 was still stopping: %q", got)
	}
	if c[2].State != Preempting || s.Queued(LLM) != 2 {
		t.Fatalf("call 2 came back alone: state %v, %d queued", c[2].State, s.Queued(LLM))
	}
	s.Requeue(c[1], 12*ms)
	if got := ids(s.Dispatch(12 * ms)); got != "3 4" {
		t.Fatalf("after both came back: %q", got)
	}
	s.Complete(c[3], 13*ms)
	if got := ids(s.Dispatch(13 * ms)); got != "1" {
		t.Fatalf("the first requeued is %q, want call 1 (lower ID), though call 2 came back first", got)
	}
	if c[1].Service != 12*ms || c[2].Service != 11*ms {
		t.Fatalf("service: call 1 %v, call 2 %v; want 12ms and 11ms", c[1].Service, c[2].Service)
	}
}

// A stopping call that ends instead of coming back (it finished, or was cancelled)
// releases the calls parked behind it.
func TestStoppedCallEndingReleasesTheOthers(t *testing.T) {
	for _, end := range []string{"complete", "cancel"} {
		t.Run(end, func(t *testing.T) {
			s := newSched(t, "rr", 10*ms, oneCore(2))
			c := map[uint64]*Call{}
			for id := uint64(1); id <= 3; id++ {
				c[id] = &Call{ID: id, Module: LLM}
				mustSubmit(t, s, c[id], 0)
			}
			s.Dispatch(0)
			if len(s.Preemptions(10*ms)) != 2 {
				t.Fatal("want calls 1 and 2 preempted")
			}
			s.Requeue(c[1], 11*ms)
			if end == "complete" {
				s.Complete(c[2], 12*ms)
			} else if !s.Cancel(c[2], 12*ms) {
				t.Fatal("Cancel: call 2 was not in flight")
			}
			if got := ids(s.Dispatch(12 * ms)); got != "3 1" {
				t.Fatalf("after call 2 ended: %q, want 3 then 1", got)
			}
		})
	}
}
