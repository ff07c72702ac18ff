package telemetry

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/goleak"

	"github.com/aios-go/aios/api"
	"github.com/aios-go/aios/internal/boot"
	"github.com/aios-go/aios/internal/config"
	"github.com/aios-go/aios/internal/kernel"
	"github.com/aios-go/aios/internal/llm"
	"github.com/aios-go/aios/internal/sched"
	"github.com/aios-go/aios/internal/testleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m, testleak.Ignore()...) }

// startKernel boots a kernel on the simulator, with the built-in tools and storage.
func startKernel(t *testing.T) *kernel.Kernel {
	t.Helper()
	cfg := config.Defaults()
	cfg.DataDir = t.TempDir()
	cfg.LLMs.Models = []config.Model{{Name: "sim-test", Backend: "sim", Cores: 1, Speed: 200}}
	cfg.Memory.Disabled = true
	sys, err := boot.Build(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = sys.Kernel.Shutdown(ctx)
	})
	return sys.Kernel
}

// memTracer is a tracer whose spans land, synchronously, in an in-memory exporter.
func memTracer(t *testing.T, cfg config.Telemetry) (*Tracer, *tracetest.InMemoryExporter) {
	t.Helper()
	if cfg.SampleRatio == 0 {
		cfg.SampleRatio = 1
	}
	exp := tracetest.NewInMemoryExporter()
	tr := newTracer(cfg, sdktrace.WithSyncer(keepSpans{exp}))
	t.Cleanup(func() { _ = tr.Shutdown(context.Background()) })
	return tr, exp
}

// keepSpans keeps its spans through Shutdown, which the in-memory exporter would forget,
// so a test can read what the tracer's Shutdown sent.
type keepSpans struct{ *tracetest.InMemoryExporter }

func (keepSpans) Shutdown(context.Context) error { return nil }

func userReq(s string) llm.Request {
	return llm.Request{Messages: []api.Message{{Role: "user", Content: api.Content(s)}}, MaxTokens: 8}
}

func calc(agent, program, expr string) kernel.Call {
	return kernel.Call{Agent: agent, Program: program, Module: sched.Tool, Op: "call", Resource: "calculator",
		Args: json.RawMessage(fmt.Sprintf(`{"expression": %q}`, expr))}
}

// syscallSpan is the span of the syscall with that ID; exactly one must exist.
func syscallSpan(t *testing.T, exp *tracetest.InMemoryExporter, sc *kernel.Syscall) tracetest.SpanStub {
	t.Helper()
	var found []tracetest.SpanStub
	for _, s := range exp.GetSpans() {
		if v, ok := attrs(s)["aios.syscall.id"]; ok && v.AsInt64() == int64(sc.ID) {
			found = append(found, s)
		}
	}
	if len(found) != 1 {
		t.Fatalf("%d spans of syscall %d among %v", len(found), sc.ID, names(exp.GetSpans()))
	}
	return found[0]
}

func attrs(s tracetest.SpanStub) map[attribute.Key]attribute.Value {
	m := map[attribute.Key]attribute.Value{}
	for _, kv := range s.Attributes {
		m[kv.Key] = kv.Value
	}
	return m
}

// want checks that span s carries each attribute with the value given (as its Emit()
// string, so ints, floats and slices compare alike).
func want(t *testing.T, s tracetest.SpanStub, kv map[string]string) {
	t.Helper()
	got := attrs(s)
	for k, v := range kv {
		a, ok := got[attribute.Key(k)]
		if !ok {
			t.Errorf("%s: no attribute %s", s.Name, k)
			continue
		}
		if a.Emit() != v {
			t.Errorf("%s: %s = %s, want %s", s.Name, k, a.Emit(), v)
		}
	}
}

// An LLM call, a tool call and a failing storage call of one program become three
// syscall spans named by the gen_ai conventions, each with aios.queue and aios.run
// children, all in one trace under the program's root span, which is sent when the
// program goes idle.
func TestSyscallSpans(t *testing.T) {
	k := startKernel(t)
	tr, exp := memTracer(t, config.Telemetry{})
	tr.Watch(k)
	ctx := t.Context()

	res, llmCall, err := k.CallLLM(ctx, kernel.LLMCall{Agent: "alice", Program: "trip", Op: "chat", Request: userReq("plan a trip")})
	if err != nil {
		t.Fatal(err)
	}
	_, toolCall, err := k.Do(ctx, calc("alice", "trip", "6*7"))
	if err != nil {
		t.Fatal(err)
	}
	_, readCall, readErr := k.Do(ctx, kernel.Call{Agent: "alice", Program: "trip", Module: sched.Storage, Op: api.StorageRead,
		Args: &api.StorageParams{FilePath: "/no/such/file.txt"}})
	if readErr == nil {
		t.Fatal("reading a missing file succeeded")
	}
	// Another program's call goes in another trace.
	_, bobCall, err := k.Do(ctx, calc("bob", "", "1+1"))
	if err != nil {
		t.Fatal(err)
	}
	// The kernel calls its end hooks just after releasing the callers; its shutdown
	// waits for them.
	if err := k.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}

	chat, tool, read := syscallSpan(t, exp, llmCall), syscallSpan(t, exp, toolCall), syscallSpan(t, exp, readCall)
	for s, name := range map[*tracetest.SpanStub]string{&chat: "chat sim-test", &tool: "execute_tool calculator", &read: "storage.read"} {
		if s.Name != name {
			t.Errorf("span %q, want %q", s.Name, name)
		}
	}
	want(t, chat, map[string]string{
		"gen_ai.operation.name":          "chat",
		"gen_ai.provider.name":           "aios.sim",
		"gen_ai.request.model":           "sim-test",
		"gen_ai.response.model":          "sim-test",
		"gen_ai.request.max_tokens":      "8",
		"gen_ai.usage.input_tokens":      fmt.Sprint(res.Usage.PromptTokens),
		"gen_ai.usage.output_tokens":     fmt.Sprint(res.Usage.CompletionTokens),
		"gen_ai.response.finish_reasons": fmt.Sprintf("[%q]", res.FinishReason),
		"gen_ai.agent.name":              "alice",
		"gen_ai.conversation.id":         "trip",
		"aios.syscall.id":                fmt.Sprint(llmCall.ID),
		"aios.module":                    "llm",
		"aios.op":                        "chat",
		"aios.state":                     "done",
		"aios.slices":                    "1",
		"aios.backend":                   "sim",
	})
	if res.Usage.CompletionTokens == 0 || res.FinishReason == "" {
		t.Fatalf("the simulator reported no usage or finish reason: %+v", res)
	}
	if chat.SpanKind != trace.SpanKindInternal || tool.SpanKind != trace.SpanKindInternal {
		t.Errorf("kinds: chat %v (the simulator runs in process), tool %v", chat.SpanKind, tool.SpanKind)
	}
	tm := llmCall.Timings()
	if !chat.StartTime.Equal(tm.Arrival) || !chat.EndTime.Equal(tm.End) {
		t.Errorf("chat span %v–%v, syscall %v–%v", chat.StartTime, chat.EndTime, tm.Arrival, tm.End)
	}
	if q := attrs(chat)["aios.queue_ms"].AsFloat64(); q != float64(tm.Waiting)/float64(time.Millisecond) {
		t.Errorf("aios.queue_ms %v, waited %v", q, tm.Waiting)
	}
	want(t, tool, map[string]string{
		"gen_ai.operation.name":  "execute_tool",
		"gen_ai.tool.name":       "calculator",
		"gen_ai.agent.name":      "alice",
		"gen_ai.conversation.id": "trip",
		"aios.module":            "tool",
		"aios.state":             "done",
	})
	if tool.Status.Code == codes.Error || chat.Status.Code == codes.Error {
		t.Errorf("successful calls with an error status: %v %v", tool.Status, chat.Status)
	}

	// The failing call: error status with the kernel's message, its kind on the span.
	kind := string(api.KindOf(readErr))
	want(t, read, map[string]string{"aios.state": "failed", "aios.error.kind": kind, "error.type": kind, "aios.module": "storage"})
	if read.Status.Code != codes.Error || read.Status.Description != readErr.Error() {
		t.Errorf("failed call's status %+v, want Error with %q", read.Status, readErr)
	}

	// Grouping: the three syscalls of "trip" share a trace and a parent, bob's is apart.
	trip := chat.SpanContext.TraceID()
	for _, s := range []tracetest.SpanStub{tool, read} {
		if s.SpanContext.TraceID() != trip || s.Parent.SpanID() != chat.Parent.SpanID() {
			t.Errorf("%s is not in trip's trace under its root", s.Name)
		}
	}
	bobSpan := syscallSpan(t, exp, bobCall)
	if bobSpan.SpanContext.TraceID() == trip || bobSpan.Parent.SpanID() == chat.Parent.SpanID() {
		t.Fatal("another program's call went into trip's trace")
	}

	// Each syscall span has its two phases as children, back to back.
	for _, s := range []tracetest.SpanStub{chat, tool, read} {
		var queue, run *tracetest.SpanStub
		for _, c := range exp.GetSpans() {
			if c.Parent.SpanID() == s.SpanContext.SpanID() {
				switch c.Name {
				case "aios.queue":
					queue = &c
				case "aios.run":
					run = &c
				}
			}
		}
		if queue == nil || run == nil {
			t.Fatalf("%s: children queue %v run %v", s.Name, queue, run)
		}
		if !queue.StartTime.Equal(s.StartTime) || !queue.EndTime.Equal(run.StartTime) || !run.EndTime.Equal(s.EndTime) {
			t.Errorf("%s: queue %v–%v, run %v–%v, span %v–%v", s.Name, queue.StartTime, queue.EndTime, run.StartTime, run.EndTime, s.StartTime, s.EndTime)
		}
	}

	// No root span until the program goes idle (or the tracer shuts down).
	for _, s := range exp.GetSpans() {
		if s.Name == "invoke_agent alice" {
			t.Fatal("the root span was sent while the program was active")
		}
	}
	tr.sweep(time.Now().Add(time.Hour))
	roots := map[string]tracetest.SpanStub{}
	for _, s := range exp.GetSpans() {
		if s.Name == "invoke_agent alice" || s.Name == "invoke_agent bob" {
			roots[s.Name] = s
		}
	}
	root := roots["invoke_agent alice"]
	if root.SpanContext.TraceID() != trip || root.SpanContext.SpanID() != chat.Parent.SpanID() || root.Parent.IsValid() {
		t.Fatalf("root %+v is not the parent the syscall spans named", root.SpanContext)
	}
	want(t, root, map[string]string{
		"gen_ai.operation.name":      "invoke_agent",
		"gen_ai.agent.name":          "alice",
		"gen_ai.conversation.id":     "trip",
		"aios.program.syscalls":      "3",
		"aios.program.failed":        "1",
		"gen_ai.usage.output_tokens": fmt.Sprint(res.Usage.CompletionTokens),
	})
	if !root.StartTime.Equal(chat.StartTime) || !root.EndTime.Equal(read.EndTime) {
		t.Errorf("root %v–%v, want first arrival %v to last end %v", root.StartTime, root.EndTime, chat.StartTime, read.EndTime)
	}
	bob := roots["invoke_agent bob"]
	if bob.SpanContext.TraceID() != bobSpan.SpanContext.TraceID() || bob.SpanContext.SpanID() != bobSpan.Parent.SpanID() {
		t.Fatalf("bob's program (named after the agent) has no root of its own: %+v", bob.SpanContext)
	}
	want(t, bob, map[string]string{"gen_ai.conversation.id": "bob", "aios.program.syscalls": "1"})
}

// A program that comes back after going idle starts a new trace; while it is active its
// spans keep one. The sweep goes by the time of the program's last end, not the clock.
func TestIdleProgramStartsNewTrace(t *testing.T) {
	k := startKernel(t)
	tr, exp := memTracer(t, config.Telemetry{ProgramIdle: time.Minute})
	recorded := make(chan struct{}, 1)
	tr.afterRecord = func() { recorded <- struct{}{} }
	tr.Watch(k)
	do := func() (tracetest.SpanStub, kernel.Timings) {
		t.Helper()
		_, sc, err := k.Do(t.Context(), calc("a", "p", "2+2"))
		if err != nil {
			t.Fatal(err)
		}
		<-recorded
		return lastSyscallSpan(t, exp), sc.Timings()
	}
	first, _ := do()
	second, tm := do()
	if first.SpanContext.TraceID() != second.SpanContext.TraceID() {
		t.Fatal("two calls of one active program in two traces")
	}
	tr.sweep(tm.End.Add(59 * time.Second))
	if n := countNamed(exp, "invoke_agent a"); n != 0 {
		t.Fatalf("root sent before the program was idle a minute: %d", n)
	}
	tr.sweep(tm.End.Add(time.Minute))
	if n := countNamed(exp, "invoke_agent a"); n != 1 {
		t.Fatalf("%d root spans after the program went idle", n)
	}
	third, _ := do()
	if third.SpanContext.TraceID() == first.SpanContext.TraceID() {
		t.Fatal("the program's next call went into the trace whose root was already sent")
	}
	if err := tr.Shutdown(t.Context()); err != nil {
		t.Fatal(err)
	}
	if n := countNamed(exp, "invoke_agent a"); n != 2 {
		t.Fatalf("Shutdown sent %d roots in all, want the second trace's too", n)
	}
}

// Sampling is per program: each program's spans are all exported or none are.
func TestSamplingKeepsProgramsWhole(t *testing.T) {
	k := startKernel(t)
	tr, exp := memTracer(t, config.Telemetry{SampleRatio: 0.5})
	tr.Watch(k)
	const programs = 40
	for i := range programs {
		for range 2 {
			if _, _, err := k.Do(t.Context(), calc("a", fmt.Sprintf("p%d", i), "1+2")); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := k.Shutdown(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := tr.Shutdown(t.Context()); err != nil {
		t.Fatal(err)
	}
	perProgram := map[string]int{}
	for _, s := range exp.GetSpans() {
		if s.Name == "execute_tool calculator" {
			perProgram[attrs(s)["gen_ai.conversation.id"].AsString()]++
		}
	}
	roots := countNamed(exp, "invoke_agent a")
	for p, n := range perProgram {
		if n != 2 {
			t.Errorf("program %s: %d of its 2 calls traced", p, n)
		}
	}
	// 40 fair coins all landing alike is a 2^-39 chance.
	if len(perProgram) == 0 || len(perProgram) == programs || roots != len(perProgram) {
		t.Fatalf("%d of %d programs traced, %d roots", len(perProgram), programs, roots)
	}
}

func countNamed(exp *tracetest.InMemoryExporter, name string) int {
	n := 0
	for _, s := range exp.GetSpans() {
		if s.Name == name {
			n++
		}
	}
	return n
}

func lastSyscallSpan(t *testing.T, exp *tracetest.InMemoryExporter) tracetest.SpanStub {
	t.Helper()
	spans := exp.GetSpans()
	for i := len(spans) - 1; i >= 0; i-- {
		if spans[i].Name != "aios.queue" && spans[i].Name != "aios.run" {
			return spans[i]
		}
	}
	t.Fatal("no syscall span")
	return tracetest.SpanStub{}
}

func names(spans tracetest.SpanStubs) []string {
	var out []string
	for _, s := range spans {
		out = append(out, s.Name)
	}
	return out
}
