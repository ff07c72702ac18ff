package kernel

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aios-go/aios/internal/llm"
	"github.com/aios-go/aios/internal/llm/enginemetrics"
)

// A core whose engine reports a long queue takes no new calls; they wait in the kernel
// and run once the engine drains.
func TestEngineMetricsHoldCalls(t *testing.T) {
	var waiting atomic.Int64
	waiting.Store(50)
	metrics := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "# TYPE vllm:num_requests_waiting gauge\nvllm:num_requests_waiting{engine=\"0\"} %d\n"+
			"# TYPE vllm:kv_cache_usage_perc gauge\nvllm:kv_cache_usage_perc{engine=\"0\"} 0.1\n", waiting.Load())
	}))
	defer metrics.Close()
	core := &funcCore{cap: llm.Capacity{MaxInflight: 4}, gen: func(ctx context.Context, req *llm.Request, emit func(llm.Delta)) (*llm.Result, error) {
		return &llm.Result{Text: "ok"}, nil
	}}
	k := newKernel(t, Options{}, CoreConfig{Model: "m", Backend: "vllm", Core: core,
		MetricsURL: metrics.URL, MetricsInterval: 5 * time.Millisecond, MetricsPolicy: enginemetrics.Policy{QueueThreshold: 4}})
	sc, err := k.SubmitLLM(context.Background(), LLMCall{Agent: "a", Request: llm.Request{Messages: userMsg("x")}})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-sc.Done():
		t.Fatal("a call ran on an engine reporting 50 waiting requests")
	case <-time.After(60 * time.Millisecond):
	}
	waiting.Store(0)
	select {
	case <-sc.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("the call never ran after the engine drained")
	}
}
