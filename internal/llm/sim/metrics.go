package sim

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics exposes vLLM V1's Prometheus metrics under vLLM's names, labels and buckets
// (vllm/v1/metrics/loggers.py), so dashboards and admission controllers written for vLLM
// read the simulator unchanged. vLLM declares counters without the suffix and the Python
// client exposes them with _total; these names are the exposed ones. Times are virtual:
// what the simulated GPU would have taken, whatever the speed factor.
type metrics struct {
	reg       *prometheus.Registry
	ttft      prometheus.Observer
	itl       prometheus.Observer
	e2e       prometheus.Observer
	queue     prometheus.Observer
	successes *prometheus.CounterVec
}

var (
	ttftBuckets = []float64{0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5,
		0.75, 1.0, 2.5, 5.0, 7.5, 10.0, 20.0, 40.0, 80.0, 160.0, 640.0, 2560.0}
	itlBuckets = []float64{0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75,
		1.0, 2.5, 5.0, 7.5, 10.0, 20.0, 40.0, 80.0}
	requestBuckets = []float64{0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0, 15.0, 20.0,
		30.0, 40.0, 50.0, 60.0, 120.0, 240.0, 480.0, 960.0, 1920.0, 7680.0}
)

// newMetrics registers the collectors; stats is read at scrape time for the gauges and
// counters the engine keeps itself.
func newMetrics(model string, p Profile, mode Mode, stats func() Stats) *metrics {
	labels := prometheus.Labels{"model_name": model, "engine": "0"}
	reg := prometheus.NewRegistry()
	reg.MustRegister(cacheConfigInfo(p, mode, stats().OffloadCapacityBlocks))
	gauge := func(name, help string, f func(Stats) float64) {
		reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help, ConstLabels: labels},
			func() float64 { return f(stats()) }))
	}
	counter := func(name, help string, f func(Stats) float64) {
		reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help, ConstLabels: labels},
			func() float64 { return f(stats()) }))
	}
	histogram := func(name, help string, buckets []float64) prometheus.Observer {
		h := prometheus.NewHistogram(prometheus.HistogramOpts{Name: name, Help: help, Buckets: buckets, ConstLabels: labels})
		reg.MustRegister(h)
		return h
	}

	gauge("vllm:num_requests_running", "Number of requests in model execution batches.",
		func(s Stats) float64 { return float64(s.Running) })
	gauge("vllm:num_requests_waiting", "Number of requests waiting to be processed.",
		func(s Stats) float64 { return float64(s.Waiting) })
	gauge("vllm:kv_cache_usage_perc", "KV-cache usage. 1 means 100 percent usage.",
		func(s Stats) float64 { return s.KVUsage })
	counter("vllm:prefix_cache_queries_total", "Prefix cache queries, in terms of number of queried tokens.",
		func(s Stats) float64 { return float64(s.PrefixQueries) })
	counter("vllm:prefix_cache_hits_total", "Prefix cache hits, in terms of number of cached tokens.",
		func(s Stats) float64 { return float64(s.PrefixHits) })
	counter("vllm:external_prefix_cache_queries_total", "Tokens looked up in the KV connector (here the CPU offload tier) past the GPU prefix hit.",
		func(s Stats) float64 { return float64(s.ExternalQueries) })
	counter("vllm:external_prefix_cache_hits_total", "Of those, tokens found there and loaded instead of computed.",
		func(s Stats) float64 { return float64(s.ExternalHits) })
	// The CPU tier's own gauges and counters have no settled vLLM names; these are the
	// simulator's.
	if stats().OffloadCapacityBlocks > 0 {
		gauge("sim:kv_offload_cpu_blocks", "KV blocks held in the CPU offload tier.",
			func(s Stats) float64 { return float64(s.OffloadBlocks) })
		gauge("sim:kv_offload_cpu_capacity_blocks", "KV blocks the CPU offload tier can hold.",
			func(s Stats) float64 { return float64(s.OffloadCapacityBlocks) })
		counter("sim:kv_offload_stored_blocks_total", "KV blocks copied from GPU to the CPU offload tier.",
			func(s Stats) float64 { return float64(s.OffloadStoredBlocks) })
		counter("sim:kv_offload_loaded_blocks_total", "KV blocks copied from the CPU offload tier back to GPU.",
			func(s Stats) float64 { return float64(s.OffloadLoadedBlocks) })
		counter("sim:kv_offload_load_seconds_total", "Virtual seconds engine steps waited for host-to-device KV copies.",
			func(s Stats) float64 { return s.OffloadLoadTime.Seconds() })
	}
	// vLLM has no end-of-session hint, so no name for it either; a client of the server
	// can see here that its ends arrive.
	counter("sim:kv_forgotten_blocks_total", "Cached KV blocks put first in line for eviction because their session ended.",
		func(s Stats) float64 { return float64(s.ForgottenBlocks) })
	counter("vllm:num_preemptions_total", "Cumulative number of preemption from the engine.",
		func(s Stats) float64 { return float64(s.Preemptions) })
	counter("vllm:prompt_tokens_total", "Number of prefill tokens processed.",
		func(s Stats) float64 { return float64(s.PromptTokens) })
	counter("vllm:generation_tokens_total", "Number of generation tokens processed.",
		func(s Stats) float64 { return float64(s.GenerationTokens) })

	m := &metrics{reg: reg}
	m.ttft = histogram("vllm:time_to_first_token_seconds", "Histogram of time to first token in seconds.", ttftBuckets)
	m.itl = histogram("vllm:inter_token_latency_seconds", "Histogram of inter-token latency in seconds.", itlBuckets)
	m.e2e = histogram("vllm:e2e_request_latency_seconds", "Histogram of e2e request latency in seconds.", requestBuckets)
	m.queue = histogram("vllm:request_queue_time_seconds", "Histogram of time spent in WAITING phase for request.", requestBuckets)
	m.successes = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "vllm:request_success_total", Help: "Count of successfully processed requests.", ConstLabels: labels,
	}, []string{"finished_reason"})
	reg.MustRegister(m.successes)
	return m
}

// cacheConfigInfo is vLLM's vllm:cache_config_info: a gauge of value 1 whose labels are
// the engine's CacheConfig fields as Python prints them (True, None) plus the engine
// index, and no model_name (vllm/v1/metrics/loggers.py, log_metrics_info). Its
// num_gpu_blocks × block_size is the KV capacity the kernel learns from the engine;
// num_cpu_blocks is the offload tier's size, None without one.
func cacheConfigInfo(p Profile, mode Mode, cpuBlocks int) prometheus.Collector {
	py := func(b bool) string {
		if b {
			return "True"
		}
		return "False"
	}
	numCPU := "None"
	if cpuBlocks > 0 {
		numCPU = strconv.Itoa(cpuBlocks)
	}
	g := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "vllm:cache_config_info",
		Help: "Information of the LLMEngine CacheConfig",
		ConstLabels: prometheus.Labels{
			"block_size":               strconv.Itoa(p.BlockSize),
			"cache_dtype":              "auto",
			"calculate_kv_scales":      "False",
			"cpu_offload_gb":           "0",
			"enable_prefix_caching":    py(mode != ModeNaive),
			"engine":                   "0",
			"gpu_memory_utilization":   strconv.FormatFloat(p.GPUMemoryUtilization, 'f', -1, 64),
			"is_attention_free":        "False",
			"num_cpu_blocks":           numCPU,
			"num_gpu_blocks":           strconv.Itoa(p.NumBlocks()),
			"num_gpu_blocks_override":  "None",
			"prefix_caching_hash_algo": "builtin",
			"sliding_window":           "None",
			"swap_space":               "4",
			"swap_space_bytes":         "4294967296",
		},
	})
	g.Set(1)
	return g
}
