// Package otlptest is an OTLP/HTTP trace collector for tests: it decodes the protobuf
// exports a real exporter sends and keeps them.
package otlptest

import (
	"io"
	"net/http"
	"net/http/httptest"
	"sync"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"
)

// Collector receives OTLP/HTTP protobuf trace exports.
type Collector struct {
	*httptest.Server

	mu      sync.Mutex
	exports []Export
}

// Export is one request the collector accepted.
type Export struct {
	Path    string
	Header  http.Header
	Request *coltracepb.ExportTraceServiceRequest
}

// Start starts a collector on loopback; Close it when done.
func Start() *Collector {
	c := &Collector{}
	c.Server = httptest.NewServer(http.HandlerFunc(c.serve))
	return c
}

func (c *Collector) serve(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	req := &coltracepb.ExportTraceServiceRequest{}
	if err == nil {
		err = proto.Unmarshal(body, req)
	}
	if err != nil || r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/x-protobuf" {
		http.Error(w, "not an OTLP protobuf export", http.StatusBadRequest)
		return
	}
	c.mu.Lock()
	c.exports = append(c.exports, Export{Path: r.URL.Path, Header: r.Header.Clone(), Request: req})
	c.mu.Unlock()
	out, _ := proto.Marshal(&coltracepb.ExportTraceServiceResponse{})
	w.Header().Set("Content-Type", "application/x-protobuf")
	_, _ = w.Write(out)
}

// Exports returns the exports received so far.
func (c *Collector) Exports() []Export {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]Export(nil), c.exports...)
}

// Span is a received span with the service that sent it.
type Span struct {
	*tracepb.Span
	Service string
}

// Spans returns every span received, in order.
func (c *Collector) Spans() []Span {
	var out []Span
	for _, e := range c.Exports() {
		for _, rs := range e.Request.ResourceSpans {
			svc := Str(rs.Resource.GetAttributes(), "service.name")
			for _, ss := range rs.ScopeSpans {
				for _, s := range ss.Spans {
					out = append(out, Span{Span: s, Service: svc})
				}
			}
		}
	}
	return out
}

// Named returns the received spans with that name.
func (c *Collector) Named(name string) []Span {
	var out []Span
	for _, s := range c.Spans() {
		if s.Name == name {
			out = append(out, s)
		}
	}
	return out
}

// Str is the string attribute key of kvs, "" when absent.
func Str(kvs []*commonpb.KeyValue, key string) string {
	for _, kv := range kvs {
		if kv.Key == key {
			return kv.Value.GetStringValue()
		}
	}
	return ""
}

// Int is the integer attribute key of kvs, -1 when absent.
func Int(kvs []*commonpb.KeyValue, key string) int64 {
	for _, kv := range kvs {
		if kv.Key == key {
			return kv.Value.GetIntValue()
		}
	}
	return -1
}
