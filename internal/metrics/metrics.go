// Package metrics exposes the kernel to Prometheus (GET /metrics; docs/observability.md
// lists every metric). Most of it is read from the kernel's own state when scraped —
// queues, cores, the working set, token accounting, tools, memory — so nothing is
// counted twice and no hot path carries instrumentation. Only what happens as events is
// observed as it happens: syscalls ending, with their waiting and turnaround times,
// through the kernel's one hook (kernel.Options.OnEnd).
//
// A Metrics has its own registry, not the process-wide default one, so two kernels in
// one process (tests, aios bench) do not share counters.
package metrics

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/aios-go/aios/api"
	"github.com/aios-go/aios/internal/kernel"
)

// durationBuckets, in seconds, span a tool call's wait of a millisecond to an LLM
// call's turnaround of minutes under load.
var durationBuckets = []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120, 300}

// Metrics is the kernel's Prometheus registry.
type Metrics struct {
	reg    *prometheus.Registry
	events *events
}

// New builds the registry with the syscall event metrics and the Go runtime's and the
// process's collectors. Pass OnEnd to the kernel (kernel.Options.OnEnd), then Watch the
// kernel once it is built.
func New() *Metrics {
	m := &Metrics{reg: prometheus.NewRegistry(), events: newEvents()}
	m.reg.MustRegister(m.events,
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// OnEnd observes a syscall that has ended; it is kernel.Options.OnEnd.
func (m *Metrics) OnEnd(sc *kernel.Syscall) { m.events.observe(sc) }

// Watch adds the collectors that read src's state at each scrape. It panics when called
// twice: the metrics would be collected twice.
func (m *Metrics) Watch(src Sources) {
	m.reg.MustRegister(newState(src))
}

// Handler serves the registry in Prometheus's text format (or OpenMetrics, when the
// scraper asks). A source that fails is reported in the log of the scrape and left out;
// the rest is still served.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError})
}

// events are the metrics observed as syscalls end.
type events struct {
	syscalls    *prometheus.CounterVec
	wait        *prometheus.HistogramVec
	turnaround  *prometheus.HistogramVec
	preemptions prometheus.Counter
}

func newEvents() *events {
	return &events{
		syscalls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "aios_syscalls_total",
			Help: "Syscalls that ended, by module, terminal state (done, failed, cancelled, timed_out) and error kind (none when done).",
		}, []string{"module", "state", "kind"}),
		wait: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "aios_syscall_wait_seconds",
			Help:    "Time ended syscalls spent queued in the kernel, summed over their slices, by module.",
			Buckets: durationBuckets,
		}, []string{"module"}),
		turnaround: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "aios_syscall_turnaround_seconds",
			Help:    "Time from a syscall's arrival to its end, by module.",
			Buckets: durationBuckets,
		}, []string{"module"}),
		preemptions: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "aios_llm_preemptions_total",
			Help: "Context switches of LLM calls: slices stopped so another call could run, counted as the calls end.",
		}),
	}
}

func (e *events) observe(sc *kernel.Syscall) {
	module := sc.Module.String()
	_, err := sc.Result()
	kind := string(api.KindOf(err))
	if kind == "" {
		kind = "none"
	}
	e.syscalls.WithLabelValues(module, string(sc.State()), kind).Inc()
	t := sc.Timings()
	e.wait.WithLabelValues(module).Observe(t.Waiting.Seconds())
	e.turnaround.WithLabelValues(module).Observe(t.Turnaround.Seconds())
	if n := sc.Preempted(); n > 0 {
		e.preemptions.Add(float64(n))
	}
}

func (e *events) Describe(ch chan<- *prometheus.Desc) {
	e.syscalls.Describe(ch)
	e.wait.Describe(ch)
	e.turnaround.Describe(ch)
	e.preemptions.Describe(ch)
}

func (e *events) Collect(ch chan<- prometheus.Metric) {
	e.syscalls.Collect(ch)
	e.wait.Collect(ch)
	e.turnaround.Collect(ch)
	e.preemptions.Collect(ch)
}
