// Package config loads the kernel's configuration from defaults, a YAML file, AIOS_*
// environment variables and flags, in that order of precedence (later wins). It accepts
// AIOS's own config.yaml shape, so an AIOS user can bring their file.
package config

import (
	"errors"
	"fmt"
	"maps"
	"math"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/knadh/koanf/parsers/yaml"
	"github.com/knadh/koanf/providers/env"
	"github.com/knadh/koanf/providers/file"
	"github.com/knadh/koanf/v2"

	"github.com/aios-go/aios/internal/sched"
)

// Config is the whole configuration.
type Config struct {
	Server    Server            `koanf:"server"`
	DataDir   string            `koanf:"data_dir"`
	Log       Log               `koanf:"log"`
	Scheduler Scheduler         `koanf:"scheduler"`
	LLMs      LLMs              `koanf:"llms"`
	APIKeys   map[string]string `koanf:"api_keys"` // AIOS's per-provider keys
	Storage   Storage           `koanf:"storage"`
	Memory    Memory            `koanf:"memory"`
	// Embeddings choose how storage and memory turn text into vectors for retrieval.
	Embeddings Embeddings `koanf:"embeddings"`
	Tools      Tools      `koanf:"tools"`
	// Telemetry exports a trace span per syscall over OTLP; off unless an endpoint is set.
	Telemetry Telemetry `koanf:"telemetry"`
	// Agents configures the agent runtime (agents.go).
	Agents Agents `koanf:"agents"`
	// Access configures the access manager (docs/security.md); off unless Auth is set.
	Access Access `koanf:"access"`
}

// Access configures the access manager: API keys, Cedar policies, approvals, quotas
// and the audit log (docs/security.md).
type Access struct {
	// Auth turns authentication on: every request but GET /status and GET
	// /shared/{token} must carry an API key, and every syscall passes the gate.
	Auth bool `koanf:"auth"`
	// InsecureNoAuth lets the kernel listen beyond loopback without authentication.
	InsecureNoAuth bool `koanf:"insecure_no_auth"`
	// PolicyDir holds the operator's *.cedar policies, reloaded as they change.
	PolicyDir string `koanf:"policy_dir"`
	// ApprovalTimeout is how long a call waits for a person's decision (5m).
	ApprovalTimeout time.Duration `koanf:"approval_timeout"`
	// Backend and DSN default to storage's; Path to <data_dir>/access.db.
	Backend string `koanf:"backend"`
	Path    string `koanf:"path"`
	DSN     string `koanf:"dsn"`
	// Quotas are agents' and tenants' limits, set at every start (quotas.go).
	Quotas []Quota `koanf:"quotas"`
}

// Telemetry configures OpenTelemetry traces (docs/observability.md). Tracing is off while
// OTLPEndpoint is empty.
type Telemetry struct {
	// OTLPEndpoint is the collector's OTLP/HTTP (protobuf) endpoint: a URL such as
	// http://localhost:4318, to which /v1/traces is added when it has no path, or a bare
	// host:port (HTTPS unless OTLPInsecure). When it is empty the standard
	// OTEL_EXPORTER_OTLP_TRACES_ENDPOINT, then OTEL_EXPORTER_OTLP_ENDPOINT, are read.
	OTLPEndpoint string `koanf:"otlp_endpoint"`
	// OTLPHeaders are sent with every export (an API key, say). When none are given the
	// exporter reads OTEL_EXPORTER_OTLP_HEADERS.
	OTLPHeaders map[string]string `koanf:"otlp_headers"`
	// OTLPInsecure sends a bare host:port endpoint plain HTTP; an http:// URL always is.
	OTLPInsecure bool `koanf:"otlp_insecure"`
	// ServiceName is the service.name the spans carry ("aios").
	ServiceName string `koanf:"service_name"`
	// SampleRatio is the share of programs traced, from 0 to 1 (1: all). The choice is
	// made per program, so a program's syscalls are traced all together or not at all.
	SampleRatio float64 `koanf:"sample_ratio"`
	// ProgramIdle is how long a program goes without syscalls before its root span is
	// sent (5m); its next syscall then starts a new trace.
	ProgramIdle time.Duration `koanf:"program_idle"`
}

// Tools configures the tool module (docs/tools.md).
type Tools struct {
	// Disabled turns the module off: tool syscalls then answer status_code 501.
	Disabled bool `koanf:"disabled"`
	// Builtin lists the built-in tools offered: calculator, current_time, http_fetch,
	// storage, memory (the kernel's own modules as tools). Empty: all of them.
	Builtin []string `koanf:"builtin"`
	// FetchAllow are the hosts http_fetch may reach ("example.com", "*.example.com",
	// "127.0.0.1:8080"). Empty: http_fetch is not offered.
	FetchAllow []string `koanf:"fetch_allow"`
	// Limits apply to every tool; PerTool overrides them by tool name or "server__*".
	Limits  ToolLimits            `koanf:"limits"`
	PerTool map[string]ToolLimits `koanf:"per_tool"`
	MCP     []MCPServer           `koanf:"mcp"`
	HTTP    []HTTPTool            `koanf:"http"`
	// MaxTurns bounds the kernel's tool loop on /v1 (model → tools → model ...): 8.
	MaxTurns int `koanf:"max_turns"`
	// Destructive marks tools destructive by the operator's word, by name or
	// "server__*" ("*" for all): with access.auth on, each call of one asks a person for
	// approval, whatever its MCP server's hints say (docs/security.md).
	Destructive []string `koanf:"destructive"`
}

// ToolLimits bound one tool's calls; zero fields take the defaults of docs/tools.md.
type ToolLimits struct {
	Concurrency      int           `koanf:"concurrency"`
	Queue            int           `koanf:"queue"`
	QueueTimeout     time.Duration `koanf:"queue_timeout"`
	Timeout          time.Duration `koanf:"timeout"`
	MaxOutput        int           `koanf:"max_output"`
	BreakerThreshold int           `koanf:"breaker_threshold"`
	BreakerCooldown  time.Duration `koanf:"breaker_cooldown"`
}

// MCPServer is an MCP server whose tools the kernel offers as name__tool: a subprocess
// over stdio (command) or a streamable HTTP endpoint (url).
type MCPServer struct {
	Name    string            `koanf:"name"`
	Command string            `koanf:"command"`
	Args    []string          `koanf:"args"`
	Env     map[string]string `koanf:"env"`
	Dir     string            `koanf:"dir"`
	URL     string            `koanf:"url"`
	Headers map[string]string `koanf:"headers"`
	// StartTimeout bounds the first connection (30s); a server that cannot start stops
	// the kernel from starting.
	StartTimeout time.Duration `koanf:"start_timeout"`
}

// HTTPTool is a tool that is one HTTP request: {param} placeholders in the URL are
// filled from the arguments, the rest go in the query (GET, DELETE) or a JSON body.
type HTTPTool struct {
	Name        string            `koanf:"name"`
	Description string            `koanf:"description"`
	Method      string            `koanf:"method"`
	URL         string            `koanf:"url"`
	Headers     map[string]string `koanf:"headers"` // "${VAR}" is read from the environment
	Parameters  map[string]any    `koanf:"parameters"`
	Annotations map[string]any    `koanf:"annotations"`
	Timeout     time.Duration     `koanf:"timeout"`
}

// Storage configures the storage module (docs/storage.md).
type Storage struct {
	// Disabled turns the module off: storage syscalls then answer status_code 501.
	Disabled bool   `koanf:"disabled"`
	Backend  string `koanf:"backend"` // sqlite (default) or postgres
	// Path is the SQLite file; default <data_dir>/storage.db.
	Path string `koanf:"path"`
	// DSN is the PostgreSQL connection string, for backend postgres.
	DSN          string `koanf:"dsn"`
	MaxVersions  int    `koanf:"max_versions"`   // history kept per file (20)
	MaxFileBytes int64  `koanf:"max_file_bytes"` // largest file (16 MiB)
	QuotaBytes   int64  `koanf:"quota_bytes"`    // per-agent namespace (1 GiB; negative: none)
	// HostRoots are the host folders under which agents may mount real directories.
	HostRoots []string `koanf:"host_roots"`
}

// Memory configures the memory module (docs/memory.md).
type Memory struct {
	// Disabled turns the module off: memory syscalls then answer status_code 501.
	Disabled bool `koanf:"disabled"`
	// Backend and DSN default to storage's; Path to <data_dir>/memory.db.
	Backend  string `koanf:"backend"`
	Path     string `koanf:"path"`
	DSN      string `koanf:"dsn"`
	HotBytes int64  `koanf:"hot_bytes"` // the RAM manager's budget (64 MiB)
	K        int    `koanf:"k"`         // LRU-K's K (2)
	// Inject puts an agent's memories into its chat calls and stores the exchanges.
	Inject Inject `koanf:"inject"`
	// Context is the kernel-managed conversation context (opt-in per session).
	Context ManagedContext `koanf:"context"`
}

// Inject configures memory injection into LLM calls. Agents listed here have it on for
// every call; any call can ask for it with the X-AIOS-Memory: on header (or "memory":
// true in an AIOS llm query).
type Inject struct {
	Agents   []string `koanf:"agents"`
	TopK     int      `koanf:"top_k"`     // memories injected at most (5)
	MinScore float64  `koanf:"min_score"` // relative score below which a memory is not injected (0.3)
	Tokens   int      `koanf:"tokens"`    // token budget of the injected system message (512)
}

// ManagedContext configures kernel-kept conversations (MemGPT-style): the agent sends
// only its new turn with X-AIOS-Context: managed; past Warning of Tokens the oldest
// turns are summarised by an LLM call, past Hard they are dropped.
type ManagedContext struct {
	Tokens  int     `koanf:"tokens"`  // budget (8192)
	Warning float64 `koanf:"warning"` // share of the budget that triggers a summary (0.7)
	Hard    float64 `koanf:"hard"`    // share past which the oldest turns are dropped (0.9)
	Policy  string  `koanf:"policy"`  // summarize (default) or drop
}

// Embeddings name a configured core that serves an OpenAI-compatible /v1/embeddings
// (vLLM, Ollama, OpenAI, the simulated engine). With no core set, a model-free hashed
// n-gram embedding is used.
type Embeddings struct {
	Core       string `koanf:"core"`       // a name from llms.models
	Model      string `koanf:"model"`      // model sent upstream; default the core's
	Dimensions int    `koanf:"dimensions"` // optional, for models that can shorten vectors
}

// ModuleScheduler is one module's scheduler settings (scheduler.modules.<module>).
type ModuleScheduler struct {
	Policy      string `koanf:"policy"`      // fifo, priority or fair for services
	Concurrency int    `koanf:"concurrency"` // syscalls of the module running at once (16)
}

type Server struct {
	Addr string `koanf:"addr"`
	// Host and Port are AIOS's spelling; Addr wins when both are set.
	Host            string        `koanf:"host"`
	Port            int           `koanf:"port"`
	MaxBodyBytes    int64         `koanf:"max_body_bytes"`
	ShutdownTimeout time.Duration `koanf:"shutdown_timeout"`
}

type Log struct {
	Level  string `koanf:"level"`  // debug, info, warn, error
	Format string `koanf:"format"` // text or json
}

type Scheduler struct {
	Policy         string        `koanf:"policy"`
	TimeSlice      time.Duration `koanf:"time_slice"`
	SyscallTimeout time.Duration `koanf:"syscall_timeout"`
	// MaxBypass: calls that may pass one waiting for room in a core (backfilling).
	MaxBypass int `koanf:"max_bypass"`
	// MaxQueued bounds each module's queue: past it new calls get 429 with Retry-After
	// (0: the kernel's default, 4096; negative: unbounded).
	MaxQueued int `koanf:"max_queued"`
	// Routing among the cores of a model: least-loaded, round-robin, affinity (default),
	// cache-aware.
	Routing    string     `koanf:"routing"`
	WorkingSet WorkingSet `koanf:"working_set"`
	// KVRetention: ask engines that take the hint (kv_retention on the model) to keep a
	// session's KV cache across its tool calls, for a TTL learned per tool.
	KVRetention bool `koanf:"kv_retention"`
	// Policy parameters (docs/scheduling.md); zero means the policy's default.
	PLAS PLAS `koanf:"plas"`
	Fair Fair `koanf:"fair"`
	PSJF PSJF `koanf:"psjf"`
	// SLO are agents' and tenants' service-level objectives (slo.go), for the slo policy.
	SLO []SLO `koanf:"slo"`
	// SLOBound is the slo policy's fairness bound, in VTC counter tokens: clients within
	// it of the least-served one are ordered by deadline (0: twice the costliest queued
	// call, VTC's own bound).
	SLOBound float64 `koanf:"slo_bound"`
	// Modules are per-module settings, keyed llm, memory, storage, tool; the llm entry's
	// policy, when set, wins over Policy.
	Modules map[string]ModuleScheduler `koanf:"modules"`
}

// PLAS parameterises plas and atlas.
type PLAS struct {
	Queues       int           `koanf:"queues"`
	QuantumBase  time.Duration `koanf:"quantum_base"`
	QuantumRatio float64       `koanf:"quantum_ratio"`
	Beta         float64       `koanf:"beta"`
}

// PSJF parameterises psjf: ProgramAging is the weight of a call's arrival against its
// program's predicted remaining engine time (0.3).
type PSJF struct {
	ProgramAging float64 `koanf:"program_aging"`
}

// Fair parameterises fair (VTC): token costs and per-agent weights.
type Fair struct {
	InputWeight  float64            `koanf:"input_weight"`
	OutputWeight float64            `koanf:"output_weight"`
	Weights      map[string]float64 `koanf:"weights"`
}

// WorkingSet configures program-level admission (docs/scheduling.md).
//
// Enabled unset is the default: admission is on wherever the KV capacity of every LLM
// core is known (max_tokens_inflight, the simulator's own, or vLLM's
// vllm:cache_config_info read from the engine at start-up) and off otherwise. true
// requires it: start-up fails when a capacity is unknown. false turns it off.
type WorkingSet struct {
	Enabled *bool         `koanf:"enabled"`
	High    float64       `koanf:"high"`    // admit while contexts fit this share of the KV cache (0.9)
	Suspend float64       `koanf:"suspend"` // suspend the newest programs past this share (1.0)
	Idle    time.Duration `koanf:"idle"`    // a program with no call for this long is done (60s)
	// Beta: a program waiting this many times its service to be admitted goes first (2).
	Beta float64 `koanf:"beta"`
	// Evict: such a program suspends programs between calls to get in at once.
	Evict bool `koanf:"evict"`
	// Graph: suspend the program whose next LLM call its execution graph predicts
	// furthest ahead, instead of the newest.
	Graph bool `koanf:"graph"`
	// FairShare: admit by agent, each present agent entitled to an equal share of the
	// set, and room kept for agents sending less than theirs (Agent Fair Share).
	// FairLend lets agents past their share use that room while no one waits for it.
	FairShare bool `koanf:"fair_share"`
	FairLend  bool `koanf:"fair_lend"`
	// FairHalfLife is how fast fair share forgets an agent's program arrivals (5m), and
	// FairLight the fraction of its weighted share of arrivals below which an agent is
	// light (0.8). Agents' shares follow scheduler.fair.weights.
	FairHalfLife time.Duration `koanf:"fair_half_life"`
	FairLight    float64       `koanf:"fair_light"`
	// Swap: a program that starts a long tool through the kernel, or is suspended, has
	// its KV copied to the engine's CPU tier and leaves the set; it is copied back and
	// readmitted just before the tool is expected to end. Needs every model to be a sim
	// model with kv_offload_gib, or one served by aios sim serve with kv_retention and
	// kv_offload.
	Swap bool `koanf:"swap"`
}

type LLMs struct {
	Default string  `koanf:"default"`
	Models  []Model `koanf:"models"`
}

// Model is one entry of llms.models. Several entries with the same name are several
// cores serving one model.
type Model struct {
	Name     string `koanf:"name"`
	Backend  string `koanf:"backend"`
	Hostname string `koanf:"hostname"`
	APIKey   string `koanf:"api_key"`
	// UpstreamModel is the model name sent to the backend when it differs from Name.
	UpstreamModel     string `koanf:"upstream_model"`
	Cores             int    `koanf:"cores"` // replicas of this entry
	MaxInflight       int    `koanf:"max_inflight"`
	MaxTokensInflight int    `koanf:"max_tokens_inflight"`
	// Timeout is how long the upstream may stay silent before the call fails.
	Timeout time.Duration `koanf:"timeout"`
	// Resume: the server continues a partial assistant message (vLLM's
	// continue_final_message); default true for vllm and sglang.
	Resume *bool `koanf:"resume"`
	// Priority: pass call priorities down (vLLM started with --scheduling-policy priority).
	Priority bool `koanf:"priority"`
	// KVRetention: the server takes the kernel's KV hints (aios sim serve): kv_ttl_ms,
	// kv_reuse_after_ms and kv_session on each call, and the end of each session.
	KVRetention bool `koanf:"kv_retention"`
	// KVOffload: the server behind an OpenAI-compatible model has a CPU KV tier and takes
	// the working set's swaps (aios sim serve --kv-offload-gib). Needs kv_retention.
	KVOffload bool `koanf:"kv_offload"`
	// MetricsAdmission: scrape the engine's Prometheus /metrics (MetricsURL, default the
	// hostname's /metrics) and hold new calls while it is saturated: waiting requests ≥
	// QueueThreshold (4) or KV usage ≥ KVThreshold (0.8), or metrics stale.
	MetricsAdmission bool    `koanf:"metrics_admission"`
	MetricsURL       string  `koanf:"metrics_url"`
	QueueThreshold   float64 `koanf:"queue_threshold"`
	KVThreshold      float64 `koanf:"kv_threshold"`
	// Sim backend: the engine profile (llama3-8b-h100, llama3-8b-a100, llama3-70b-4xh100,
	// test), its mode (vllm or naive), its own queue policy (fcfs or priority) and how
	// much faster than real time it runs.
	Profile   string  `koanf:"profile"`
	Mode      string  `koanf:"mode"`
	SimPolicy string  `koanf:"sim_policy"`
	Speed     float64 `koanf:"speed"`
	// KVOffloadGiB: host memory for the simulated engine's CPU KV offload tier (vLLM's
	// --kv-offloading-size); 0, the default, means none.
	KVOffloadGiB float64 `koanf:"kv_offload_gib"`

	// Provider limits each core of this entry is kept within: requests and tokens
	// (prompt plus completion) per minute. 0 means none.
	RPM int `koanf:"rpm"`
	TPM int `koanf:"tpm"`
	// Retries of calls that fail on the backend (429, 5xx, timeouts, dropped streams):
	// how many after the first attempt (default 3; 0 turns retries off) and the backoff
	// before the first, doubling up to retry_backoff_max.
	MaxRetries      *int          `koanf:"max_retries"`
	RetryBackoff    time.Duration `koanf:"retry_backoff"`
	RetryBackoffMax time.Duration `koanf:"retry_backoff_max"`
	// Circuit breaker: consecutive failures that take a core out while another core
	// serves the model (default 3; 0 turns it off), and the wait before the first
	// health probe, doubling up to breaker_cooldown_max.
	BreakerThreshold   *int          `koanf:"breaker_threshold"`
	BreakerCooldown    time.Duration `koanf:"breaker_cooldown"`
	BreakerCooldownMax time.Duration `koanf:"breaker_cooldown_max"`
}

// Defaults of the resilience settings when an entry leaves them out.
const (
	DefaultMaxRetries       = 3
	DefaultBreakerThreshold = 3
)

// Retries is the entry's max_retries, or the default.
func (m Model) Retries() int {
	if m.MaxRetries == nil {
		return DefaultMaxRetries
	}
	return *m.MaxRetries
}

// Breaker is the entry's breaker_threshold, or the default.
func (m Model) Breaker() int {
	if m.BreakerThreshold == nil {
		return DefaultBreakerThreshold
	}
	return *m.BreakerThreshold
}

// DefaultSimModel is the model served when no model is configured.
const DefaultSimModel = "sim-llama3-8b"

// Defaults returns the configuration used when nothing else is given.
func Defaults() Config {
	return Config{
		Server:    Server{Addr: "localhost:8000", MaxBodyBytes: 8 << 20, ShutdownTimeout: 30 * time.Second},
		DataDir:   defaultDataDir(),
		Log:       Log{Level: "info", Format: "text"},
		Scheduler: Scheduler{Policy: sched.DefaultPolicy, Routing: string(sched.DefaultRouting), TimeSlice: 500 * time.Millisecond, SyscallTimeout: 10 * time.Minute},
		Telemetry: Telemetry{ServiceName: "aios", SampleRatio: 1, ProgramIdle: 5 * time.Minute},
	}
}

func defaultDataDir() string {
	if d, err := os.UserHomeDir(); err == nil {
		return filepath.Join(d, ".aios")
	}
	return ".aios"
}

// sections are the top-level keys an AIOS_* variable can address: AIOS_SCHEDULER_TIME_SLICE
// is scheduler.time_slice, AIOS_DATA_DIR is data_dir.
var sections = []string{"server", "log", "scheduler", "llms", "api_keys", "storage", "memory", "embeddings", "tools", "telemetry", "agents", "access"}

func envKey(s string) string {
	s = strings.ToLower(strings.TrimPrefix(s, "AIOS_"))
	for _, sec := range sections {
		if strings.HasPrefix(s, sec+"_") {
			return sec + "." + strings.TrimPrefix(s, sec+"_")
		}
	}
	return s
}

// Load reads the configuration. path names the YAML file; when it is empty, ./aios.yaml
// is read if present. overrides (from flags) are applied last, by key.
func Load(path string, overrides map[string]any) (Config, error) {
	k := koanf.New(".")
	explicit := path != ""
	if !explicit {
		path = "aios.yaml"
	}
	if _, err := os.Stat(path); err == nil {
		if err := k.Load(file.Provider(path), yaml.Parser()); err != nil {
			return Config{}, fmt.Errorf("config file %s: %w", path, err)
		}
	} else if explicit {
		return Config{}, fmt.Errorf("config file %s: %w", path, err)
	}
	if err := k.Load(env.Provider("AIOS_", ".", envKey), nil); err != nil {
		return Config{}, fmt.Errorf("environment: %w", err)
	}
	for key, v := range overrides {
		if err := k.Set(key, v); err != nil {
			return Config{}, fmt.Errorf("flag %s: %w", key, err)
		}
	}
	cfg := Defaults()
	if err := k.UnmarshalWithConf("", &cfg, koanf.UnmarshalConf{Tag: "koanf"}); err != nil {
		return Config{}, fmt.Errorf("config: %w", err)
	}
	if err := cfg.normalise(k); err != nil {
		return Config{}, err
	}
	return cfg, nil
}

func (c *Config) normalise(k *koanf.Koanf) error {
	if !k.Exists("server.addr") && (c.Server.Host != "" || c.Server.Port != 0) {
		host, port := c.Server.Host, c.Server.Port
		if host == "" {
			host = "localhost"
		}
		if port == 0 {
			port = 8000
		}
		c.Server.Addr = host + ":" + strconv.Itoa(port)
	}
	if strings.HasPrefix(c.DataDir, "~/") {
		if d, err := os.UserHomeDir(); err == nil {
			c.DataDir = filepath.Join(d, c.DataDir[2:])
		}
	}
	if len(c.LLMs.Models) == 0 {
		c.LLMs.Models = []Model{{Name: DefaultSimModel, Backend: "sim"}}
	}
	var errs []error
	if ws := c.Scheduler.WorkingSet; ws.FairLend && !ws.FairShare {
		errs = append(errs, fmt.Errorf("scheduler.working_set.fair_lend applies to fair-share admission; set fair_share: true as well, or drop fair_lend"))
	}
	errs = append(errs, checkFairShare(c.Scheduler)...)
	for name := range c.Scheduler.Modules {
		switch name {
		case "llm", "memory", "storage", "tool":
		default:
			errs = append(errs, fmt.Errorf("scheduler.modules.%s: unknown module; the modules are llm, memory, storage and tool", name))
		}
	}
	errs = append(errs, normaliseStore("storage", &c.Storage.Backend, c.Storage.DSN, &c.Storage.Path, filepath.Join(c.DataDir, "storage.db"))...)
	if c.Memory.Backend == "" {
		c.Memory.Backend = c.Storage.Backend
		if c.Memory.DSN == "" {
			c.Memory.DSN = c.Storage.DSN
		}
	}
	errs = append(errs, normaliseStore("memory", &c.Memory.Backend, c.Memory.DSN, &c.Memory.Path, filepath.Join(c.DataDir, "memory.db"))...)
	if c.Access.Backend == "" {
		c.Access.Backend = c.Storage.Backend
		if c.Access.DSN == "" {
			c.Access.DSN = c.Storage.DSN
		}
	}
	errs = append(errs, normaliseStore("access", &c.Access.Backend, c.Access.DSN, &c.Access.Path, filepath.Join(c.DataDir, "access.db"))...)
	if c.Access.ApprovalTimeout < 0 {
		errs = append(errs, fmt.Errorf("access.approval_timeout %v: must not be negative", c.Access.ApprovalTimeout))
	}
	errs = append(errs, c.Access.checkQuotas(k)...)
	errs = append(errs, c.Scheduler.checkSLOs(k, c.Access.Auth)...)
	switch c.Memory.Context.Policy {
	case "", "summarize", "drop":
	default:
		errs = append(errs, fmt.Errorf("memory.context.policy %q: expected summarize or drop", c.Memory.Context.Policy))
	}
	if w, h := c.Memory.Context.Warning, c.Memory.Context.Hard; w < 0 || h < 0 || w > 1 || h > 1 || (w > 0 && h > 0 && w >= h) {
		errs = append(errs, fmt.Errorf("memory.context: warning (%v) and hard (%v) are shares of the budget, with warning below hard", w, h))
	}
	errs = append(errs, c.Tools.check()...)
	errs = append(errs, c.Telemetry.check()...)
	errs = append(errs, c.Agents.normalise(c.DataDir)...)
	if c.Embeddings.Core != "" {
		found := false
		for _, m := range c.LLMs.Models {
			found = found || m.Name == c.Embeddings.Core
		}
		if !found {
			errs = append(errs, fmt.Errorf("embeddings.core %q is not among llms.models", c.Embeddings.Core))
		}
	}
	for i := range c.LLMs.Models {
		m := &c.LLMs.Models[i]
		m.Backend = strings.ToLower(strings.TrimSpace(m.Backend))
		if m.Name == "" {
			errs = append(errs, fmt.Errorf("llms.models[%d]: name is required", i))
		}
		if m.APIKey == "" {
			m.APIKey = c.providerKey(m.Backend)
		}
		if m.Cores <= 0 {
			m.Cores = 1
		}
		if m.RPM < 0 || m.TPM < 0 || m.Retries() < 0 || m.Breaker() < 0 ||
			m.RetryBackoff < 0 || m.RetryBackoffMax < 0 || m.BreakerCooldown < 0 || m.BreakerCooldownMax < 0 {
			errs = append(errs, fmt.Errorf("llms.models[%d] (%s): rpm, tpm, max_retries, breaker_threshold and the backoff and cool-down durations must not be negative", i, m.Name))
		}
		if m.KVOffloadGiB < 0 || math.IsNaN(m.KVOffloadGiB) || math.IsInf(m.KVOffloadGiB, 0) {
			errs = append(errs, fmt.Errorf("llms.models[%d] (%s): kv_offload_gib %v: the CPU KV offload tier's size in GiB must be 0 (none) or more", i, m.Name, m.KVOffloadGiB))
		} else if m.KVOffloadGiB > 0 && m.Backend != "sim" {
			errs = append(errs, fmt.Errorf("llms.models[%d] (%s): kv_offload_gib applies to the sim backend only; a real engine's offload is configured on the engine (vLLM's --kv-offloading-size; for aios sim serve, --kv-offload-gib, declared here with kv_offload)", i, m.Name))
		}
		if m.KVOffload {
			switch {
			case m.Backend == "sim":
				errs = append(errs, fmt.Errorf("llms.models[%d] (%s): kv_offload declares the tier of a server the kernel calls over HTTP; a sim model's tier is kv_offload_gib", i, m.Name))
			case m.Backend == "anthropic" || m.Backend == "gemini":
				errs = append(errs, fmt.Errorf("llms.models[%d] (%s): kv_offload applies to OpenAI-compatible servers that take swap hints (aios sim serve), not to backend %s", i, m.Name, m.Backend))
			case !m.KVRetention:
				errs = append(errs, fmt.Errorf("llms.models[%d] (%s): kv_offload needs kv_retention: only a server that takes the KV hints (aios sim serve) takes swaps", i, m.Name))
			}
		}
	}
	if c.Scheduler.WorkingSet.Swap {
		for i, m := range c.LLMs.Models {
			if !(m.Backend == "sim" && m.KVOffloadGiB > 0) && !(m.KVOffload && m.KVRetention) {
				errs = append(errs, fmt.Errorf("scheduler.working_set.swap moves KV through a CPU tier, and llms.models[%d] (%s, backend %s) has none the kernel can drive: "+
					"give a sim model kv_offload_gib, or serve the model with aios sim serve --kv-offload-gib and set kv_retention and kv_offload on it; or drop swap", i, m.Name, m.Backend))
			}
		}
	}
	return errors.Join(errs...)
}

// check refuses a tools section that cannot work; the tool manager checks the rest
// (names, schemas, URLs) when it builds the tools.
func (t *Tools) check() []error {
	var errs []error
	known := map[string]bool{"calculator": true, "current_time": true, "http_fetch": true, "storage": true, "memory": true}
	for _, b := range t.Builtin {
		if !known[b] {
			errs = append(errs, fmt.Errorf("tools.builtin: unknown tool %q; the built-in tools are calculator, current_time, http_fetch, storage and memory", b))
		}
	}
	if t.MaxTurns < 0 {
		errs = append(errs, fmt.Errorf("tools.max_turns must not be negative"))
	}
	for i, d := range t.Destructive {
		if prefix, _ := strings.CutSuffix(d, "*"); d == "" || strings.Contains(prefix, "*") {
			errs = append(errs, fmt.Errorf("tools.destructive[%d] %q: give a tool name, or a pattern with one \"*\" at its end (as in \"server__*\")", i, d))
		}
	}
	names := map[string]bool{}
	for i, s := range t.MCP {
		switch {
		case s.Name == "":
			errs = append(errs, fmt.Errorf("tools.mcp[%d]: name is required", i))
		case names[s.Name]:
			errs = append(errs, fmt.Errorf("tools.mcp[%d]: server %q is configured twice", i, s.Name))
		case (s.Command == "") == (s.URL == ""):
			errs = append(errs, fmt.Errorf("tools.mcp[%d] (%s): give exactly one of command (stdio) or url (streamable HTTP)", i, s.Name))
		}
		names[s.Name] = true
	}
	return errs
}

// check fills the endpoint from the standard OTEL_* variables when the config names none,
// and refuses an endpoint or sample ratio that cannot work, so a typo fails at start-up
// instead of losing every span.
func (t *Telemetry) check() []error {
	if t.OTLPEndpoint == "" {
		if e := os.Getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"); e != "" {
			t.OTLPEndpoint = e
		} else if e := os.Getenv("OTEL_EXPORTER_OTLP_ENDPOINT"); e != "" {
			// The general endpoint is a base: the spec adds the signal's path to it.
			t.OTLPEndpoint = strings.TrimRight(e, "/") + "/v1/traces"
		}
	}
	var errs []error
	if t.OTLPEndpoint != "" {
		if _, err := t.EndpointURL(); err != nil {
			errs = append(errs, err)
		}
	}
	if t.SampleRatio < 0 || t.SampleRatio > 1 {
		errs = append(errs, fmt.Errorf("telemetry.sample_ratio %v: expected a share from 0 to 1", t.SampleRatio))
	}
	if t.ProgramIdle < 0 {
		errs = append(errs, fmt.Errorf("telemetry.program_idle must not be negative"))
	}
	return errs
}

// EndpointURL is OTLPEndpoint as the URL spans are posted to: a bare host:port gets its
// scheme (https, or http with OTLPInsecure), a URL without a path gets /v1/traces.
func (t Telemetry) EndpointURL() (*url.URL, error) {
	raw := strings.TrimSpace(t.OTLPEndpoint)
	if !strings.Contains(raw, "://") {
		scheme := "https://"
		if t.OTLPInsecure {
			scheme = "http://"
		}
		raw = scheme + raw
	}
	u, err := url.Parse(raw)
	switch {
	case err != nil:
		return nil, fmt.Errorf("telemetry.otlp_endpoint %q: %w", t.OTLPEndpoint, err)
	case u.Scheme != "http" && u.Scheme != "https":
		return nil, fmt.Errorf("telemetry.otlp_endpoint %q: the scheme must be http or https (OTLP over HTTP, for example http://localhost:4318)", t.OTLPEndpoint)
	case u.Hostname() == "":
		return nil, fmt.Errorf("telemetry.otlp_endpoint %q names no host (for example http://localhost:4318)", t.OTLPEndpoint)
	case u.RawQuery != "" || u.Fragment != "" || u.User != nil:
		return nil, fmt.Errorf("telemetry.otlp_endpoint %q: give a plain URL, without credentials, query or fragment (put an API key in telemetry.otlp_headers)", t.OTLPEndpoint)
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return nil, fmt.Errorf("telemetry.otlp_endpoint %q: port %q is not a port number", t.OTLPEndpoint, p)
		}
	}
	if u.Path == "" || u.Path == "/" {
		u.Path = "/v1/traces"
	}
	return u, nil
}

// normaliseStore checks a store section's backend (sqlite, the default, or postgres
// with a DSN) and fills its SQLite path.
func normaliseStore(section string, backend *string, dsn string, path *string, defaultPath string) []error {
	var errs []error
	switch *backend = strings.ToLower(strings.TrimSpace(*backend)); *backend {
	case "", "sqlite":
		*backend = "sqlite"
	case "postgres", "postgresql":
		*backend = "postgres"
		if dsn == "" {
			errs = append(errs, fmt.Errorf("%s.dsn is required with %s.backend postgres (for example postgres://user:pass@localhost:5432/aios)", section, section))
		}
	default:
		errs = append(errs, fmt.Errorf("%s.backend %q: expected sqlite or postgres", section, *backend))
	}
	if *path == "" {
		*path = defaultPath
	}
	return errs
}

// providerKey finds an API key for a backend in AIOS's api_keys section or the
// provider's usual environment variable.
func (c *Config) providerKey(backend string) string {
	provider := backend
	if backend == "vllm" || backend == "sglang" || backend == "ollama" {
		return ""
	}
	if k := c.APIKeys[provider]; k != "" {
		return k
	}
	switch provider {
	case "openai":
		return os.Getenv("OPENAI_API_KEY")
	case "anthropic":
		return os.Getenv("ANTHROPIC_API_KEY")
	case "gemini":
		return os.Getenv("GEMINI_API_KEY")
	}
	return ""
}

// checkFairShare refuses fair-share settings that cannot mean anything: a negative
// memory, a light threshold outside (0, 1], and agents' weights that are not positive
// (a share of nothing, or of less).
func checkFairShare(s Scheduler) []error {
	var errs []error
	ws := s.WorkingSet
	if (ws.FairHalfLife != 0 || ws.FairLight != 0) && !ws.FairShare {
		errs = append(errs, fmt.Errorf("scheduler.working_set.fair_half_life and fair_light apply to fair-share admission; set fair_share: true as well, or drop them"))
	}
	if ws.FairHalfLife < 0 {
		errs = append(errs, fmt.Errorf("scheduler.working_set.fair_half_life must not be negative, got %v", ws.FairHalfLife))
	}
	if ws.FairLight < 0 || ws.FairLight > 1 || math.IsNaN(ws.FairLight) {
		errs = append(errs, fmt.Errorf("scheduler.working_set.fair_light must be within (0, 1] (0: the default, 0.8), got %v", ws.FairLight))
	}
	for _, agent := range slices.Sorted(maps.Keys(s.Fair.Weights)) {
		if w := s.Fair.Weights[agent]; !(w > 0) || math.IsInf(w, 1) {
			errs = append(errs, fmt.Errorf("scheduler.fair.weights.%s must be a positive number, got %v", agent, w))
		}
	}
	return errs
}
