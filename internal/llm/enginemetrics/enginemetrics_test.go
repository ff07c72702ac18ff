package enginemetrics

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/aios-go/aios/internal/llm/sim"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const sample = `# HELP vllm:num_requests_running Number of requests in model execution batches.
# TYPE vllm:num_requests_running gauge
vllm:num_requests_running{engine="0",model_name="m"} 12
vllm:num_requests_running{engine="1",model_name="m"} 3
# TYPE vllm:num_requests_waiting gauge
vllm:num_requests_waiting{engine="0",model_name="m"} 5
# TYPE vllm:kv_cache_usage_perc gauge
vllm:kv_cache_usage_perc{engine="0",model_name="m"} 0.42
vllm:kv_cache_usage_perc{engine="1",model_name="m"} 0.9
`

func TestParse(t *testing.T) {
	s, err := Parse(strings.NewReader(sample))
	if err != nil {
		t.Fatal(err)
	}
	if s.Running != 15 || s.Waiting != 5 || s.KVUsage != 0.9 {
		t.Fatalf("%+v", s)
	}
	if _, err := Parse(strings.NewReader("# TYPE other gauge\nother 1\n")); err == nil {
		t.Fatal("metrics without vLLM's gauges accepted")
	}
	if _, err := Parse(strings.NewReader("vllm:num_requests_waiting{ 1")); err == nil {
		t.Fatal("malformed exposition accepted")
	}
}

func TestSaturated(t *testing.T) {
	p := Policy{QueueThreshold: 4, KVThreshold: 0.8, MaxAge: time.Second}
	now := time.Now()
	for _, tc := range []struct {
		s    Snapshot
		want bool
	}{
		{Snapshot{Waiting: 1, KVUsage: 0.5, At: now}, false},
		{Snapshot{Waiting: 4, KVUsage: 0.1, At: now}, true},
		{Snapshot{Waiting: 0, KVUsage: 0.8, At: now}, true},
		{Snapshot{At: now.Add(-2 * time.Second)}, true}, // stale
		{Snapshot{}, true}, // never scraped
	} {
		if got := p.Saturated(tc.s, now); got != tc.want {
			t.Errorf("%+v: saturated %v, want %v", tc.s, got, tc.want)
		}
	}
}

// The scraper reads the simulator's real /metrics and reports saturation changes.
func TestScraperAgainstSimulator(t *testing.T) {
	srv, err := sim.NewServer(sim.Config{Profile: "test", Speed: 1})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv.Handler())
	defer func() { ts.Close(); srv.Close() }()
	var mu sync.Mutex
	var changes []bool
	s := NewScraper(ts.URL+"/metrics", 10*time.Millisecond, Policy{})
	s.OnChange = func(sat bool) { mu.Lock(); changes = append(changes, sat); mu.Unlock() }
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { s.Run(ctx); close(done) }()
	deadline := time.Now().Add(5 * time.Second)
	for {
		mu.Lock()
		n := len(changes)
		mu.Unlock()
		if n > 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	<-done
	snap, _ := s.Last()
	if len(changes) == 0 || changes[0] || snap.At.IsZero() {
		t.Fatalf("an idle engine should turn unsaturated after the first scrape: changes %v, snapshot %+v", changes, snap)
	}
}

func TestScraperFailingEndpointStaysSaturated(t *testing.T) {
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "down", http.StatusInternalServerError)
	}))
	defer ts.Close()
	s := NewScraper(ts.URL, 10*time.Millisecond, Policy{})
	s.scrape(context.Background())
	if _, sat := s.Last(); !sat {
		t.Fatal("an engine whose metrics cannot be read must count as saturated")
	}
}

// vLLM's own line (v0.10, two data-parallel engines): 573 and 100 blocks of 16 tokens.
const cacheInfo = `# HELP vllm:cache_config_info Information of the LLMEngine CacheConfig
# TYPE vllm:cache_config_info gauge
vllm:cache_config_info{block_size="16",cache_dtype="auto",calculate_kv_scales="False",cpu_offload_gb="0",enable_prefix_caching="True",engine="0",gpu_memory_utilization="0.82",is_attention_free="False",num_cpu_blocks="1024",num_gpu_blocks="573",num_gpu_blocks_override="None",sliding_window="None",swap_space_bytes="4294967296"} 1.0
vllm:cache_config_info{block_size="16",cache_dtype="auto",engine="1",num_gpu_blocks="100"} 1.0
`

func TestParseKVCapacity(t *testing.T) {
	got, err := ParseKVCapacity(strings.NewReader(cacheInfo))
	if err != nil || got != (573+100)*16 {
		t.Fatalf("%d %v, want %d", got, err, 673*16)
	}
	for _, bad := range []string{
		sample, // load gauges but no cache info
		`vllm:cache_config_info{block_size="16",num_gpu_blocks="None"} 1`, // not profiled yet
		`vllm:cache_config_info{num_gpu_blocks="10"} 1`,                   // no block size
	} {
		if n, err := ParseKVCapacity(strings.NewReader(bad)); err == nil {
			t.Errorf("%q: capacity %d accepted", bad, n)
		}
	}
}

// The simulator exports its own cache: the profile's blocks × block size.
func TestKVCapacityFromSimulator(t *testing.T) {
	srv, err := sim.NewServer(sim.Config{Profile: "llama3-8b-h100", Speed: 1})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv.Handler())
	defer func() { ts.Close(); srv.Close() }()
	p, _ := sim.LookupProfile("llama3-8b-h100")
	got, err := FetchKVCapacity(context.Background(), ts.Client(), ts.URL+"/metrics")
	if err != nil || got != p.NumBlocks()*p.BlockSize {
		t.Fatalf("%d %v, want %d", got, err, p.NumBlocks()*p.BlockSize)
	}
}
