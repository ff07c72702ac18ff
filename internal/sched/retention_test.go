package sched

import (
	"testing"
	"time"
)

func TestRetentionFromToolHistory(t *testing.T) {
	r := NewRetention()
	if got := r.TTL("search", 1000, 100000); got != 2*time.Second {
		t.Fatalf("unseen tool: ttl %v, want twice the 1s guess", got)
	}
	r.Observe("search", 200*time.Millisecond)
	if got := r.TTL("search", 1000, 100000); got != 400*time.Millisecond {
		t.Fatalf("after a 200ms call: ttl %v", got)
	}
	r.Observe("run_tests", 30*time.Second)
	if got := r.TTL("run_tests", 1000, 100000); got != 0 {
		t.Fatalf("a tool longer than the cap must not pin: %v", got)
	}
	if got := r.TTL("search", 20000, 100000); got != 0 {
		t.Fatalf("a context over an eighth of the cache must not pin: %v", got)
	}
}
