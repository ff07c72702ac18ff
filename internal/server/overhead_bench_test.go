package server

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/aios-go/aios/internal/kernel"
	"github.com/aios-go/aios/internal/llm/openai"
	"github.com/aios-go/aios/internal/testfakes/fakeopenai"
)

// BenchmarkKernelOverhead measures the latency the kernel adds to an LLM call: the same
// fake upstream (fixed 2 ms to first token, 8 tokens) is called directly and through the
// kernel's /v1 over HTTP, in the same run, by 1 and by 64 concurrent callers, streaming
// and not. It reports the added p50 and p99 in µs, the kernel's CPU time and extra
// allocations per call; it asserts nothing.
//
//	go test -run '^$' -bench KernelOverhead -benchtime 3000x ./internal/server/
func BenchmarkKernelOverhead(b *testing.B) {
	for _, conc := range []int{1, 64} {
		for _, stream := range []bool{false, true} {
			b.Run(fmt.Sprintf("conc=%d/stream=%v", conc, stream), func(b *testing.B) { benchOverhead(b, conc, stream) })
		}
	}
}

func benchOverhead(b *testing.B, conc int, stream bool) {
	up := fakeopenai.New(fakeopenai.Options{Latency: 2 * time.Millisecond})
	defer up.Close()
	core, err := openai.New(openai.Config{Name: fakeopenai.DefaultModel, BaseURL: up.URL(), MaxInflight: 64})
	if err != nil {
		b.Fatal(err)
	}
	k, err := kernel.New(kernel.Options{}, []kernel.CoreConfig{{Model: "m", Backend: "vllm", Core: core}})
	if err != nil {
		b.Fatal(err)
	}
	defer func() { _ = k.Shutdown(context.Background()) }()
	ts := httptest.NewServer(New(k, Options{}).Handler())
	defer ts.Close()

	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 256}}
	defer client.CloseIdleConnections()
	body := `{"model":"%s","messages":[{"role":"user","content":"measure me"}],"max_tokens":8,"stream":%v}`
	direct := func() error {
		return post(client, up.URL()+"/v1/chat/completions", fmt.Sprintf(body, fakeopenai.DefaultModel, stream))
	}
	viaKernel := func() error { return post(client, ts.URL+"/v1/chat/completions", fmt.Sprintf(body, "m", stream)) }

	// Warm both paths' connection pools so the first measured calls do not dial.
	run(b, conc, conc*2, direct)
	run(b, conc, conc*2, viaKernel)

	b.ReportAllocs()
	b.ResetTimer()
	d, dAllocs, dCPU := run(b, conc, b.N, direct)
	kl, kAllocs, kCPU := run(b, conc, b.N, viaKernel)
	b.StopTimer()

	p := func(xs []time.Duration, q float64) float64 {
		return float64(xs[min(len(xs)-1, int(q*float64(len(xs))))].Microseconds())
	}
	b.ReportMetric(p(d, 0.5), "direct-p50-µs")
	b.ReportMetric(p(kl, 0.5), "kernel-p50-µs")
	b.ReportMetric(p(kl, 0.5)-p(d, 0.5), "added-p50-µs")
	b.ReportMetric(p(kl, 0.99)-p(d, 0.99), "added-p99-µs")
	b.ReportMetric(float64(kCPU-dCPU)/float64(time.Microsecond)/float64(b.N), "added-cpu-µs/call")
	b.ReportMetric(float64(kAllocs)/float64(max(dAllocs, 1)), "allocs-ratio")
	b.ReportMetric(float64(kAllocs-dAllocs)/float64(b.N), "added-allocs/call")
}

func post(c *http.Client, url, body string) error {
	resp, err := c.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	if resp.StatusCode != 200 {
		return fmt.Errorf("status %d", resp.StatusCode)
	}
	return nil
}

// run makes n calls with conc callers and returns their sorted latencies, and the heap
// allocations and CPU time of the whole process meanwhile (client, kernel and upstream
// share it, so the difference between two arms is what the kernel adds).
func run(b *testing.B, conc, n int, call func() error) ([]time.Duration, uint64, time.Duration) {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	before := ms.Mallocs
	cpu0 := cpuTime()
	lat := make([]time.Duration, n)
	var next atomic.Int64
	var wg sync.WaitGroup
	var failed atomic.Int64
	for range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				t0 := time.Now()
				if call() != nil {
					failed.Add(1)
				}
				lat[i] = time.Since(t0)
			}
		}()
	}
	wg.Wait()
	if failed.Load() > 0 {
		b.Fatalf("%d calls failed", failed.Load())
	}
	cpu := cpuTime() - cpu0
	runtime.ReadMemStats(&ms)
	slices.Sort(lat)
	return lat, ms.Mallocs - before, cpu
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
