package telemetry

import (
	"io"
	"log/slog"
	"testing"

	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"

	"github.com/aios-go/aios/internal/config"
	"github.com/aios-go/aios/internal/kernel"
	"github.com/aios-go/aios/internal/telemetry/otlptest"
)

// The real exporter: a chat call's span reaches an OTLP/HTTP collector, in protobuf, at
// /v1/traces, with the configured headers and service name, once the tracer shuts down.
func TestOTLPExport(t *testing.T) {
	col := otlptest.Start()
	defer col.Close()
	k := startKernel(t)
	tr, err := New(config.Telemetry{
		OTLPEndpoint: col.URL, OTLPHeaders: map[string]string{"x-api-key": "k-123"},
		ServiceName: "aios-test", SampleRatio: 1,
	})
	if err != nil {
		t.Fatal(err)
	}
	tr.Watch(k)
	res, sc, err := k.CallLLM(t.Context(), kernel.LLMCall{Agent: "alice", Program: "s1", Request: userReq("hi")})
	if err != nil {
		t.Fatal(err)
	}
	if err := k.Shutdown(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := tr.Shutdown(t.Context()); err != nil {
		t.Fatal(err)
	}

	exports := col.Exports()
	if len(exports) == 0 {
		t.Fatal("the collector received nothing")
	}
	for i, e := range exports {
		if e.Header.Get("X-Api-Key") != "k-123" || e.Path != "/v1/traces" {
			t.Errorf("export %d: path %s, x-api-key %q", i, e.Path, e.Header.Get("X-Api-Key"))
		}
	}
	chats, roots := col.Named("chat sim-test"), col.Named("invoke_agent alice")
	if len(chats) != 1 || len(roots) != 1 {
		t.Fatalf("%d chat spans, %d root spans", len(chats), len(roots))
	}
	chat, root := chats[0], roots[0]
	if chat.Service != "aios-test" {
		t.Errorf("service.name %q", chat.Service)
	}
	if chat.Kind != tracepb.Span_SPAN_KIND_INTERNAL || string(chat.ParentSpanId) != string(root.SpanId) || string(chat.TraceId) != string(root.TraceId) {
		t.Errorf("chat span kind %v, parent %x (root %x)", chat.Kind, chat.ParentSpanId, root.SpanId)
	}
	for k, v := range map[string]string{"gen_ai.operation.name": "chat", "gen_ai.provider.name": "aios.sim",
		"gen_ai.request.model": "sim-test", "gen_ai.conversation.id": "s1", "gen_ai.agent.name": "alice", "aios.state": "done"} {
		if got := otlptest.Str(chat.Attributes, k); got != v {
			t.Errorf("%s = %q, want %q", k, got, v)
		}
	}
	if got := otlptest.Int(chat.Attributes, "gen_ai.usage.output_tokens"); got != int64(res.Usage.CompletionTokens) || got == 0 {
		t.Errorf("gen_ai.usage.output_tokens %d, want %d", got, res.Usage.CompletionTokens)
	}
	if got := otlptest.Int(chat.Attributes, "aios.syscall.id"); got != int64(sc.ID) {
		t.Errorf("aios.syscall.id %d, want %d", got, sc.ID)
	}
	if tm := sc.Timings(); chat.StartTimeUnixNano != uint64(tm.Arrival.UnixNano()) || chat.EndTimeUnixNano != uint64(tm.End.UnixNano()) {
		t.Errorf("chat span %d–%d, syscall %v–%v", chat.StartTimeUnixNano, chat.EndTimeUnixNano, tm.Arrival, tm.End)
	}
}

func TestNewRefusesMalformedEndpoint(t *testing.T) {
	for _, e := range []string{"grpc://localhost:4317", "http://:4318", "http://localhost:port"} {
		if tr, err := New(config.Telemetry{OTLPEndpoint: e, SampleRatio: 1}); err == nil {
			_ = tr.Shutdown(t.Context())
			t.Errorf("%q accepted", e)
		}
	}
}

// Start does nothing without an endpoint: no tracer, no goroutine, nothing to stop.
func TestStartOffByDefault(t *testing.T) {
	stop, err := Start(config.Defaults().Telemetry, nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	stop()
}
