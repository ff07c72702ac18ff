package main

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/aios-go/aios/internal/bench"
)

func TestBenchBeladyNeedsVirtual(t *testing.T) {
	for _, args := range [][]string{
		{"--belady", "--programs", "2"},
		{"--belady", "--virtual", "--engine-mode", "naive", "--programs", "2"},
	} {
		cmd := benchCmd()
		cmd.SetArgs(append(args, "--quiet"))
		cmd.SetOut(&bytes.Buffer{})
		cmd.SetErr(&bytes.Buffer{})
		err := cmd.Execute()
		if !errors.Is(err, bench.ErrBeladyLive) && !errors.Is(err, bench.ErrBeladyMode) {
			t.Errorf("%v: %v", args, err)
		}
	}
}

// Weights are agent=number pairs, each positive; anything else stops the run before it
// starts.
func TestBenchWeights(t *testing.T) {
	for _, bad := range []string{"agent-0=x", "agent-0=0", "agent-0=-1", "agent-0=+Inf"} {
		cmd := benchCmd()
		cmd.SetArgs([]string{"--virtual", "--programs", "2", "--quiet", "--weights", bad})
		cmd.SetOut(&bytes.Buffer{})
		cmd.SetErr(&bytes.Buffer{})
		if err := cmd.Execute(); err == nil || !strings.Contains(err.Error(), "want a positive number") {
			t.Errorf("--weights %s: %v", bad, err)
		}
	}
	got, err := parseWeights(map[string]string{"a": "2", "b": "0.5"})
	if err != nil || len(got) != 2 || got["a"] != 2 || got["b"] != 0.5 {
		t.Fatalf("parseWeights: %v %v", got, err)
	}
}

// A burst needs a heavy agent, an open loop and a window within the run.
func TestBenchBurst(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--burst", "0.5"}, "want FROM:TO"},
		{[]string{"--burst", "0.6:0.4"}, "want FROM:TO"},
		{[]string{"--burst", "0:1.5"}, "want FROM:TO"},
		{[]string{"--burst", "0.2:0.4", "--rate", "10"}, bench.ErrBurstSetup.Error()},
		{[]string{"--burst", "0.2:0.4", "--heavy", "3"}, bench.ErrBurstSetup.Error()},
	} {
		cmd := benchCmd()
		cmd.SetArgs(append([]string{"--virtual", "--programs", "4", "--quiet", "--arms", "direct"}, tc.args...))
		cmd.SetOut(&bytes.Buffer{})
		cmd.SetErr(&bytes.Buffer{})
		if err := cmd.Execute(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: %v, want %q", tc.args, err, tc.want)
		}
	}
	b, err := parseBurst("0.25:0.75")
	if err != nil || b.From != 0.25 || b.To != 0.75 {
		t.Fatalf("parseBurst: %+v %v", b, err)
	}
}
