package main

import (
	"bytes"
	"errors"
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
