// Package enginemetrics reads the load of a vLLM-compatible engine from its Prometheus
// /metrics, so the kernel can hold work while the engine is saturated and let its own
// policy, not the engine's FCFS queue, decide the order.
package enginemetrics

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// Snapshot is an engine's load at one moment, summed over its engines and models.
type Snapshot struct {
	Waiting float64 // vllm:num_requests_waiting
	Running float64 // vllm:num_requests_running
	KVUsage float64 // vllm:kv_cache_usage_perc (older vLLM: gpu_cache_usage_perc), 0..1
	At      time.Time
}

// Names of the gauges read; vLLM before V1 called the KV gauge gpu_cache_usage_perc.
var kvNames = []string{"vllm:kv_cache_usage_perc", "vllm:gpu_cache_usage_perc"}

// Parse reads the Prometheus text exposition format.
func Parse(r io.Reader) (Snapshot, error) {
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(r)
	if err != nil {
		return Snapshot{}, fmt.Errorf("engine metrics: %w", err)
	}
	var s Snapshot
	found := false
	get := func(name string) (float64, bool) {
		f := fams[name]
		if f == nil {
			return 0, false
		}
		sum := 0.0
		for _, m := range f.GetMetric() {
			sum += value(m)
		}
		return sum, true
	}
	if v, ok := get("vllm:num_requests_waiting"); ok {
		s.Waiting, found = v, true
	}
	if v, ok := get("vllm:num_requests_running"); ok {
		s.Running, found = v, true
	}
	for _, n := range kvNames {
		if f := fams[n]; f != nil {
			// Usage is a fraction per engine: take the fullest, not the sum.
			for _, m := range f.GetMetric() {
				s.KVUsage = max(s.KVUsage, value(m))
			}
			found = true
			break
		}
	}
	if !found {
		return Snapshot{}, fmt.Errorf("engine metrics: no vllm:num_requests_waiting, vllm:num_requests_running or vllm:kv_cache_usage_perc")
	}
	return s, nil
}

func value(m *dto.Metric) float64 {
	switch {
	case m.GetGauge() != nil:
		return m.GetGauge().GetValue()
	case m.GetCounter() != nil:
		return m.GetCounter().GetValue()
	case m.GetUntyped() != nil:
		return m.GetUntyped().GetValue()
	}
	return 0
}

// Policy says when an engine counts as saturated: max(waiting/QueueThreshold,
// kv_usage/KVThreshold) >= 1, or its last snapshot is older than MaxAge.
type Policy struct {
	QueueThreshold float64       // default 4: a few queued requests are normal batching
	KVThreshold    float64       // default 0.8
	MaxAge         time.Duration // default 3 scrape intervals
}

// Saturated applies p to s at now.
func (p Policy) Saturated(s Snapshot, now time.Time) bool {
	if s.At.IsZero() || now.Sub(s.At) > p.MaxAge {
		return true // stale: assume the worst rather than flood an engine we cannot see
	}
	return max(s.Waiting/p.QueueThreshold, s.KVUsage/p.KVThreshold) >= 1
}

// Scraper polls one engine's /metrics.
type Scraper struct {
	URL      string
	Interval time.Duration
	Client   *http.Client
	Policy   Policy
	// OnChange, when set, hears each change of saturation.
	OnChange func(saturated bool)

	mu   sync.Mutex
	last Snapshot
	sat  bool
}

// NewScraper polls url (an engine's /metrics) every interval.
func NewScraper(url string, interval time.Duration, p Policy) *Scraper {
	if interval <= 0 {
		interval = 500 * time.Millisecond
	}
	if p.QueueThreshold <= 0 {
		p.QueueThreshold = 4
	}
	if p.KVThreshold <= 0 {
		p.KVThreshold = 0.8
	}
	if p.MaxAge <= 0 {
		p.MaxAge = 3 * interval
	}
	return &Scraper{URL: url, Interval: interval, Policy: p, Client: &http.Client{Timeout: interval}, sat: true}
}

// Last is the latest snapshot and whether the engine counts as saturated now.
func (s *Scraper) Last() (Snapshot, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.last, s.Policy.Saturated(s.last, time.Now())
}

// Run polls until ctx ends.
func (s *Scraper) Run(ctx context.Context) {
	t := time.NewTicker(s.Interval)
	defer t.Stop()
	for {
		s.scrape(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (s *Scraper) scrape(ctx context.Context) {
	snap, err := s.fetch(ctx)
	s.mu.Lock()
	if err == nil {
		s.last = snap
	}
	sat := s.Policy.Saturated(s.last, time.Now())
	changed := sat != s.sat
	s.sat = sat
	s.mu.Unlock()
	if changed && s.OnChange != nil {
		s.OnChange(sat)
	}
}

func (s *Scraper) fetch(ctx context.Context) (Snapshot, error) {
	req, err := http.NewRequestWithContext(ctx, "GET", s.URL, nil)
	if err != nil {
		return Snapshot{}, err
	}
	resp, err := s.Client.Do(req)
	if err != nil {
		return Snapshot{}, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return Snapshot{}, fmt.Errorf("engine metrics: %s answered %d", s.URL, resp.StatusCode)
	}
	snap, err := Parse(io.LimitReader(resp.Body, 8<<20))
	snap.At = time.Now()
	return snap, err
}

// ParseKVCapacity reads an engine's KV-cache capacity in tokens from its metrics:
// vLLM's vllm:cache_config_info, whose labels carry the cache's num_gpu_blocks and
// block_size, summed over the engines it lists (data-parallel ranks are labelled
// engine="0", "1", …, each with its own cache).
func ParseKVCapacity(r io.Reader) (int, error) {
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(r)
	if err != nil {
		return 0, fmt.Errorf("engine metrics: %w", err)
	}
	f := fams["vllm:cache_config_info"]
	if f == nil || len(f.GetMetric()) == 0 {
		return 0, fmt.Errorf("engine metrics: no vllm:cache_config_info (not a vLLM server, or one too old to export it)")
	}
	total := 0
	for _, m := range f.GetMetric() {
		var blocks, size int
		var berr, serr error = fmt.Errorf("no num_gpu_blocks label"), fmt.Errorf("no block_size label")
		for _, l := range m.GetLabel() {
			switch l.GetName() {
			case "num_gpu_blocks":
				blocks, berr = strconv.Atoi(l.GetValue())
			case "block_size":
				size, serr = strconv.Atoi(l.GetValue())
			}
		}
		if berr != nil || serr != nil || blocks <= 0 || size <= 0 {
			return 0, fmt.Errorf("engine metrics: vllm:cache_config_info gives no usable num_gpu_blocks × block_size (%v)", m.GetLabel())
		}
		total += blocks * size
	}
	return total, nil
}

// FetchKVCapacity reads the KV capacity (ParseKVCapacity) from an engine's /metrics URL.
func FetchKVCapacity(ctx context.Context, client *http.Client, url string) (int, error) {
	req, err := http.NewRequestWithContext(ctx, "GET", url, nil)
	if err != nil {
		return 0, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, fmt.Errorf("engine metrics: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("engine metrics: %s answered %d", url, resp.StatusCode)
	}
	return ParseKVCapacity(io.LimitReader(resp.Body, 8<<20))
}
