package workload

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"time"
)

// A trace is JSON Lines, one object per step (docs/bench.md, "Trace format"):
//
//	{"program":0,"step":0,"kind":"llm","input":200,"output":35,"agent":"agent-0","system":500,"prefix":"react","arrival_ms":0}
//	{"program":0,"step":1,"kind":"tool","tool":"search","tool_ms":120.5}
//	{"program":0,"step":2,"kind":"llm","input":90,"output":31}
//
// Step fields:
//   - program (required): the program's id, an integer >= 0. Lines of different programs
//     may interleave; a program's steps must appear in order.
//   - step (required): the step's index within its program: 0, 1, 2, ...
//   - kind (required): "llm" or "tool".
//   - input, output: for llm steps, new prompt tokens appended to the parent's context,
//     and tokens to generate (>= 1). Not allowed on tool steps.
//   - tool, tool_ms: for tool steps, the tool's name (default "tool") and how long it
//     runs in milliseconds (fractions allowed). Not allowed on llm steps.
//   - parent: the step whose end state this step's context extends; -1 is the program's
//     start (system prompt only). Default: the previous step (-1 for step 0).
//   - deps: steps that must finish first. Default: [previous step] ([] for step 0). The
//     parent must be among the deps or their ancestors.
//
// Program fields, allowed on any of a program's lines and required to agree where
// repeated:
//   - agent: who issues the program. Default "agent-<program>".
//   - system: system-prompt tokens. Default 0.
//   - prefix: names the system prompt; programs with the same prefix share it (it
//     becomes Program.Kind). Default "trace".
//   - arrival_ms: open-loop arrival time in milliseconds. Default 0.
//
// Blank lines are skipped; unknown fields are errors, so a misspelt field does not go
// silently unused. Token counts are at most 2^24 and times at most 10^9 ms.
type traceLine struct {
	Program   *int     `json:"program"`
	Step      *int     `json:"step"`
	Kind      string   `json:"kind"`
	Input     int      `json:"input,omitempty"`
	Output    int      `json:"output,omitempty"`
	Tool      string   `json:"tool,omitempty"`
	ToolMS    float64  `json:"tool_ms,omitempty"`
	Parent    *int     `json:"parent,omitempty"`
	Deps      *[]int   `json:"deps,omitempty"`
	Agent     string   `json:"agent,omitempty"`
	System    *int     `json:"system,omitempty"`
	Prefix    string   `json:"prefix,omitempty"`
	ArrivalMS *float64 `json:"arrival_ms,omitempty"`
}

// TraceError is a problem in a trace, with the 1-based line it was found on.
type TraceError struct {
	Line int
	Err  error
}

func (e *TraceError) Error() string { return fmt.Sprintf("trace line %d: %v", e.Line, e.Err) }
func (e *TraceError) Unwrap() error { return e.Err }

// maxTraceLine bounds one line, so a file without newlines cannot exhaust memory. A
// variable only so that a test can lower it instead of allocating 64 MiB.
var maxTraceLine = 64 << 20

// ReadTrace reads programs from a JSONL trace (format above and in docs/bench.md). The
// programs come in the order their first lines appear, each with the trace's program id
// as ID; every program passes Validate. Errors are *TraceError and name the line.
func ReadTrace(r io.Reader) ([]Program, error) {
	type partial struct {
		prog                                   Program
		agentSet, systemSet, prefixSet, arrSet bool
	}
	var order []*partial
	byID := map[int]*partial{}

	sc := bufio.NewScanner(r)
	sc.Buffer(nil, maxTraceLine) // no initial buffer: its capacity would raise the limit
	line := 0
	fail := func(format string, a ...any) error {
		return &TraceError{Line: line, Err: fmt.Errorf(format, a...)}
	}
	for sc.Scan() {
		line++
		text := bytes.TrimSpace(sc.Bytes())
		if len(text) == 0 {
			continue
		}
		var l traceLine
		dec := json.NewDecoder(bytes.NewReader(text))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&l); err != nil {
			return nil, fail("bad JSON: %v", err)
		}
		if _, err := dec.Token(); err != io.EOF {
			return nil, fail("bad JSON: unexpected data after the object (one step per line)")
		}
		switch {
		case l.Program == nil:
			return nil, fail(`missing "program"`)
		case l.Step == nil:
			return nil, fail(`missing "step"`)
		case l.Kind == "":
			return nil, fail(`missing "kind" (want "llm" or "tool")`)
		case *l.Program < 0:
			return nil, fail("program id %d, want >= 0", *l.Program)
		}
		id, i := *l.Program, *l.Step

		p := byID[id]
		if p == nil {
			p = &partial{prog: Program{ID: id}}
			byID[id] = p
			order = append(order, p)
		}
		if n := len(p.prog.Steps); i != n {
			return nil, fail("program %d: step %d out of order, want %d (a program's steps must appear in order 0, 1, 2, ...)", id, i, n)
		}
		if n := len(p.prog.Steps); n >= maxSteps {
			return nil, fail("program %d: more than %d steps", id, maxSteps)
		}

		// Program fields: the first line that gives one sets it; later ones must agree.
		if l.Agent != "" {
			if p.agentSet && p.prog.Agent != l.Agent {
				return nil, fail("program %d: agent %q, but an earlier line said %q", id, l.Agent, p.prog.Agent)
			}
			p.prog.Agent, p.agentSet = l.Agent, true
		}
		if l.System != nil {
			if *l.System < 0 || *l.System > maxTokens {
				return nil, fail("program %d: system prompt of %d tokens, want 0..%d", id, *l.System, maxTokens)
			}
			if p.systemSet && p.prog.System != *l.System {
				return nil, fail("program %d: system %d, but an earlier line said %d", id, *l.System, p.prog.System)
			}
			p.prog.System, p.systemSet = *l.System, true
		}
		if l.Prefix != "" {
			if p.prefixSet && p.prog.Kind != l.Prefix {
				return nil, fail("program %d: prefix %q, but an earlier line said %q", id, l.Prefix, p.prog.Kind)
			}
			p.prog.Kind, p.prefixSet = l.Prefix, true
		}
		if l.ArrivalMS != nil {
			a, err := millis(*l.ArrivalMS)
			if err != nil {
				return nil, fail("program %d: arrival_ms: %v", id, err)
			}
			if p.arrSet && p.prog.Arrival != a {
				return nil, fail("program %d: arrival_ms %v, but an earlier line said %v", id, *l.ArrivalMS, msOf(p.prog.Arrival))
			}
			p.prog.Arrival, p.arrSet = a, true
		}

		s := Step{Input: l.Input, Output: l.Output, Parent: i - 1, Deps: after(i - 1)}
		switch l.Kind {
		case "llm":
			s.Kind = LLM
			if l.Tool != "" || l.ToolMS != 0 {
				return nil, fail(`program %d step %d: "tool" and "tool_ms" belong on tool steps, not llm steps`, id, i)
			}
		case "tool":
			s.Kind = Tool
			s.Tool = l.Tool
			if s.Tool == "" {
				s.Tool = "tool"
			}
			d, err := millis(l.ToolMS)
			if err != nil {
				return nil, fail("program %d step %d: tool_ms: %v", id, i, err)
			}
			s.ToolTime = d
		default:
			return nil, fail("program %d step %d: unknown kind %q (want \"llm\" or \"tool\")", id, i, l.Kind)
		}
		if l.Parent != nil {
			s.Parent = *l.Parent
		}
		if l.Deps != nil {
			s.Deps = nil // an empty list means no deps; nil is how programs say that
			if len(*l.Deps) > 0 {
				s.Deps = *l.Deps
			}
		}
		p.prog.Steps = append(p.prog.Steps, s)
		if err := checkStep(p.prog.Steps, i); err != nil {
			return nil, fail("program %d step %d: %v", id, i, err)
		}
	}
	if err := sc.Err(); err != nil {
		line++ // the line being read when it failed
		if errors.Is(err, bufio.ErrTooLong) {
			return nil, fail("longer than %d bytes", maxTraceLine)
		}
		return nil, fail("read: %v", err)
	}
	if len(order) == 0 {
		return nil, &TraceError{Line: line, Err: errors.New("no steps in the trace")}
	}

	progs := make([]Program, len(order))
	for k, p := range order {
		if !p.agentSet {
			p.prog.Agent = "agent-" + strconv.Itoa(p.prog.ID)
		}
		if !p.prefixSet {
			p.prog.Kind = "trace"
		}
		// Every step was checked as it arrived; this catches anything a later change to
		// Validate adds without a matching per-line check.
		if err := p.prog.Validate(); err != nil {
			return nil, &TraceError{Line: line, Err: err}
		}
		progs[k] = p.prog
	}
	return progs, nil
}

// millis converts a trace's millisecond value to a Duration, within 0..maxTime.
func millis(ms float64) (time.Duration, error) {
	if math.IsNaN(ms) || ms < 0 || ms > float64(maxTime/time.Millisecond) {
		return 0, fmt.Errorf("%v ms, want 0..%d", ms, maxTime/time.Millisecond)
	}
	return time.Duration(math.Round(ms * float64(time.Millisecond))), nil
}

// msOf is the inverse of millis. Below maxTime (< 2^51 ns) the float64 round trip is
// exact, which is what lets WriteTrace and ReadTrace round-trip to the nanosecond.
func msOf(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// WriteTrace writes programs in the trace format ReadTrace reads, so a generated workload
// can be saved, inspected, edited and replayed. Program fields go on each program's first
// line; parent and deps only where they differ from the sequential default. Reading the
// output back gives the same programs, with Kind as the prefix. Programs must be valid and
// have distinct IDs.
func WriteTrace(w io.Writer, progs []Program) error {
	seen := make(map[int]bool, len(progs))
	bw := bufio.NewWriter(w)
	for _, p := range progs {
		if err := p.Validate(); err != nil {
			return fmt.Errorf("workload: write trace: %w", err)
		}
		if p.ID < 0 || seen[p.ID] {
			return fmt.Errorf("workload: write trace: program id %d is negative or repeated; ReadTrace would merge or reject it", p.ID)
		}
		seen[p.ID] = true
		for i, s := range p.Steps {
			id, step := p.ID, i
			l := traceLine{Program: &id, Step: &step, Kind: s.Kind.String()}
			if s.Kind == LLM {
				l.Input, l.Output = s.Input, s.Output
			} else {
				l.Tool, l.ToolMS = s.Tool, msOf(s.ToolTime)
			}
			if s.Parent != i-1 {
				parent := s.Parent
				l.Parent = &parent
			}
			if !slices.Equal(s.Deps, after(i-1)) {
				deps := append([]int{}, s.Deps...) // non-nil, so an empty list is written as []
				l.Deps = &deps
			}
			if i == 0 {
				system, arrival := p.System, msOf(p.Arrival)
				l.Agent, l.Prefix = p.Agent, p.Kind
				if system != 0 {
					l.System = &system
				}
				if arrival != 0 {
					l.ArrivalMS = &arrival
				}
			}
			b, err := json.Marshal(l)
			if err != nil {
				return fmt.Errorf("workload: write trace: %w", err)
			}
			bw.Write(b)
			bw.WriteByte('\n')
		}
	}
	return bw.Flush() // bufio.Writer keeps the first write error; Flush reports it
}
