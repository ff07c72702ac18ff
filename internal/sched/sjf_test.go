package sched

import (
	"fmt"
	"math"
	"testing"
	"time"
)

var sjfHistory = []struct {
	text string
	out  int
}{
	{"Classify the sentiment of: great product, works well", 3},
	{"Classify the sentiment of: terrible, broke in a day", 2},
	{"classify the sentiment of: okay I guess", 4},
	{"Write a Python function that parses a JSON config file", 400},
	{"Write a Python function that merges two sorted lists", 380},
	{"write a python function to compute Fibonacci numbers", 420},
}

func TestPredictorNearestNeighbours(t *testing.T) {
	p := newPredictor(16, 5, 256)
	if got := p.predict(embed("anything"), 0); got != 256 {
		t.Fatalf("no history, no limit: %v, want the default 256", got)
	}
	if got := p.predict(embed("anything"), 100); got != 100 {
		t.Fatalf("no history: %v, want the call's limit 100", got)
	}
	for _, h := range sjfHistory {
		p.record(embed(h.text), h.out)
	}
	short := p.predict(embed("classify the sentiment of: love it!"), 0)
	long := p.predict(embed("Write a python function that reverses a string"), 0)
	t.Logf("predicted %.1f and %.1f tokens", short, long)
	if short > 20 || long < 300 {
		t.Fatalf("predicted %.1f tokens for a classification and %.1f for code; want < 20 and > 300", short, long)
	}
	if got := p.predict(nil, 0); math.Abs(got-1209.0/6) > 1e-9 {
		t.Fatalf("no text: %v, want the history's mean", got)
	}
	if got := p.predict(embed("Write a python function"), 50); got != 50 {
		t.Fatalf("prediction %v above the call's limit 50", got)
	}
	// The ring keeps the last calls only: overwrite everything with 7-token answers.
	for range 16 {
		p.record(embed("Write a Python function that parses a JSON config file"), 7)
	}
	if got := p.predict(embed("Write a python function"), 0); got != 7 {
		t.Fatalf("after the history turned over: %v, want 7", got)
	}
}

func TestEmbedFoldsFormatting(t *testing.T) {
	a, b := embed("Hello,   World!"), embed("hello world")
	var dot float32
	for i := range a {
		dot += a[i] * b[i]
	}
	if dot < 0.999 {
		t.Fatalf("cosine %v between texts differing in case and punctuation only", dot)
	}
	if embed("") != nil || embed(" ,. ") != nil {
		t.Fatal("empty text has an embedding")
	}
}

// history completes each of sjfHistory once on an idle core, so the policy learns.
func history(t0 time.Duration, firstID uint64) []event {
	var ev []event
	for i, h := range sjfHistory {
		id := firstID + uint64(i)
		at := t0 + time.Duration(i)*ms
		ev = append(ev,
			event{at: at, op: "submit", id: id, text: h.text, want: idAt(id)},
			event{at: at, op: "complete", id: id, out: h.out, want: ""})
	}
	return ev
}

func idAt(id uint64) string { return fmt.Sprintf("%d@0", id) }

// The call predicted shortest from history goes first, though it arrived last.
func TestSJFPicksPredictedShortest(t *testing.T) {
	s := newSchedCfg(t, Config{Name: "sjf"}, oneCore(1))
	ev := history(0, 1)
	ev = append(ev,
		event{at: 10 * ms, op: "submit", id: 10, text: "write a python function that", want: "10@0"},
		event{at: 11 * ms, op: "submit", id: 11, text: "Write a Python function that sums a list", want: ""},
		event{at: 12 * ms, op: "submit", id: 12, text: "Classify the sentiment of: meh", want: ""},
		event{at: 13 * ms, op: "submit", id: 13, text: "Write a Python function that sorts names", want: ""},
		event{at: 14 * ms, op: "submit", id: 14, text: "classify the sentiment of: superb", want: ""},
		event{at: 20 * ms, op: "complete", id: 10, out: 400, want: "12@0"},
		event{at: 21 * ms, op: "complete", id: 12, out: 3, want: "14@0"},
		event{at: 22 * ms, op: "complete", id: 14, out: 3, want: "11@0"},
		event{at: 23 * ms, op: "complete", id: 11, out: 400, want: "13@0"},
	)
	runTable(t, s, ev)
}

// A long call is not starved by a stream of short ones. It is predicted ~400 tokens
// (4s at 10ms a token), the short ones ~3 (30ms); with Aging 1 a short call goes ahead
// of it only if it arrived less than ~3.97s after it (at 1s): so up to 4.8s, not 5.6s.
func TestSJFAgingServesLongCall(t *testing.T) {
	runTable(t, newSchedCfg(t, Config{Name: "sjf"}, oneCore(1)), agingTable("11@0"))
	// Without (nearly any) aging the short call of 5.6s still goes first.
	runTable(t, newSchedCfg(t, Config{Name: "sjf", Aging: 1e-6}, oneCore(1)), agingTable("17@0"))
}

func agingTable(at56 string) []event {
	const short = "classify the sentiment of: ok"
	at := func(tenths int) time.Duration { return time.Duration(tenths) * 100 * ms }
	ev := history(0, 1)
	ev = append(ev,
		event{at: at(10), op: "submit", id: 10, text: short, want: "10@0"},
		event{at: at(10), op: "submit", id: 11, text: "Write a Python function that sorts names", want: ""},
	)
	running := uint64(10)
	for i, id := 0, uint64(12); id <= 16; i, id = i+1, id+1 {
		when := at(16 + 8*i) // 1.6s, 2.4s, ... 4.8s
		ev = append(ev,
			event{at: when, op: "submit", id: id, text: short, want: ""},
			event{at: when, op: "complete", id: running, out: 3, want: idAt(id)})
		running = id
	}
	ev = append(ev,
		event{at: at(56), op: "submit", id: 17, text: short, want: ""},
		event{at: at(56), op: "complete", id: 16, out: 3, want: at56},
	)
	return ev
}
