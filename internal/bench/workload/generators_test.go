package workload

import (
	"math"
	"slices"
	"testing"
	"time"
)

// many generates programs of a kind over several seeds, enough for stable means.
func many(t *testing.T, kind string) []Program {
	t.Helper()
	var all []Program
	for seed := range uint64(10) {
		ps, err := Generate(kind, 200, seed, Options{})
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, ps...)
	}
	return all
}

// stats accumulates one quantity and checks its range and mean.
type stats struct {
	name     string
	lo, hi   float64 // every sample must lie here
	mlo, mhi float64 // and the mean here
	n        int
	sum      float64
	min, max float64
}

func (s *stats) add(t *testing.T, p Program, i int, x float64) {
	t.Helper()
	if x < s.lo || x > s.hi {
		t.Errorf("%s program %d step %d: %s = %v, want %v..%v", p.Kind, p.ID, i, s.name, x, s.lo, s.hi)
	}
	if s.n == 0 || x < s.min {
		s.min = x
	}
	if s.n == 0 || x > s.max {
		s.max = x
	}
	s.n++
	s.sum += x
}

func (s *stats) check(t *testing.T) {
	t.Helper()
	if s.n == 0 {
		t.Errorf("%s: no samples", s.name)
		return
	}
	m := s.sum / float64(s.n)
	t.Logf("%-22s n=%-6d mean=%-10.4g min=%-8.4g max=%.4g", s.name, s.n, m, s.min, s.max)
	if m < s.mlo || m > s.mhi {
		t.Errorf("%s: mean %v, want %v..%v", s.name, m, s.mlo, s.mhi)
	}
}

func secs(d time.Duration) float64 { return d.Seconds() }

// checkSequential checks the shape of react, swe and chat: LLM and tool steps alternate,
// starting and ending with an LLM call, each step extending and waiting for the previous.
func checkSequential(t *testing.T, p Program) {
	t.Helper()
	if len(p.Steps)%2 != 1 {
		t.Errorf("%s program %d: %d steps, want an odd number (llm, tool, ..., llm)", p.Kind, p.ID, len(p.Steps))
	}
	for i, s := range p.Steps {
		want := LLM
		if i%2 == 1 {
			want = Tool
		}
		if s.Kind != want {
			t.Errorf("%s program %d step %d: kind %v, want %v", p.Kind, p.ID, i, s.Kind, want)
		}
		if s.Parent != i-1 || !slices.Equal(s.Deps, after(i-1)) {
			t.Errorf("%s program %d step %d: parent %d deps %v, want %d [%d]", p.Kind, p.ID, i, s.Parent, s.Deps, i-1, i-1)
		}
	}
}

func llmCalls(p Program) int {
	n := 0
	for _, s := range p.Steps {
		if s.Kind == LLM {
			n++
		}
	}
	return n
}

func TestReact(t *testing.T) {
	calls := stats{name: "llm calls", lo: reactCallsMin, hi: reactCallsMax, mlo: 9.7, mhi: 10.3}
	first := stats{name: "first context", lo: 650, hi: 750, mlo: 690, mhi: 710}
	result := stats{name: "tool result tokens", lo: reactResultMin, hi: reactResultMax, mlo: 95, mhi: 105}
	out := stats{name: "output tokens", lo: reactOutMin, hi: reactOutMax, mlo: 33, mhi: 37}
	tool := stats{name: "tool seconds", lo: 0.05, hi: 0.5, mlo: 0.15, mhi: 0.22}
	for _, p := range many(t, "react") {
		checkSequential(t, p)
		calls.add(t, p, -1, float64(llmCalls(p)))
		first.add(t, p, 0, float64(p.ContextAt(0)))
		for i, s := range p.Steps {
			switch {
			case s.Kind == Tool:
				tool.add(t, p, i, secs(s.ToolTime))
				if !slices.ContainsFunc(reactTools, func(ts toolSpec) bool { return ts.name == s.Tool }) {
					t.Errorf("react program %d step %d: tool %q", p.ID, i, s.Tool)
				}
			case i > 0:
				result.add(t, p, i, float64(s.Input))
			}
			if s.Kind == LLM {
				out.add(t, p, i, float64(s.Output))
			}
		}
	}
	for _, s := range []*stats{&calls, &first, &result, &out, &tool} {
		s.check(t)
	}
}

func TestSWE(t *testing.T) {
	calls := stats{name: "llm calls", lo: sweCallsMin, hi: sweCallsMax, mlo: 38, mhi: 42}
	final := stats{name: "final context", lo: sweFinalMin, hi: sweFinalMax, mlo: 23000, mhi: 25000}
	out := stats{name: "output tokens", lo: sweOutMin, hi: sweOutMax, mlo: 145, mhi: 155}
	obs := stats{name: "observation tokens", lo: sweObsMin, hi: sweFinalMax, mlo: 200, mhi: 800}
	tool := stats{name: "tool seconds", lo: 0.5, hi: 20, mlo: 1.5, mhi: 5}
	perTool := map[string]*stats{}
	for _, ts := range sweTools {
		perTool[ts.name] = &stats{name: ts.name + " seconds", lo: 0.5, hi: 20, mlo: 0, mhi: 20}
	}
	for _, p := range many(t, "swe") {
		checkSequential(t, p)
		calls.add(t, p, -1, float64(llmCalls(p)))
		last := len(p.Steps) - 1
		final.add(t, p, last, float64(p.ContextAt(last)))
		for i, s := range p.Steps {
			switch {
			case s.Kind == Tool:
				tool.add(t, p, i, secs(s.ToolTime))
				ps, ok := perTool[s.Tool]
				if !ok {
					t.Fatalf("swe program %d step %d: unknown tool %q", p.ID, i, s.Tool)
				}
				ps.add(t, p, i, secs(s.ToolTime))
			case i == 0:
				if s.Input < sweTaskMin || s.Input > sweTaskMax {
					t.Errorf("swe program %d: task of %d tokens", p.ID, s.Input)
				}
			default:
				obs.add(t, p, i, float64(s.Input))
			}
			if s.Kind == LLM {
				out.add(t, p, i, float64(s.Output))
			}
		}
	}
	for _, s := range []*stats{&calls, &final, &out, &obs, &tool} {
		s.check(t)
	}
	// Tools differ as they do in SWE-agent runs: opening a file is quick, tests are slow.
	for _, ts := range sweTools {
		perTool[ts.name].check(t)
	}
	mean := func(name string) float64 { return perTool[name].sum / float64(perTool[name].n) }
	if mean("open") >= mean("run_tests") {
		t.Errorf("mean open %.2fs >= mean run_tests %.2fs; run_tests should be the slow tool", mean("open"), mean("run_tests"))
	}
	if tool.max < 15 {
		t.Errorf("longest tool wait %.1fs: the tail should reach towards 20 s", tool.max)
	}
}

func TestChat(t *testing.T) {
	turns := stats{name: "turns", lo: chatTurnsMin, hi: chatTurnsMax, mlo: 6.8, mhi: 7.2}
	in := stats{name: "input tokens", lo: chatTokMin, hi: chatTokMax, mlo: 256 * 0.93, mhi: 256 * 1.07}
	out := stats{name: "output tokens", lo: chatTokMin, hi: chatTokMax, mlo: 277 * 0.93, mhi: 277 * 1.07}
	think := stats{name: "think seconds", lo: 1, hi: 20, mlo: 2.8, mhi: 4.5}
	for _, p := range many(t, "chat") {
		checkSequential(t, p)
		turns.add(t, p, -1, float64(llmCalls(p)))
		for i, s := range p.Steps {
			if s.Kind == Tool {
				think.add(t, p, i, secs(s.ToolTime))
				if s.Tool != "user" {
					t.Errorf("chat program %d step %d: tool %q, want user", p.ID, i, s.Tool)
				}
				continue
			}
			in.add(t, p, i, float64(s.Input))
			out.add(t, p, i, float64(s.Output))
		}
	}
	for _, s := range []*stats{&turns, &in, &out, &think} {
		s.check(t)
	}
}

func TestLATS(t *testing.T) {
	levels := stats{name: "levels", lo: latsLevelsMin, hi: latsLevelsMax, mlo: 4.8, mhi: 5.2}
	width := stats{name: "candidates per level", lo: latsKMin, hi: latsKMax, mlo: 3.8, mhi: 4.2}
	out := stats{name: "output tokens", lo: latsOutMin, hi: latsOutMax, mlo: 95, mhi: 105}
	tool := stats{name: "tool seconds", lo: 0.05, hi: 2, mlo: 0.25, mhi: 0.45}
	steps := stats{name: "steps", lo: 21, hi: 43, mlo: 28, mhi: 34}
	for _, p := range many(t, "lats") {
		steps.add(t, p, -1, float64(len(p.Steps)))
		if s := p.Steps[0]; s.Kind != LLM || s.Parent != -1 || s.Deps != nil {
			t.Fatalf("lats program %d: root %+v, want an llm step from the start", p.ID, s)
		}
		// Walk the levels: k candidates off the current node, a join, an evaluation.
		node, i, nlev := 0, 1, 0
		for i < len(p.Steps) {
			nlev++
			var sib []int
			for ; i < len(p.Steps) && p.Steps[i].Kind == LLM; i++ {
				s := p.Steps[i]
				if s.Parent != node || !slices.Equal(s.Deps, []int{node}) {
					t.Fatalf("lats program %d step %d: candidate with parent %d deps %v, want %d [%d]", p.ID, i, s.Parent, s.Deps, node, node)
				}
				sib = append(sib, i)
			}
			width.add(t, p, i, float64(len(sib)))
			if i >= len(p.Steps) {
				t.Fatalf("lats program %d: level %d has no join", p.ID, nlev)
			}
			join := p.Steps[i]
			if join.Kind != Tool || join.Tool != "env" || !slices.Equal(join.Deps, sib) || !slices.Contains(sib, join.Parent) {
				t.Fatalf("lats program %d step %d: join %+v, want a tool step with deps %v and one of them as parent", p.ID, i, join, sib)
			}
			tool.add(t, p, i, secs(join.ToolTime))
			// Siblings share their parent's whole context: each one's prompt is the
			// node's end state plus only its own few tokens.
			for _, j := range sib {
				if got, want := p.ContextAt(j), p.ContextAt(node)+p.Steps[node].Output+p.Steps[j].Input; got != want {
					t.Errorf("lats program %d step %d: context %d, want %d", p.ID, j, got, want)
				}
			}
			i++
			if i >= len(p.Steps) {
				t.Fatalf("lats program %d: ends with a tool step", p.ID)
			}
			ev := p.Steps[i]
			if ev.Kind != LLM || ev.Parent != i-1 || !slices.Equal(ev.Deps, []int{i - 1}) {
				t.Fatalf("lats program %d step %d: evaluation %+v, want an llm step after the join", p.ID, i, ev)
			}
			node = i
			i++
		}
		levels.add(t, p, -1, float64(nlev))
		for i, s := range p.Steps {
			if s.Kind == LLM {
				out.add(t, p, i, float64(s.Output))
			}
		}
	}
	for _, s := range []*stats{&levels, &width, &out, &tool, &steps} {
		s.check(t)
	}
}

// Every generated program is valid, ends with an LLM call, has its kind's system prompt,
// and its prompts extend their parents' contexts exactly, so prefix caching sees reuse.
func TestPrefixSharing(t *testing.T) {
	system := map[string]int{"react": reactSystem, "swe": sweSystem, "chat": chatSystem, "lats": latsSystem}
	ps, err := Generate("mixed", 400, 7, Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range ps {
		if err := p.Validate(); err != nil {
			t.Fatal(err)
		}
		if p.System != system[p.Kind] {
			t.Errorf("%s program %d: system %d, want %d shared by every %s program", p.Kind, p.ID, p.System, system[p.Kind], p.Kind)
		}
		if last := p.Steps[len(p.Steps)-1]; last.Kind != LLM {
			t.Errorf("%s program %d ends with a %v step", p.Kind, p.ID, last.Kind)
		}
		firstLLM := true
		for i, s := range p.Steps {
			ctx := p.ContextAt(i)
			if s.Parent < 0 {
				if ctx != p.System+s.Input {
					t.Errorf("%s program %d step %d: context %d, want system %d + input %d", p.Kind, p.ID, i, ctx, p.System, s.Input)
				}
			} else {
				par := p.Steps[s.Parent]
				if want := p.ContextAt(s.Parent) + par.Output + s.Input; ctx != want {
					t.Errorf("%s program %d step %d: context %d, want parent's %d + its output %d + input %d", p.Kind, p.ID, i, ctx, p.ContextAt(s.Parent), par.Output, s.Input)
				}
				if s.Kind == LLM && ctx <= p.ContextAt(s.Parent) {
					t.Errorf("%s program %d step %d: context %d does not grow past its parent's %d", p.Kind, p.ID, i, ctx, p.ContextAt(s.Parent))
				}
			}
			if s.Kind == LLM && firstLLM {
				firstLLM = false
				if ctx != p.System+s.Input {
					t.Errorf("%s program %d: first call's context %d, want system + input = %d", p.Kind, p.ID, ctx, p.System+s.Input)
				}
			}
		}
	}
}

func TestDeterminism(t *testing.T) {
	for _, kind := range Kinds() {
		t.Run(kind, func(t *testing.T) {
			a, _ := Generate(kind, 50, 42, Options{})
			b, _ := Generate(kind, 50, 42, Options{})
			c, _ := Generate(kind, 50, 43, Options{})
			if !equalPrograms(a, b) {
				t.Error("same seed, different programs")
			}
			if equalPrograms(a, c) {
				t.Error("different seeds, same programs")
			}
			// Program i does not depend on how many programs were asked for, so a longer
			// run extends a shorter one instead of reshuffling it.
			short, _ := Generate(kind, 10, 42, Options{})
			if !equalPrograms(short, a[:10]) {
				t.Error("the first 10 of 50 programs differ from 10 programs")
			}
		})
	}
}

func equalPrograms(a, b []Program) bool {
	return slices.EqualFunc(a, b, func(x, y Program) bool {
		return x.ID == y.ID && x.Agent == y.Agent && x.Kind == y.Kind && x.System == y.System &&
			x.Arrival == y.Arrival && slices.EqualFunc(x.Steps, y.Steps, func(s, u Step) bool {
			return s.Kind == u.Kind && s.Input == u.Input && s.Output == u.Output && s.Tool == u.Tool &&
				s.ToolTime == u.ToolTime && s.Parent == u.Parent && slices.Equal(s.Deps, u.Deps)
		})
	})
}

func TestMixed(t *testing.T) {
	ps, err := Generate("mixed", 403, 1, Options{})
	if err != nil {
		t.Fatal(err)
	}
	count := map[string]int{}
	kindsOf := map[string]map[string]bool{} // agent -> kinds it issued
	for i, p := range ps {
		count[p.Kind]++
		if kindsOf[p.Agent] == nil {
			kindsOf[p.Agent] = map[string]bool{}
		}
		kindsOf[p.Agent][p.Kind] = true
		// Every prefix of the run is an equal mix up to one program per kind.
		if i%4 == 3 {
			for _, g := range generators {
				if count[g.name] != (i+1)/4 {
					t.Fatalf("after %d programs: %d of %s, want %d", i+1, count[g.name], g.name, (i+1)/4)
				}
			}
		}
	}
	for _, g := range generators {
		if c := count[g.name]; c < 100 || c > 101 {
			t.Errorf("%d %s programs of 403, want 100 or 101", c, g.name)
		}
	}
	// A fixed rotation over 8 agents would give each agent a single kind, and per-agent
	// fairness would really compare kinds.
	for ag, ks := range kindsOf {
		if len(ks) < 4 {
			t.Errorf("%s issued only %v", ag, ks)
		}
	}
}

func TestAgents(t *testing.T) {
	countOf := func(ps []Program) map[string]int {
		c := map[string]int{}
		for _, p := range ps {
			c[p.Agent]++
		}
		return c
	}

	ps, _ := Generate("react", 24, 1, Options{})
	for i, p := range ps {
		if want := "agent-" + string(rune('0'+i%8)); p.Agent != want {
			t.Errorf("program %d: agent %s, want %s (round-robin over the default 8)", i, p.Agent, want)
		}
	}

	ps, _ = Generate("react", 30, 1, Options{Agents: 3})
	if c := countOf(ps); len(c) != 3 || c["agent-0"] != 10 || c["agent-1"] != 10 || c["agent-2"] != 10 {
		t.Errorf("3 agents over 30 programs: %v", c)
	}

	// --heavy 4 with 8 agents: runs of 11 programs, 4 of them agent-0's.
	ps, _ = Generate("mixed", 1100, 1, Options{Heavy: 4})
	c := countOf(ps)
	if c["agent-0"] != 400 {
		t.Errorf("heavy agent-0 has %d programs, want 400", c["agent-0"])
	}
	for a := 1; a < 8; a++ {
		if n := c["agent-"+string(rune('0'+a))]; n != 100 {
			t.Errorf("agent-%d has %d programs, want 100", a, n)
		}
	}
	// Spread out, not bunched: agent-0 never waits more than 3 programs for its next.
	lastHeavy := -1
	for i, p := range ps {
		if p.Agent == "agent-0" {
			if i-lastHeavy > 4 {
				t.Errorf("agent-0's programs %d and %d are %d apart", lastHeavy, i, i-lastHeavy)
			}
			lastHeavy = i
		}
	}

	// Heavy up to 1 is plain round-robin.
	a, _ := Generate("react", 16, 1, Options{Heavy: 1})
	b, _ := Generate("react", 16, 1, Options{})
	if !equalPrograms(a, b) {
		t.Error("Heavy 1 differs from the default")
	}
}

func TestScale(t *testing.T) {
	one, _ := Generate("mixed", 40, 3, Options{})
	two, _ := Generate("mixed", 40, 3, Options{Scale: 2})
	for i := range one {
		for j, s := range one[i].Steps {
			u := two[i].Steps[j]
			if s.Input != u.Input || s.Output != u.Output || s.Tool != u.Tool {
				t.Fatalf("program %d step %d: Scale changed more than tool times: %+v vs %+v", i, j, s, u)
			}
			// Rounding to the microsecond after scaling can move the result by 1 µs.
			if d := u.ToolTime - 2*s.ToolTime; d < -time.Microsecond || d > time.Microsecond {
				t.Errorf("program %d step %d: scaled %v, want 2 × %v", i, j, u.ToolTime, s.ToolTime)
			}
		}
	}
}

func TestGenerateErrors(t *testing.T) {
	for _, tc := range []struct {
		kind string
		n    int
		opt  Options
	}{
		{"nope", 1, Options{}},
		{"trace", 1, Options{}},
		{"", 1, Options{}},
		{"react", -1, Options{}},
		{"react", 1, Options{Agents: -2}},
		{"react", 1, Options{Agents: 1 << 40}},
		{"react", 1, Options{Heavy: -1}},
		{"react", 1, Options{Heavy: math.NaN()}},
		{"react", 1, Options{Heavy: math.Inf(1)}},
		{"react", 1, Options{Scale: -1}},
		{"react", 1, Options{Scale: math.NaN()}},
	} {
		if _, err := Generate(tc.kind, tc.n, 1, tc.opt); err == nil {
			t.Errorf("Generate(%q, %d, %+v) succeeded, want an error", tc.kind, tc.n, tc.opt)
		} else {
			t.Logf("Generate(%q, %d, %+v): %v", tc.kind, tc.n, tc.opt, err)
		}
	}
	// An absurd scale saturates instead of overflowing into negative durations.
	ps, err := Generate("swe", 1, 1, Options{Scale: 1e300})
	if err != nil {
		t.Fatal(err)
	}
	if ps[0].Validate() != nil || ps[0].Steps[1].ToolTime != maxTime {
		t.Errorf("Scale 1e300: tool time %v, valid: %v; want %v", ps[0].Steps[1].ToolTime, ps[0].Validate(), maxTime)
	}
	if ps, err := Generate("react", 0, 1, Options{}); err != nil || len(ps) != 0 {
		t.Errorf("Generate 0 = %v, %v; want no programs and no error", ps, err)
	}
}

func TestPoisson(t *testing.T) {
	const rate, n = 30.0, 10000 // 30 programs/min: mean gap 2 s
	a := Poisson(rate, n, 9)
	if len(a) != n {
		t.Fatalf("%d arrivals, want %d", len(a), n)
	}
	if a[0] <= 0 {
		t.Errorf("first arrival %v, want one gap after 0", a[0])
	}
	for i := 1; i < n; i++ {
		if a[i] < a[i-1] {
			t.Fatalf("arrival %d at %v before arrival %d at %v", i, a[i], i-1, a[i-1])
		}
	}
	gap := a[n-1].Seconds() / n
	if want := 60 / rate; math.Abs(gap-want) > 0.05*want {
		t.Errorf("mean gap %.4fs, want %.4fs ± 5%%", gap, want)
	}
	// Exponential gaps: the standard deviation equals the mean.
	var sq float64
	prev := time.Duration(0)
	for _, x := range a {
		d := (x - prev).Seconds() - gap
		sq += d * d
		prev = x
	}
	if sd := math.Sqrt(sq / n); math.Abs(sd-gap) > 0.1*gap {
		t.Errorf("gap standard deviation %.3fs, want about the mean %.3fs", sd, gap)
	}
	if !slices.Equal(a, Poisson(rate, n, 9)) {
		t.Error("same seed, different arrivals")
	}
	if slices.Equal(a, Poisson(rate, n, 10)) {
		t.Error("different seeds, same arrivals")
	}
	if got := Poisson(math.Inf(1), 3, 1); !slices.Equal(got, []time.Duration{0, 0, 0}) {
		t.Errorf("infinite rate: %v, want all at 0", got)
	}
	if got := Poisson(rate, 0, 1); got != nil {
		t.Errorf("n=0: %v", got)
	}
	for _, bad := range []float64{0, -1, math.NaN()} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("Poisson(%v) did not panic", bad)
				}
			}()
			Poisson(bad, 1, 1)
		}()
	}
}

// A burst weights agent-0 inside its window only: with 8 agents, heavy 3 over programs
// 400-599 of 800, agent-0 has 3 of every 10 there (60) and 1 of every 8 elsewhere
// (600 / 8 = 75), 135 in all.
func TestBurstAssignsHeavyInsideTheWindow(t *testing.T) {
	ps, err := Generate("react", 800, 1, Options{Heavy: 3, Burst: &Burst{From: 0.5, To: 0.75}})
	if err != nil {
		t.Fatal(err)
	}
	var in, out int
	for i, p := range ps {
		if p.Agent != "agent-0" {
			continue
		}
		if i >= 400 && i < 600 {
			in++
		} else {
			out++
		}
	}
	if in != 60 || out != 75 {
		t.Fatalf("agent-0: %d programs in the burst, %d outside; want 60 and 75", in, out)
	}
	if _, err := Generate("react", 8, 1, Options{Heavy: 3, Burst: &Burst{From: 0.5, To: 0.5}}); err == nil {
		t.Fatal("an empty burst window was accepted")
	}
}

// BurstArrivals shortens the gaps before the window's programs by the factor and moves
// later arrivals up by what that saved.
func TestBurstArrivals(t *testing.T) {
	s := time.Second
	arr := []time.Duration{2 * s, 4 * s, 6 * s, 8 * s, 10 * s, 12 * s, 14 * s, 16 * s}
	// Window 0.25-0.75: programs 2-5, their gaps of 2 s become 1 s at factor 2.
	got := BurstArrivals(arr, Burst{From: 0.25, To: 0.75}, 2)
	want := []time.Duration{2 * s, 4 * s, 5 * s, 6 * s, 7 * s, 8 * s, 10 * s, 12 * s}
	if !slices.Equal(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	if arr[7] != 16*s {
		t.Fatal("BurstArrivals changed its input")
	}
}
