// Package boot builds a kernel from configuration: its LLM cores and backends and its
// service modules. It is the one place that knows them all, so the kernel imports no
// backend and no manager.
package boot

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/aios-go/aios/internal/access"
	"github.com/aios-go/aios/internal/config"
	"github.com/aios-go/aios/internal/kernel"
	"github.com/aios-go/aios/internal/llm"
	"github.com/aios-go/aios/internal/llm/enginemetrics"
	"github.com/aios-go/aios/internal/llm/sim"
	"github.com/aios-go/aios/internal/llm/simcore"
	"github.com/aios-go/aios/internal/memory"
	"github.com/aios-go/aios/internal/respstore"
	"github.com/aios-go/aios/internal/sched"
	"github.com/aios-go/aios/internal/storage"
	"github.com/aios-go/aios/internal/tool"
	"github.com/aios-go/aios/internal/tool/mcp"
)

// openAICompatible are AIOS backend names served through the OpenAI-compatible client.
var openAICompatible = map[string]bool{
	"openai": true, "vllm": true, "sglang": true, "ollama": true,
	"llamacpp": true, "llama.cpp": true, "lmstudio": true,
}

// System is a built kernel and the handles of its modules that the server serves
// beside syscalls.
type System struct {
	Kernel *kernel.Kernel
	// Storage, Memory and Tools are nil when their module is disabled.
	Storage *storage.Manager
	Memory  *memory.Manager
	Tools   *tool.Manager
	// Responses keeps the Responses API's stored responses in the storage module's
	// database; set exactly when Storage is.
	Responses *respstore.Store
	// MCPServers reports the MCP servers the tool module connects to.
	MCPServers []*mcp.Server
	// Embeddings serves /v1/embeddings from the models that embed.
	Embeddings *EmbeddingModels
	// Access is the access manager, set when access.auth is on; every syscall then
	// passes its gate. CloseAccess closes it after the kernel has drained.
	Access      *access.Manager
	closeAccess func() error
}

// CloseAccess stops the access manager, if there is one: call it after the kernel's
// Shutdown, since syscalls release their quotas as they end. Calling it again does nothing.
func (s *System) CloseAccess() error {
	if s.closeAccess == nil {
		return nil
	}
	f := s.closeAccess
	s.closeAccess = nil
	return f()
}

// Option sets what a program, not its configuration, gives the kernel: hooks.
type Option func(*kernel.Options)

// OnEnd has the kernel call f as each syscall ends (kernel.Options.OnEnd); aios serve
// counts its metrics with it.
func OnEnd(f func(*kernel.Syscall)) Option { return func(o *kernel.Options) { o.OnEnd = f } }

// Build constructs a kernel and its modules from configuration.
func Build(cfg config.Config, log *slog.Logger, with ...Option) (*System, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	var cores []kernel.CoreConfig
	learnErr := map[int]error{} // models whose engine was asked for its KV capacity in vain
	for i, m := range cfg.LLMs.Models {
		learned := 0 // KV capacity read from the engine, once for all replicas
		if m.MaxTokensInflight <= 0 && probesCapacity(m) {
			learned, learnErr[i] = learnKVCapacity(m)
		}
		for r := 0; r < m.Cores; r++ {
			c, err := buildCore(m, cfg.Scheduler.KVRetention || cfg.Scheduler.WorkingSet.Swap, log)
			if err == nil {
				c, err = limited(c, m) // rpm/tpm (build_providers.go)
			}
			if err != nil {
				for _, done := range cores {
					_ = done.Core.Close()
				}
				return nil, fmt.Errorf("llms.models[%d] (%s, backend %q): %w", i, m.Name, m.Backend, err)
			}
			capacity := llm.Capacity{MaxInflight: m.MaxInflight, MaxTokens: m.MaxTokensInflight}
			if capacity.MaxTokens <= 0 {
				capacity.MaxTokens = learned
			}
			cores = append(cores, kernel.CoreConfig{
				Model: m.Name, Backend: m.Backend, Hostname: m.Hostname, Core: c,
				Capacity:   capacity,
				Resilience: resilience(m),
			})
			if m.MetricsAdmission {
				cc := &cores[len(cores)-1]
				cc.MetricsURL = metricsURL(m)
				cc.MetricsPolicy = enginemetrics.Policy{QueueThreshold: m.QueueThreshold, KVThreshold: m.KVThreshold}
			}
		}
	}
	opts := kernel.Options{
		Policy:     cfg.Scheduler.Policy,
		TimeSlice:  cfg.Scheduler.TimeSlice,
		Timeout:    cfg.Scheduler.SyscallTimeout,
		DefaultLLM: cfg.LLMs.Default,
		Logger:     log,
		MaxBypass:  cfg.Scheduler.MaxBypass,
		MaxQueued:  cfg.Scheduler.MaxQueued,
		Retention:  cfg.Scheduler.KVRetention,
		Routing:    sched.RoutingConfig{Mode: sched.Routing(cfg.Scheduler.Routing)},
		PolicyConfig: sched.Config{
			Queues: cfg.Scheduler.PLAS.Queues, QuantumBase: cfg.Scheduler.PLAS.QuantumBase,
			QuantumRatio: cfg.Scheduler.PLAS.QuantumRatio, Beta: cfg.Scheduler.PLAS.Beta,
			InputWeight: cfg.Scheduler.Fair.InputWeight, OutputWeight: cfg.Scheduler.Fair.OutputWeight,
			Weights:      cfg.Scheduler.Fair.Weights,
			ProgramAging: cfg.Scheduler.PSJF.ProgramAging,
			SLOBound:     cfg.Scheduler.SLOBound,
		},
	}
	ws := cfg.Scheduler.WorkingSet
	unknown := unknownCapacity(cfg, cores, learnErr)
	if ws.FairShare && (ws.Enabled != nil && !*ws.Enabled || unknown != nil) {
		// Fair shares are shares of the working set: without it they cannot work.
		for _, c := range cores {
			_ = c.Core.Close()
		}
		why := "scheduler.working_set.enabled is false"
		if unknown != nil {
			why = unknown.Error()
		}
		return nil, fmt.Errorf("scheduler.working_set.fair_share needs working-set admission, which is off: %s", why)
	}
	switch {
	case ws.Enabled != nil && !*ws.Enabled:
	case ws.Enabled != nil && unknown != nil:
		// Asked for explicitly, and it cannot work: say why, at start-up.
		for _, c := range cores {
			_ = c.Core.Close()
		}
		return nil, fmt.Errorf("scheduler.working_set.enabled is true, but %w", unknown)
	case unknown != nil:
		log.Info("working-set admission off: a KV capacity is unknown", "reason", unknown.Error())
	default:
		// The best safe configuration is the default: on wherever the capacity is known.
		opts.WorkingSet = &sched.WorkingSet{High: ws.High, Suspend: ws.Suspend, Idle: ws.Idle, Beta: ws.Beta, Evict: ws.Evict,
			Graph: ws.Graph, Tier: allTiered(cfg), FairShare: ws.FairShare, FairLend: ws.FairLend,
			Weights: cfg.Scheduler.Fair.Weights, FairHalfLife: ws.FairHalfLife, FairLight: ws.FairLight,
			Swap: ws.Swap, SwapRate: swapRate(cores)}
	}
	opts.Modules = make(map[sched.Module]kernel.ModuleOptions)
	for name, mc := range cfg.Scheduler.Modules {
		m, _ := sched.ParseModule(name) // config checked the names
		opts.Modules[m] = kernel.ModuleOptions{Policy: mc.Policy, Concurrency: mc.Concurrency}
	}
	sys := &System{}
	sys.Embeddings = newEmbeddingModels(cfg)
	// stop undoes what was started for a kernel that will not run.
	stop := func() {
		for _, c := range cores {
			_ = c.Core.Close()
		}
		if sys.Storage != nil {
			_ = sys.Storage.Close()
		}
		if sys.Responses != nil {
			_ = sys.Responses.Close()
		}
		if sys.Memory != nil {
			_ = sys.Memory.Close()
		}
		if ts, ok := opts.Services[sched.Tool].(*toolService); ok {
			_ = ts.Close()
		}
		_ = sys.CloseAccess()
	}
	opts.Services = make(map[sched.Module]kernel.Service)
	if !cfg.Storage.Disabled {
		m, err := openStorage(cfg, log)
		if err != nil {
			stop()
			return nil, err
		}
		sys.Storage = m
		if sys.Responses, err = openResponses(cfg); err != nil {
			stop()
			return nil, err
		}
		opts.Services[sched.Storage] = storageWithResponses{storageService{m: m, gated: cfg.Access.Auth}, sys.Responses}
	}
	if !cfg.Memory.Disabled {
		m, err := openMemory(cfg, log)
		if err != nil {
			stop()
			return nil, err
		}
		sys.Memory = m
		opts.Services[sched.Memory] = memoryService{m: m, k: &sys.Kernel, gated: cfg.Access.Auth}
	}
	if !cfg.Tools.Disabled {
		ts, err := openTools(cfg, &sys.Kernel, log)
		if err != nil {
			stop()
			return nil, err
		}
		sys.Tools, sys.MCPServers = ts.m, ts.servers
		opts.Services[sched.Tool] = ts
	}
	if cfg.Access.Auth {
		m, closeAccess, err := openAccess(cfg, log)
		if err != nil {
			stop()
			return nil, err
		}
		sys.Access, sys.closeAccess = m, closeAccess
		def := cfg.LLMs.Default
		if def == "" && len(cores) > 0 {
			def = cores[0].Model
		}
		opts.Gate = accessGate{m: m, storage: &sys.Storage, tools: &sys.Tools, defaultLLM: def,
			destructive: cfg.Tools.Destructive}.gate
	}
	opts.SLO = objectives(cfg.Scheduler.SLO, sys.Access)
	for _, o := range with {
		o(&opts)
	}
	k, err := kernel.New(opts, cores)
	if err != nil {
		stop()
		return nil, err
	}
	sys.Kernel = k
	return sys, nil
}

func buildCore(m config.Model, hints bool, log *slog.Logger) (llm.Core, error) {
	switch {
	case m.Backend == "sim":
		return simcore.New(simcore.Config{
			Config: sim.Config{Profile: m.Profile, Mode: sim.Mode(m.Mode), Policy: sim.Policy(m.SimPolicy),
				Speed: m.Speed, Model: m.Name, KVOffloadGiB: m.KVOffloadGiB},
			MaxInflight: m.MaxInflight, MaxTokens: m.MaxTokensInflight,
			SessionHints: hints,
		})
	case openAICompatible[m.Backend]:
		return newOpenAICore(m, log)
	case m.Backend == "anthropic":
		return newAnthropicCore(m)
	case m.Backend == "gemini":
		return newGeminiCore(m)
	case m.Backend == "":
		return nil, fmt.Errorf("backend is required (sim, openai, vllm, sglang, ollama, llamacpp, lmstudio, anthropic, gemini)")
	}
	return nil, fmt.Errorf("unsupported backend %q: supported are sim, openai, vllm, sglang, ollama, llamacpp, lmstudio, anthropic, gemini (local huggingface models are not run in-process; serve them with vLLM or Ollama)", strings.ToLower(m.Backend))
}

// probesCapacity says whether a model's engine is asked for its KV capacity at
// start-up: vLLM servers, and any OpenAI-compatible server whose metrics are configured.
func probesCapacity(m config.Model) bool {
	return openAICompatible[m.Backend] && m.Hostname != "" && (m.Backend == "vllm" || m.MetricsURL != "" || m.MetricsAdmission)
}

// learnKVCapacity reads the KV capacity of m's engine from its /metrics (vLLM's
// vllm:cache_config_info: num_gpu_blocks × block_size). The replicas of one entry
// share the engine, so each is given its share.
func learnKVCapacity(m config.Model) (int, error) {
	ctx, cancel := context.WithTimeout(context.Background(), capacityProbeTimeout)
	defer cancel()
	n, err := enginemetrics.FetchKVCapacity(ctx, &http.Client{Timeout: capacityProbeTimeout}, metricsURL(m))
	if err != nil {
		return 0, err
	}
	return n / max(m.Cores, 1), nil
}

// capacityProbeTimeout bounds the start-up read of an engine's /metrics.
const capacityProbeTimeout = 5 * time.Second

// unknownCapacity says which LLM core's KV capacity is unknown, if any, and why.
func unknownCapacity(cfg config.Config, cores []kernel.CoreConfig, learnErr map[int]error) error {
	k := 0
	for i, m := range cfg.LLMs.Models {
		for r := 0; r < m.Cores; r++ {
			c := cores[k]
			k++
			if c.Capacity.MaxTokens > 0 || c.Core.Capacity().MaxTokens > 0 {
				continue
			}
			why := "its backend reports none"
			switch {
			case learnErr[i] != nil:
				why = "reading it from the engine failed: " + learnErr[i].Error()
			case !probesCapacity(m):
				why = "the kernel cannot learn it from a " + m.Backend + " backend"
			}
			return fmt.Errorf("the KV capacity of llms.models[%d] (%s, backend %s) is unknown (%s); set max_tokens_inflight on the model to the engine's KV cache in tokens, or set scheduler.working_set.enabled to false", i, m.Name, m.Backend, why)
		}
	}
	return nil
}

// metricsURL is where an OpenAI-compatible engine serves Prometheus metrics: vLLM and
// SGLang at the server's root, beside /v1.
func metricsURL(m config.Model) string {
	if m.MetricsURL != "" {
		return m.MetricsURL
	}
	u := strings.TrimRight(m.Hostname, "/")
	u = strings.TrimSuffix(u, "/v1")
	return u + "/metrics"
}

// allTiered reports whether every LLM core has a CPU KV offload tier, which raises the
// working set's default marks (sched.WorkingSet.Tier). Only tiers the configuration
// names count: the simulated engine's, and those declared with kv_offload on servers
// that take swaps; a real engine's offload is the engine's own setting, unknown to the
// kernel, so such cores keep the marks made for a GPU cache alone.
func allTiered(cfg config.Config) bool {
	for _, m := range cfg.LLMs.Models {
		if m.KVOffloadGiB <= 0 && !m.KVOffload {
			return false
		}
	}
	return len(cfg.LLMs.Models) > 0
}

// swapRate is the slowest rate, in tokens per second, at which the simulated cores'
// CPU tiers copy KV back to the GPU: the working set warms a swapped-out program that
// long before its tool returns (sched.WorkingSet.SwapRate). 0 when no core has a tier.
func swapRate(cores []kernel.CoreConfig) float64 {
	rate := 0.0
	for _, c := range cores {
		sc, ok := c.Core.(*simcore.Core)
		if !ok {
			continue
		}
		p := sc.Live().Profile()
		if r := p.OffloadBandwidth / float64(p.KVBytesPerToken); r > 0 && (rate == 0 || r < rate) {
			rate = r
		}
	}
	return rate
}
