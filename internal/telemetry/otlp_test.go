package telemetry

import (
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/aios-go/aios/internal/config"
	"github.com/aios-go/aios/internal/kernel"
)

// collector is an OTLP/HTTP trace receiver on loopback that keeps what it is sent.
type collector struct {
	mu       sync.Mutex
	requests []*coltracepb.ExportTraceServiceRequest
	headers  []http.Header
	paths    []string
}

func (c *collector) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	req := &coltracepb.ExportTraceServiceRequest{}
	if err == nil {
		err = proto.Unmarshal(body, req)
	}
	if err != nil || r.Header.Get("Content-Type") != "application/x-protobuf" {
		http.Error(w, "not an OTLP protobuf export", http.StatusBadRequest)
		return
	}
	c.mu.Lock()
	c.requests = append(c.requests, req)
	c.headers = append(c.headers, r.Header.Clone())
	c.paths = append(c.paths, r.URL.Path)
	c.mu.Unlock()
	out, _ := proto.Marshal(&coltracepb.ExportTraceServiceResponse{})
	w.Header().Set("Content-Type", "application/x-protobuf")
	_, _ = w.Write(out)
}

// The real exporter: a chat call's span reaches an OTLP/HTTP collector, in protobuf, at
// /v1/traces, with the configured headers and service name, once the tracer shuts down.
func TestOTLPExport(t *testing.T) {
	col := &collector{}
	srv := httptest.NewServer(col)
	defer srv.Close()
	k := startKernel(t)
	tr, err := New(config.Telemetry{
		OTLPEndpoint: srv.URL, OTLPHeaders: map[string]string{"x-api-key": "k-123"},
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

	col.mu.Lock()
	defer col.mu.Unlock()
	if len(col.requests) == 0 {
		t.Fatal("the collector received nothing")
	}
	for i, h := range col.headers {
		if h.Get("X-Api-Key") != "k-123" || col.paths[i] != "/v1/traces" {
			t.Errorf("export %d: path %s, x-api-key %q", i, col.paths[i], h.Get("X-Api-Key"))
		}
	}
	var chat, root *tracepb.Span
	for _, req := range col.requests {
		for _, rs := range req.ResourceSpans {
			if svc := strAttr(rs.Resource.GetAttributes(), "service.name"); svc != "aios-test" {
				t.Errorf("service.name %q", svc)
			}
			for _, ss := range rs.ScopeSpans {
				for _, s := range ss.Spans {
					switch s.Name {
					case "chat sim-test":
						chat = s
					case "invoke_agent alice":
						root = s
					}
				}
			}
		}
	}
	if chat == nil || root == nil {
		t.Fatalf("chat span %v, root span %v", chat, root)
	}
	if chat.Kind != tracepb.Span_SPAN_KIND_INTERNAL || string(chat.ParentSpanId) != string(root.SpanId) || string(chat.TraceId) != string(root.TraceId) {
		t.Errorf("chat span kind %v, parent %x (root %x)", chat.Kind, chat.ParentSpanId, root.SpanId)
	}
	for k, v := range map[string]string{"gen_ai.operation.name": "chat", "gen_ai.provider.name": "aios.sim",
		"gen_ai.request.model": "sim-test", "gen_ai.conversation.id": "s1", "gen_ai.agent.name": "alice", "aios.state": "done"} {
		if got := strAttr(chat.Attributes, k); got != v {
			t.Errorf("%s = %q, want %q", k, got, v)
		}
	}
	if got := intAttr(chat.Attributes, "gen_ai.usage.output_tokens"); got != int64(res.Usage.CompletionTokens) || got == 0 {
		t.Errorf("gen_ai.usage.output_tokens %d, want %d", got, res.Usage.CompletionTokens)
	}
	if got := intAttr(chat.Attributes, "aios.syscall.id"); got != int64(sc.ID) {
		t.Errorf("aios.syscall.id %d, want %d", got, sc.ID)
	}
	if tm := sc.Timings(); chat.StartTimeUnixNano != uint64(tm.Arrival.UnixNano()) || chat.EndTimeUnixNano != uint64(tm.End.UnixNano()) {
		t.Errorf("chat span %d–%d, syscall %v–%v", chat.StartTimeUnixNano, chat.EndTimeUnixNano, tm.Arrival, tm.End)
	}
}

func strAttr(kvs []*commonpb.KeyValue, key string) string {
	for _, kv := range kvs {
		if kv.Key == key {
			return kv.Value.GetStringValue()
		}
	}
	return ""
}

func intAttr(kvs []*commonpb.KeyValue, key string) int64 {
	for _, kv := range kvs {
		if kv.Key == key {
			return kv.Value.GetIntValue()
		}
	}
	return -1
}

func TestNewRefusesMalformedEndpoint(t *testing.T) {
	for _, e := range []string{"grpc://localhost:4317", "http://:4318", "http://localhost:port"} {
		if tr, err := New(config.Telemetry{OTLPEndpoint: e, SampleRatio: 1}); err == nil {
			_ = tr.Shutdown(t.Context())
			t.Errorf("%q accepted", e)
		}
	}
}
