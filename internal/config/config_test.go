package config

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func writeFile(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// An AIOS user's own config.yaml, with sections this kernel does not read, loads as is.
const aiosConfig = `
api_keys:
  openai: "sk-from-file"
  gemini: ""
llms:
  models:
    - name: "gpt-4o-mini"
      backend: "openai"
    - name: "qwen2.5:7b"
      backend: "ollama"
      hostname: "http://localhost:11434"
    - name: "meta-llama/Llama-3.1-8B-Instruct"
      backend: "vllm"
      hostname: "http://localhost:8091/v1"
    - name: "meta-llama/Llama-3.1-8B-Instruct"
      backend: "vllm"
      hostname: "http://localhost:8092"
  log_mode: "console"
  use_context_manager: false
memory:
  log_mode: "console"
storage:
  root_dir: "root"
  use_vector_db: true
scheduler:
  log_mode: "console"
server:
  host: "0.0.0.0"
  port: 8001
`

func TestLoadAIOSConfig(t *testing.T) {
	cfg, err := Load(writeFile(t, aiosConfig), nil)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Server.Addr != "0.0.0.0:8001" {
		t.Errorf("addr %q from host/port", cfg.Server.Addr)
	}
	if len(cfg.LLMs.Models) != 4 {
		t.Fatalf("models: %+v", cfg.LLMs.Models)
	}
	if m := cfg.LLMs.Models[0]; m.APIKey != "sk-from-file" || m.Backend != "openai" || m.Cores != 1 {
		t.Errorf("openai entry: %+v", m)
	}
	if m := cfg.LLMs.Models[1]; m.APIKey != "" || m.Hostname != "http://localhost:11434" {
		t.Errorf("ollama entry: %+v", m)
	}
	if cfg.Scheduler.Policy != "psjf" || cfg.Scheduler.TimeSlice != 500*time.Millisecond {
		t.Errorf("scheduler defaults lost: %+v", cfg.Scheduler)
	}
}

func TestDefaultsServeSim(t *testing.T) {
	t.Chdir(t.TempDir())
	cfg, err := Load("", nil)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Server.Addr != "localhost:8000" || len(cfg.LLMs.Models) != 1 || cfg.LLMs.Models[0].Backend != "sim" || cfg.LLMs.Models[0].Name != DefaultSimModel {
		t.Fatalf("%+v", cfg)
	}
	if cfg.Scheduler.Policy != "psjf" || cfg.Scheduler.Routing != "affinity" {
		t.Fatalf("default policy %q, routing %q; want psjf, affinity", cfg.Scheduler.Policy, cfg.Scheduler.Routing)
	}
}

func TestPrecedenceFileEnvFlags(t *testing.T) {
	p := writeFile(t, "scheduler:\n  policy: priority\n  time_slice: 2s\nserver:\n  addr: 127.0.0.1:9000\ndata_dir: /from/file\n")
	t.Setenv("AIOS_SCHEDULER_POLICY", "rr")
	t.Setenv("AIOS_DATA_DIR", "/from/env")
	cfg, err := Load(p, map[string]any{"data_dir": "/from/flag"})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Scheduler.Policy != "rr" || cfg.Scheduler.TimeSlice != 2*time.Second || cfg.DataDir != "/from/flag" || cfg.Server.Addr != "127.0.0.1:9000" {
		t.Fatalf("%+v", cfg)
	}
}

func TestLoadErrors(t *testing.T) {
	if _, err := Load(filepath.Join(t.TempDir(), "missing.yaml"), nil); err == nil {
		t.Error("a named config file that does not exist must fail")
	}
	if _, err := Load(writeFile(t, "llms: [unclosed"), nil); err == nil {
		t.Error("malformed YAML accepted")
	}
	_, err := Load(writeFile(t, "llms:\n  models:\n    - backend: openai\n"), nil)
	if err == nil || !strings.Contains(err.Error(), "name is required") {
		t.Errorf("model without a name: %v", err)
	}
	if _, err := Load(writeFile(t, "scheduler:\n  time_slice: often\n"), nil); err == nil {
		t.Error("a bad duration was accepted")
	}
}

func TestEnvKey(t *testing.T) {
	for in, want := range map[string]string{
		"AIOS_SCHEDULER_TIME_SLICE": "scheduler.time_slice",
		"AIOS_SERVER_ADDR":          "server.addr",
		"AIOS_DATA_DIR":             "data_dir",
		"AIOS_LLMS_DEFAULT":         "llms.default",
	} {
		if got := envKey(in); got != want {
			t.Errorf("envKey(%s) = %s, want %s", in, got, want)
		}
	}
}

func TestPolicyParameters(t *testing.T) {
	p := writeFile(t, `
scheduler:
  policy: fair
  routing: cache-aware
  max_bypass: 8
  working_set: {enabled: true, high: 0.85, beta: 4}
  plas: {queues: 5, quantum_base: 1s, quantum_ratio: 3, beta: 4}
  fair: {output_weight: 3, weights: {premium: 2}}
  psjf: {program_aging: 0.5}
`)
	cfg, err := Load(p, nil)
	if err != nil {
		t.Fatal(err)
	}
	s := cfg.Scheduler
	if s.Routing != "cache-aware" || s.MaxBypass != 8 || s.WorkingSet.Enabled == nil || !*s.WorkingSet.Enabled || s.WorkingSet.High != 0.85 || s.WorkingSet.Beta != 4 ||
		s.PLAS.Queues != 5 || s.PLAS.QuantumBase != time.Second || s.PLAS.Beta != 4 ||
		s.Fair.OutputWeight != 3 || s.Fair.Weights["premium"] != 2 || s.PSJF.ProgramAging != 0.5 {
		t.Fatalf("%+v", s)
	}
}

// Storage and memory: SQLite under the data directory by default; memory follows
// storage's backend; postgres without a DSN, an unknown backend or context policy, and
// an embeddings core that is not configured all stop the start.
func TestStoreSections(t *testing.T) {
	cfg, err := Load("", map[string]any{"data_dir": "/d"})
	if err != nil || cfg.Storage.Backend != "sqlite" || cfg.Storage.Path != "/d/storage.db" || cfg.Memory.Backend != "sqlite" || cfg.Memory.Path != "/d/memory.db" {
		t.Fatalf("defaults: %+v %+v %v", cfg.Storage, cfg.Memory, err)
	}
	cfg, err = Load(writeFile(t, "storage:\n  backend: PostgreSQL\n  dsn: postgres://x@h/db\n"), nil)
	if err != nil || cfg.Storage.Backend != "postgres" || cfg.Memory.Backend != "postgres" || cfg.Memory.DSN != "postgres://x@h/db" {
		t.Fatalf("memory follows storage: %+v %+v %v", cfg.Storage, cfg.Memory, err)
	}
	for _, bad := range []string{
		"storage:\n  backend: postgres\n",
		"memory:\n  backend: postgres\n",
		"storage:\n  backend: mysql\n",
		"memory:\n  context:\n    policy: forget\n",
		"memory:\n  context:\n    warning: 0.9\n    hard: 0.5\n",
		"embeddings:\n  core: nope\n",
		"scheduler:\n  modules:\n    disk: {policy: fifo}\n",
	} {
		if _, err := Load(writeFile(t, bad), nil); err == nil {
			t.Errorf("accepted:\n%s", bad)
		}
	}
}

// The tools section: MCP servers and HTTP tools load from YAML with their nested
// schemas; a server with both or neither transport, a duplicate server, an unknown
// built-in, a negative turn bound and a malformed destructive pattern stop the start.
func TestToolsSection(t *testing.T) {
	cfg, err := Load(writeFile(t, `tools:
  fetch_allow: ["*.example.com"]
  destructive: [everything__*, fs_delete]
  per_tool:
    "everything__*": {concurrency: 2, timeout: 5s}
  mcp:
    - name: everything
      command: npx
      args: ["-y", "@modelcontextprotocol/server-everything"]
  http:
    - name: weather
      url: https://api.example.com/{city}
      parameters:
        type: object
        properties: {city: {type: string}}
        required: [city]
`), nil)
	if err != nil {
		t.Fatal(err)
	}
	tl := cfg.Tools
	if len(tl.MCP) != 1 || tl.MCP[0].Args[1] != "@modelcontextprotocol/server-everything" || tl.PerTool["everything__*"].Concurrency != 2 ||
		tl.PerTool["everything__*"].Timeout != 5*time.Second || tl.HTTP[0].Parameters["required"].([]any)[0] != "city" ||
		len(tl.Destructive) != 2 || tl.Destructive[0] != "everything__*" {
		t.Fatalf("tools: %+v", tl)
	}
	for _, bad := range []string{
		"tools:\n  mcp:\n    - name: a\n",
		"tools:\n  mcp:\n    - {name: a, command: x, url: http://h}\n",
		"tools:\n  mcp:\n    - {command: x}\n",
		"tools:\n  mcp:\n    - {name: a, command: x}\n    - {name: a, command: y}\n",
		"tools:\n  builtin: [shell]\n",
		"tools:\n  max_turns: -1\n",
		"tools:\n  destructive: [\"a*b\"]\n",
		"tools:\n  destructive: [\"\"]\n",
	} {
		if _, err := Load(writeFile(t, bad), nil); err == nil {
			t.Errorf("accepted:\n%s", bad)
		}
	}
}

func TestTelemetrySection(t *testing.T) {
	t.Setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "")
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "")
	cfg, err := Load(writeFile(t, ""), nil)
	if err != nil {
		t.Fatal(err)
	}
	if tm := cfg.Telemetry; tm.OTLPEndpoint != "" || tm.ServiceName != "aios" || tm.SampleRatio != 1 || tm.ProgramIdle != 5*time.Minute {
		t.Fatalf("defaults: tracing must be off, with service aios and every program sampled: %+v", tm)
	}

	t.Setenv("AIOS_TELEMETRY_OTLP_ENDPOINT", "http://collector:4318")
	t.Setenv("AIOS_TELEMETRY_SAMPLE_RATIO", "0.25")
	cfg, err = Load(writeFile(t, "telemetry:\n  service_name: kernel-a\n  otlp_headers: {x-api-key: secret}\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	u, err := cfg.Telemetry.EndpointURL()
	if err != nil || u.String() != "http://collector:4318/v1/traces" || cfg.Telemetry.SampleRatio != 0.25 ||
		cfg.Telemetry.ServiceName != "kernel-a" || cfg.Telemetry.OTLPHeaders["x-api-key"] != "secret" {
		t.Fatalf("%+v %v %v", cfg.Telemetry, u, err)
	}
	// Unset, not empty: koanf reads an empty AIOS_* variable as an empty value.
	os.Unsetenv("AIOS_TELEMETRY_OTLP_ENDPOINT")
	os.Unsetenv("AIOS_TELEMETRY_SAMPLE_RATIO")

	for _, c := range []struct {
		tm   Telemetry
		want string
	}{
		{Telemetry{OTLPEndpoint: "localhost:4318"}, "https://localhost:4318/v1/traces"},
		{Telemetry{OTLPEndpoint: "localhost:4318", OTLPInsecure: true}, "http://localhost:4318/v1/traces"},
		{Telemetry{OTLPEndpoint: "https://otlp.example.com/api/otel/v1/traces"}, "https://otlp.example.com/api/otel/v1/traces"},
		{Telemetry{OTLPEndpoint: "http://127.0.0.1:4318/"}, "http://127.0.0.1:4318/v1/traces"},
	} {
		if u, err := c.tm.EndpointURL(); err != nil || u.String() != c.want {
			t.Errorf("%q: %v %v, want %s", c.tm.OTLPEndpoint, u, err, c.want)
		}
	}

	// A malformed endpoint stops the kernel at start-up rather than dropping every span.
	for _, bad := range []string{
		"telemetry:\n  otlp_endpoint: \"http://localhost:43 18\"\n",
		"telemetry:\n  otlp_endpoint: grpc://localhost:4317\n",
		"telemetry:\n  otlp_endpoint: \"http://:4318\"\n",
		"telemetry:\n  otlp_endpoint: http://localhost:99999\n",
		"telemetry:\n  otlp_endpoint: \"http://user:pw@localhost:4318\"\n",
		"telemetry:\n  sample_ratio: 1.5\n",
		"telemetry:\n  program_idle: -1s\n",
	} {
		if _, err := Load(writeFile(t, bad), nil); err == nil || !strings.Contains(err.Error(), "telemetry.") {
			t.Errorf("accepted, or not blamed on telemetry: %v\n%s", err, bad)
		}
	}

	// The standard OpenTelemetry variables turn tracing on when the config names no
	// endpoint; the general one is a base the traces path is added to.
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://otel:4318/")
	if cfg, err = Load(writeFile(t, ""), nil); err != nil || cfg.Telemetry.OTLPEndpoint != "http://otel:4318/v1/traces" {
		t.Fatalf("OTEL_EXPORTER_OTLP_ENDPOINT: %q %v", cfg.Telemetry.OTLPEndpoint, err)
	}
	t.Setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://traces:4318/custom")
	if cfg, err = Load(writeFile(t, ""), nil); err != nil || cfg.Telemetry.OTLPEndpoint != "http://traces:4318/custom" {
		t.Fatalf("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: %q %v", cfg.Telemetry.OTLPEndpoint, err)
	}
	if cfg, err = Load(writeFile(t, "telemetry:\n  otlp_endpoint: http://mine:4318\n"), nil); err != nil || cfg.Telemetry.OTLPEndpoint != "http://mine:4318" {
		t.Fatalf("the config's endpoint must win over OTEL_*: %q %v", cfg.Telemetry.OTLPEndpoint, err)
	}
}

// Fair-share admission is read from the working set's section; lending without fair
// share would do nothing, so it stops the start.
func TestWorkingSetFairShare(t *testing.T) {
	cfg, err := Load(writeFile(t, "scheduler:\n  working_set: {fair_share: true, fair_lend: true}\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if ws := cfg.Scheduler.WorkingSet; !ws.FairShare || !ws.FairLend {
		t.Fatalf("%+v", ws)
	}
	_, err = Load(writeFile(t, "scheduler:\n  working_set: {fair_lend: true}\n"), nil)
	if err == nil || !strings.Contains(err.Error(), "fair_share") {
		t.Fatalf("fair_lend without fair_share: %v", err)
	}
	cfg, err = Load(writeFile(t, "scheduler:\n  fair: {weights: {a: 3}}\n  working_set: {fair_share: true, fair_half_life: 2m, fair_light: 0.5}\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if ws := cfg.Scheduler.WorkingSet; ws.FairHalfLife != 2*time.Minute || ws.FairLight != 0.5 || cfg.Scheduler.Fair.Weights["a"] != 3 {
		t.Fatalf("%+v %v", ws, cfg.Scheduler.Fair.Weights)
	}
	for _, bad := range []struct{ yaml, want string }{
		{"working_set: {fair_share: true, fair_half_life: -1m}", "fair_half_life must not be negative"},
		{"working_set: {fair_share: true, fair_light: 1.5}", "fair_light must be within"},
		{"working_set: {fair_share: true, fair_light: -0.1}", "fair_light must be within"},
		{"working_set: {fair_light: 0.5}", "set fair_share: true"},
		{"fair: {weights: {a: 0}}\n  working_set: {fair_share: true}", "weights.a must be a positive number"},
		{"fair: {weights: {b: -2}}", "weights.b must be a positive number"},
	} {
		_, err := Load(writeFile(t, "scheduler:\n  "+bad.yaml+"\n"), nil)
		if err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("%s: got %v, want an error saying %q", bad.yaml, err, bad.want)
		}
	}
}

// Swapping through a CPU tier needs every model to have one the kernel can drive.
func TestWorkingSetSwapNeedsTiers(t *testing.T) {
	cfg, err := Load(writeFile(t, "scheduler:\n  working_set: {swap: true}\nllms:\n  models:\n    - {name: s, backend: sim, kv_offload_gib: 1}\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if !cfg.Scheduler.WorkingSet.Swap {
		t.Fatalf("%+v", cfg.Scheduler.WorkingSet)
	}
	_, err = Load(writeFile(t, "scheduler:\n  working_set: {swap: true}\nllms:\n  models:\n    - {name: s, backend: sim}\n"), nil)
	if err == nil || !strings.Contains(err.Error(), "swap") || !strings.Contains(err.Error(), "kv_offload_gib") {
		t.Fatalf("swap with a model without a tier: %v", err)
	}
	// An OpenAI-compatible model declared to be served by aios sim serve with a tier.
	served := "scheduler:\n  working_set: {swap: true}\nllms:\n  models:\n    - {name: s, backend: vllm, hostname: 'http://localhost:8100/v1', %s}\n"
	if _, err := Load(writeFile(t, fmt.Sprintf(served, "kv_retention: true, kv_offload: true")), nil); err != nil {
		t.Fatalf("swap over aios sim serve with kv_offload: %v", err)
	}
	if _, err := Load(writeFile(t, fmt.Sprintf(served, "kv_retention: true")), nil); err == nil || !strings.Contains(err.Error(), "kv_offload") {
		t.Fatalf("swap over a served model without kv_offload: %v", err)
	}
}

// kv_offload declares a tier behind an OpenAI-compatible server that takes the hints.
func TestKVOffloadDeclaration(t *testing.T) {
	for model, want := range map[string]string{
		"{name: v, backend: vllm, hostname: 'http://h/v1', kv_offload: true}":                     "needs kv_retention",
		"{name: s, backend: sim, kv_offload: true, kv_retention: true}":                           "kv_offload_gib",
		"{name: a, backend: anthropic, kv_offload: true, kv_retention: true}":                     "OpenAI-compatible",
		"{name: v, backend: vllm, hostname: 'http://h/v1', kv_offload: true, kv_retention: true}": "",
	} {
		_, err := Load(writeFile(t, "llms:\n  models:\n    - "+model+"\n"), nil)
		if want == "" && err != nil || want != "" && (err == nil || !strings.Contains(err.Error(), want)) {
			t.Errorf("%s: %v, want %q", model, err, want)
		}
	}
}
