// Package telemetry sends an OpenTelemetry trace span for every syscall the kernel ends,
// shaped by the gen_ai semantic conventions, to an OTLP/HTTP collector
// (docs/observability.md, "Traces").
//
// Spans are built from ended syscalls, after the fact: the kernel's end hook hands over
// a syscall whose arrival, first start and end are known, and each span is started and
// ended with those times. Nothing runs on the kernel's hot path besides that hook, and
// the batch span processor never blocks it: a full queue drops spans instead.
package telemetry

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"time"

	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.41.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/aios-go/aios/internal/config"
	"github.com/aios-go/aios/internal/kernel"
)

// scope names the instrumentation in every exported batch.
const scope = "github.com/aios-go/aios/internal/telemetry"

// exportTimeout bounds one export request, so a collector that stops answering costs the
// batch processor a few seconds, not a hung goroutine.
const exportTimeout = 10 * time.Second

// Tracer turns ended syscalls into spans. Build it with New, attach it to a kernel with
// Watch, and Shutdown it after the kernel has drained.
type Tracer struct {
	tp     *sdktrace.TracerProvider
	tracer trace.Tracer
	idle   time.Duration
	// closeIdle drops the exporter's idle connections at Shutdown, so they do not
	// outlive the tracer.
	closeIdle func()
	// backendOf names the backend of a model whose call ended before any core ran it.
	backendOf func(model string) string

	mu       sync.Mutex
	programs map[string]*program
	closed   bool
	unwatch  []func()

	stopSweep chan struct{}
	swept     chan struct{}
	// afterRecord, when set, runs after each syscall's spans are sent (tests wait on it).
	afterRecord func()
}

// New builds a tracer that exports to cfg's OTLP/HTTP endpoint through a batch span
// processor. It connects to nothing until the first batch is sent; a collector that is
// down costs dropped spans and a logged error from the exporter, never a failed syscall.
func New(cfg config.Telemetry) (*Tracer, error) {
	u, err := cfg.EndpointURL()
	if err != nil {
		return nil, err
	}
	// A transport of our own: the exporter's default one is shared by the process, and
	// its idle connections would outlive Shutdown.
	transport := http.DefaultTransport.(*http.Transport).Clone()
	opts := []otlptracehttp.Option{
		otlptracehttp.WithEndpoint(u.Host),
		otlptracehttp.WithURLPath(u.Path),
		otlptracehttp.WithHTTPClient(&http.Client{Transport: transport, Timeout: exportTimeout}),
	}
	if u.Scheme == "http" {
		opts = append(opts, otlptracehttp.WithInsecure())
	}
	// Without headers of its own the exporter reads OTEL_EXPORTER_OTLP_HEADERS.
	if len(cfg.OTLPHeaders) > 0 {
		opts = append(opts, otlptracehttp.WithHeaders(cfg.OTLPHeaders))
	}
	exp, err := otlptracehttp.New(context.Background(), opts...)
	if err != nil {
		return nil, fmt.Errorf("telemetry: the OTLP exporter for %s: %w", u, err)
	}
	t := newTracer(cfg, sdktrace.WithBatcher(exp))
	t.closeIdle = transport.CloseIdleConnections
	return t, nil
}

// newTracer builds a tracer over a provider with the given span processors (tests pass
// a synchronous in-memory exporter), and starts the sweep that sends idle programs' root
// spans.
func newTracer(cfg config.Telemetry, processors ...sdktrace.TracerProviderOption) *Tracer {
	name := cfg.ServiceName
	if name == "" {
		name = "aios"
	}
	opts := append([]sdktrace.TracerProviderOption{
		sdktrace.WithResource(resource.NewWithAttributes(semconv.SchemaURL, semconv.ServiceName(name))),
		// Sampled by trace ID, and a program's syscalls share its trace ID: a program is
		// traced whole or not at all. Not parent-based, since every span's parent is a
		// program root this package makes up.
		sdktrace.WithSampler(sdktrace.TraceIDRatioBased(cfg.SampleRatio)),
		sdktrace.WithIDGenerator(idGenerator{}),
	}, processors...)
	tp := sdktrace.NewTracerProvider(opts...)
	idle := cfg.ProgramIdle
	if idle <= 0 {
		idle = 5 * time.Minute
	}
	t := &Tracer{
		tp: tp, tracer: tp.Tracer(scope, trace.WithSchemaURL(semconv.SchemaURL)),
		idle: idle, closeIdle: func() {}, backendOf: func(string) string { return "" },
		programs:  map[string]*program{},
		stopSweep: make(chan struct{}), swept: make(chan struct{}),
	}
	go t.sweepLoop()
	return t
}

// Watch has t trace every syscall k ends from now on, until the returned function is
// called or t is shut down. Call it before k takes calls whose spans are wanted.
func (t *Tracer) Watch(k *kernel.Kernel) (stop func()) {
	t.mu.Lock()
	t.backendOf = k.ModelBackend
	t.mu.Unlock()
	unwatch := k.ObserveEnds(t.record)
	var once sync.Once
	stop = func() { once.Do(unwatch) }
	t.mu.Lock()
	t.unwatch = append(t.unwatch, stop)
	t.mu.Unlock()
	return stop
}

// Shutdown stops watching, sends the root spans of the programs still open, and flushes
// every span to the collector; ctx bounds the flush. Call it after the kernel has
// drained, or the spans of syscalls that end later are lost.
func (t *Tracer) Shutdown(ctx context.Context) error {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return nil
	}
	t.closed = true
	unwatch := t.unwatch
	t.mu.Unlock()
	for _, stop := range unwatch {
		stop()
	}
	close(t.stopSweep)
	<-t.swept
	t.endPrograms(func(*program) bool { return true })
	err := t.tp.Shutdown(ctx)
	t.closeIdle()
	if err != nil {
		return fmt.Errorf("telemetry: flushing spans: %w", err)
	}
	return nil
}

// sweepLoop sends the root spans of programs idle for t.idle, checking a few times per
// idle period.
func (t *Tracer) sweepLoop() {
	defer close(t.swept)
	tick := time.NewTicker(min(max(t.idle/4, time.Second), time.Minute))
	defer tick.Stop()
	for {
		select {
		case <-t.stopSweep:
			return
		case now := <-tick.C:
			t.sweep(now)
		}
	}
}
