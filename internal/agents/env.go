package agents

import (
	"encoding/json"
	"os"
	"sort"
	"strconv"
	"strings"
)

// Environment variables the runtime gives every agent (docs/agents.md).
const (
	EnvKernelURL   = "AIOS_KERNEL_URL"   // the kernel's base URL, e.g. http://127.0.0.1:8000
	EnvAgent       = "AIOS_AGENT"        // the agent's name: agent_name on /query, X-AIOS-Agent on /v1
	EnvAgentKey    = "AIOS_AGENT_KEY"    // the run's own API key (Options.Keys); empty when the kernel checks none
	EnvProgram     = "AIOS_PROGRAM"      // the program id: the session field / X-AIOS-Session
	EnvExecutionID = "AIOS_EXECUTION_ID" // the run's execution_id
	EnvTask        = "AIOS_TASK"         // the task (also written to stdin)
	EnvConfig      = "AIOS_CONFIG"       // agent_config as submitted, JSON
	EnvAgentDir    = "AIOS_AGENT_DIR"    // the package's folder (also the working directory)
)

// inherited are the kernel's own variables an agent gets; nothing else of the kernel's
// environment (its provider API keys, above all) reaches agents unless agents.pass_env
// names it.
var inherited = []string{"PATH", "HOME", "USER", "LOGNAME", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "TMPDIR", "TERM", "SYSTEMROOT"}

// childEnv is the environment of one run, in order of precedence (later wins): the
// inherited variables and pass_env, agents.env, the manifest's env, then the runtime's
// own, which neither an operator's setting nor a manifest can change.
func (r *Runtime) childEnv(run *run) []string {
	env := map[string]string{}
	for _, k := range append(inherited, r.opts.PassEnv...) {
		if v, ok := os.LookupEnv(k); ok {
			env[k] = v
		}
	}
	for k, v := range r.opts.Env {
		env[k] = v
	}
	for k, v := range run.pkg.Env {
		env[k] = v
	}
	base := strings.TrimRight(r.opts.KernelURL, "/")
	cfg, _ := json.Marshal(run.rec.Config)
	apiKey := run.key
	if apiKey == "" {
		// OpenAI's and Anthropic's SDKs refuse to start without a key; a kernel
		// without authentication checks none.
		apiKey = "aios"
	}
	for k, v := range map[string]string{
		EnvKernelURL:   base,
		EnvAgent:       run.pkg.Name,
		EnvAgentKey:    run.key,
		EnvProgram:     run.rec.Program,
		EnvExecutionID: strconv.FormatInt(run.rec.ExecutionID, 10),
		EnvTask:        run.rec.Task,
		EnvConfig:      string(cfg),
		EnvAgentDir:    run.pkg.Dir,
		// Unmodified OpenAI and Anthropic clients reach the kernel.
		"OPENAI_BASE_URL":    base + "/v1",
		"OPENAI_API_KEY":     apiKey,
		"ANTHROPIC_BASE_URL": base,
		"ANTHROPIC_API_KEY":  apiKey,
		// Python agents' prints reach the log as they happen, not at exit, and no
		// __pycache__ is written into the agent's folder, which may be read-only.
		"PYTHONUNBUFFERED":        "1",
		"PYTHONDONTWRITEBYTECODE": "1",
	} {
		env[k] = v
	}
	out := make([]string, 0, len(env))
	for k, v := range env {
		out = append(out, k+"="+v)
	}
	sort.Strings(out)
	return out
}
