package workload

import (
	"bytes"
	"errors"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

// A small trace using every field: two programs interleaved, one a sequence relying on
// the defaults, one a DAG (two parallel calls off the root and a join) spelling out
// parent and deps, with blank lines and CRLF endings on the way.
const sampleTrace = `{"program":7,"step":0,"kind":"llm","input":200,"output":35,"agent":"alice","system":500,"prefix":"react","arrival_ms":1500.25}
{"program":7,"step":1,"kind":"tool","tool":"search","tool_ms":120.5}

{"program":3,"step":0,"kind":"llm","input":100,"output":10,"arrival_ms":0}` + "\r" + `
{"program":3,"step":1,"kind":"llm","input":20,"output":50,"parent":0,"deps":[0]}
{"program":7,"step":2,"kind":"llm","input":90,"output":31,"agent":"alice"}
{"program":3,"step":2,"kind":"llm","input":25,"output":60,"parent":0,"deps":[0]}
{"program":3,"step":3,"kind":"tool","parent":2,"deps":[1,2]}
{"program":3,"step":4,"kind":"llm","input":70,"output":5,"system":0}
{"program":3,"step":5,"kind":"llm","input":1,"output":1,"parent":-1,"deps":[]}
`

var sampleWant = []Program{
	{
		ID: 7, Agent: "alice", Kind: "react", System: 500,
		Arrival: 1500*time.Millisecond + 250*time.Microsecond,
		Steps: []Step{
			{Kind: LLM, Input: 200, Output: 35, Parent: -1},
			{Kind: Tool, Tool: "search", ToolTime: 120*time.Millisecond + 500*time.Microsecond, Parent: 0, Deps: []int{0}},
			{Kind: LLM, Input: 90, Output: 31, Parent: 1, Deps: []int{1}},
		},
	},
	{
		ID: 3, Agent: "agent-3", Kind: "trace", System: 0,
		Steps: []Step{
			{Kind: LLM, Input: 100, Output: 10, Parent: -1},
			{Kind: LLM, Input: 20, Output: 50, Parent: 0, Deps: []int{0}},
			{Kind: LLM, Input: 25, Output: 60, Parent: 0, Deps: []int{0}},
			{Kind: Tool, Tool: "tool", Parent: 2, Deps: []int{1, 2}},
			{Kind: LLM, Input: 70, Output: 5, Parent: 3, Deps: []int{3}},
			{Kind: LLM, Input: 1, Output: 1, Parent: -1},
		},
	},
}

func TestReadTrace(t *testing.T) {
	got, err := ReadTrace(strings.NewReader(sampleTrace))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, sampleWant) {
		t.Fatalf("ReadTrace:\n got %+v\nwant %+v", got, sampleWant)
	}
	// The join's context runs through step 2, its parent, not through step 1.
	if c := got[1].ContextAt(4); c != 100+10+25+60+70 {
		t.Errorf("context after the join = %d, want %d", c, 100+10+25+60+70)
	}

	// Writing and reading back gives the same programs.
	var buf bytes.Buffer
	if err := WriteTrace(&buf, got); err != nil {
		t.Fatal(err)
	}
	again, err := ReadTrace(&buf)
	if err != nil {
		t.Fatalf("reading WriteTrace's output: %v\n%s", err, buf.String())
	}
	if !reflect.DeepEqual(again, sampleWant) {
		t.Errorf("round trip:\n got %+v\nwant %+v", again, sampleWant)
	}
}

// Every generated workload survives a trip through a trace file unchanged, so a run can be
// saved with WriteTrace and replayed with ReadTrace.
func TestTraceRoundTripGenerated(t *testing.T) {
	ps, err := Generate("mixed", 40, 5, Options{Heavy: 2})
	if err != nil {
		t.Fatal(err)
	}
	arr := Poisson(100, len(ps), 5)
	for i := range ps {
		ps[i].Arrival = arr[i]
	}
	var buf bytes.Buffer
	if err := WriteTrace(&buf, ps); err != nil {
		t.Fatal(err)
	}
	got, err := ReadTrace(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, ps) {
		t.Error("generated programs changed in a trace round trip")
	}
}

func TestWriteTraceErrors(t *testing.T) {
	ok := Program{ID: 1, Steps: []Step{{Kind: LLM, Output: 1, Parent: -1}}}
	bad := Program{ID: 2, Steps: []Step{{Kind: LLM, Output: 0, Parent: -1}}}
	for name, ps := range map[string][]Program{
		"invalid program": {bad},
		"repeated id":     {ok, ok},
		"negative id":     {{ID: -1, Steps: ok.Steps}},
	} {
		if err := WriteTrace(&bytes.Buffer{}, ps); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

func TestReadTraceErrors(t *testing.T) {
	const (
		s0 = `{"program":1,"step":0,"kind":"llm","input":10,"output":5}` + "\n"
		s1 = `{"program":1,"step":1,"kind":"tool","tool_ms":5}` + "\n"
	)
	for _, tc := range []struct {
		name  string
		trace string
		line  int
		want  string // in the message
	}{
		{"bad JSON", s0 + `{"program":1,"step":1,"kind":"tool"` + "\n", 2, "bad JSON"},
		{"not an object", "[1,2]\n", 1, "bad JSON"},
		{"two objects on a line", s0 + `{"program":2,"step":0,"kind":"llm","output":1} {}` + "\n", 2, "unexpected data"},
		{"unknown field", `{"program":1,"step":0,"kind":"llm","output":1,"inptu":3}`, 1, "inptu"},
		{"string token count", `{"program":1,"step":0,"kind":"llm","output":"5"}`, 1, "bad JSON"},
		{"fractional token count", `{"program":1,"step":0,"kind":"llm","output":5.5}`, 1, "bad JSON"},
		{"unknown kind", s0 + s1 + `{"program":1,"step":2,"kind":"think","output":3}`, 3, `unknown kind "think"`},
		{"missing program", `{"step":0,"kind":"llm","output":1}`, 1, `missing "program"`},
		{"missing step", `{"program":0,"kind":"llm","output":1}`, 1, `missing "step"`},
		{"missing kind", `{"program":0,"step":0,"output":1}`, 1, `missing "kind"`},
		{"negative program", `{"program":-4,"step":0,"kind":"llm","output":1}`, 1, "program id -4"},
		{"step out of order", s0 + `{"program":1,"step":2,"kind":"tool"}`, 2, "out of order, want 1"},
		{"first step not 0", "\n\n" + `{"program":1,"step":1,"kind":"tool"}`, 3, "out of order, want 0"},
		{"dep forward reference", s0 + `{"program":1,"step":1,"kind":"tool","deps":[0,3]}`, 2, "dep 3 is not an earlier step"},
		{"dep on itself", s0 + `{"program":1,"step":1,"kind":"tool","deps":[1]}`, 2, "dep 1 is not an earlier step"},
		{"negative dep", s0 + `{"program":1,"step":1,"kind":"tool","deps":[-1]}`, 2, "dep -1"},
		{"repeated dep", s0 + s1 + `{"program":1,"step":2,"kind":"tool","deps":[0,0]}`, 3, "listed twice"},
		{"parent forward reference", s0 + `{"program":1,"step":1,"kind":"llm","output":1,"parent":1}`, 2, "parent 1 is not an earlier step"},
		{"parent not waited for", s0 + s1 + `{"program":1,"step":2,"kind":"llm","output":1,"parent":1,"deps":[]}`, 3, "parent 1 is not among the deps"},
		{"llm generating nothing", `{"program":1,"step":0,"kind":"llm","input":5}`, 1, "generates 0 tokens"},
		{"llm with tool time", `{"program":1,"step":0,"kind":"llm","output":5,"tool_ms":3}`, 1, "belong on tool steps"},
		{"tool with tokens", s0 + `{"program":1,"step":1,"kind":"tool","output":5}`, 2, "tool step has tokens"},
		{"negative input", `{"program":1,"step":0,"kind":"llm","input":-5,"output":5}`, 1, "-5 input tokens"},
		{"negative tool time", s0 + `{"program":1,"step":1,"kind":"tool","tool_ms":-1}`, 2, "tool_ms"},
		{"absurd tool time", s0 + `{"program":1,"step":1,"kind":"tool","tool_ms":1e300}`, 2, "tool_ms"},
		{"huge output", `{"program":1,"step":0,"kind":"llm","output":1000000000000}`, 1, "generates"},
		{"negative system", `{"program":1,"step":0,"kind":"llm","output":1,"system":-1}`, 1, "system prompt of -1"},
		{"negative arrival", `{"program":1,"step":0,"kind":"llm","output":1,"arrival_ms":-3}`, 1, "arrival_ms"},
		{"agents disagree", s0 + `{"program":1,"step":1,"kind":"tool","agent":"x"}` + "\n" + `{"program":1,"step":2,"kind":"llm","output":1,"agent":"y"}`, 3, `agent "y"`},
		{"systems disagree", `{"program":1,"step":0,"kind":"llm","output":1,"system":5}` + "\n" + `{"program":1,"step":1,"kind":"llm","output":1,"system":6}`, 2, "system 6"},
		{"prefixes disagree", `{"program":1,"step":0,"kind":"llm","output":1,"prefix":"a"}` + "\n" + `{"program":1,"step":1,"kind":"llm","output":1,"prefix":"b"}`, 2, `prefix "b"`},
		{"arrivals disagree", `{"program":1,"step":0,"kind":"llm","output":1,"arrival_ms":5}` + "\n" + `{"program":1,"step":1,"kind":"llm","output":1,"arrival_ms":6}`, 2, "arrival_ms 6"},
		{"empty", "", 0, "no steps"},
		{"only blank lines", "\n  \n\t\n", 3, "no steps"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ReadTrace(strings.NewReader(tc.trace))
			if err == nil {
				t.Fatal("no error")
			}
			var te *TraceError
			if !errors.As(err, &te) {
				t.Fatalf("error %v is not a *TraceError", err)
			}
			if te.Line != tc.line {
				t.Errorf("error on line %d, want %d: %v", te.Line, tc.line, err)
			}
			if !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "trace line ") {
				t.Errorf("error %q, want it to name the line and contain %q", err, tc.want)
			}
		})
	}
}

func TestReadTraceLongLine(t *testing.T) {
	defer func(n int) { maxTraceLine = n }(maxTraceLine)
	maxTraceLine = 1 << 10
	long := `{"program":1,"step":0,"kind":"llm","output":1,"agent":"` + strings.Repeat("a", maxTraceLine) + `"}`
	_, err := ReadTrace(strings.NewReader(`{"program":0,"step":0,"kind":"llm","output":1}` + "\n" + long))
	var te *TraceError
	if !errors.As(err, &te) || te.Line != 2 || !strings.Contains(err.Error(), "longer than") {
		t.Errorf("got %v, want a too-long error on line 2", err)
	}
}

func TestValidate(t *testing.T) {
	llm := func(parent int, deps ...int) Step { return Step{Kind: LLM, Output: 1, Parent: parent, Deps: deps} }
	for _, tc := range []struct {
		name  string
		steps []Step
		want  string // "" for valid
	}{
		{"one call", []Step{llm(-1)}, ""},
		{"fan-out and join", []Step{llm(-1), llm(0, 0), llm(0, 0), {Kind: Tool, Parent: 1, Deps: []int{1, 2}}}, ""},
		{"parent reached through deps", []Step{llm(-1), {Kind: Tool, Parent: 0, Deps: []int{0}}, llm(0, 1)}, ""},
		{"no steps", nil, "no steps"},
		{"zero kind", []Step{{Output: 1, Parent: -1}}, "invalid step kind"},
		{"cycle through a forward dep", []Step{llm(-1, 1), llm(0, 0)}, "dep 1 is not an earlier step"},
		{"parent below -1", []Step{llm(-2)}, "parent -2"},
		{"parent not among deps", []Step{llm(-1), llm(-1), llm(0, 1)}, "parent 0 is not among the deps"},
		{"tool with a name on an llm step", []Step{{Kind: LLM, Output: 1, Tool: "x", Parent: -1}}, "tool fields"},
		{"negative tool time", []Step{llm(-1), {Kind: Tool, ToolTime: -1, Parent: 0, Deps: []int{0}}}, "tool time"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := Program{ID: 9, Steps: tc.steps}.Validate()
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("Validate: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Errorf("Validate = %v, want an error containing %q", err, tc.want)
			}
		})
	}
	for _, p := range []Program{
		{System: -1, Steps: []Step{llm(-1)}},
		{Arrival: -time.Second, Steps: []Step{llm(-1)}},
	} {
		if p.Validate() == nil {
			t.Errorf("Validate(%+v) = nil", p)
		}
	}
}

func FuzzReadTrace(f *testing.F) {
	f.Add(sampleTrace)
	f.Add(`{"program":1,"step":0,"kind":"llm","input":10,"output":5}`)
	f.Add(`{"program":1,"step":0,"kind":"llm","output":1}` + "\n" + `{"program":1,"step":1,"kind":"tool","deps":[0,0]}`)
	f.Add(`{"program":0,"step":0,"kind":"tool","tool_ms":1e9,"arrival_ms":999999999.999999}`)
	f.Add("{\n")
	f.Fuzz(func(t *testing.T, in string) {
		ps, err := ReadTrace(strings.NewReader(in))
		if err != nil {
			var te *TraceError
			if !errors.As(err, &te) {
				t.Fatalf("error %v is not a *TraceError", err)
			}
			return
		}
		// Whatever is accepted is runnable and survives a round trip.
		for _, p := range ps {
			if err := p.Validate(); err != nil {
				t.Fatalf("accepted an invalid program: %v", err)
			}
			for i := range p.Steps {
				p.ContextAt(i)
			}
		}
		var buf bytes.Buffer
		if err := WriteTrace(&buf, ps); err != nil {
			t.Fatalf("WriteTrace of accepted programs: %v", err)
		}
		again, err := ReadTrace(&buf)
		if err != nil {
			t.Fatalf("re-reading WriteTrace's output: %v\n%s", err, buf.String())
		}
		if !reflect.DeepEqual(again, ps) {
			t.Fatalf("round trip changed the programs:\n got %+v\nwant %+v", again, ps)
		}
	})
}

// The example in docs/bench.md parses and means what the text around it says.
func TestTraceDocExample(t *testing.T) {
	doc, err := os.ReadFile("../../../docs/bench.md")
	if err != nil {
		t.Skipf("docs/bench.md: %v", err)
	}
	_, section, ok := strings.Cut(string(doc), "## Trace format")
	_, block, ok2 := strings.Cut(section, "```json\n")
	block, _, ok3 := strings.Cut(block, "```")
	if !ok || !ok2 || !ok3 {
		t.Fatal(`docs/bench.md has no json example under "## Trace format"`)
	}
	ps, err := ReadTrace(strings.NewReader(block))
	if err != nil {
		t.Fatal(err)
	}
	if len(ps) != 2 {
		t.Fatalf("%d programs, want 2", len(ps))
	}
	if c := ps[0].ContextAt(2); c != 825 {
		t.Errorf("program 0 step 2 sends %d prompt tokens, the text says 825", c)
	}
	if j := ps[1].Steps[3]; j.Parent != 2 || !slices.Equal(j.Deps, []int{1, 2}) || ps[1].Steps[1].Parent != ps[1].Steps[2].Parent {
		t.Errorf("program 1 is not the DAG the text describes: %+v", ps[1].Steps)
	}
}
