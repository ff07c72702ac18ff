package config

import (
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestAgentsSection(t *testing.T) {
	cfg, err := Load(writeFile(t, `
data_dir: /var/lib/aios
agents:
  dirs: [/srv/agents, ./more]
  python: /usr/bin/python3.12
  max_running: 4
  timeout: 10m
  limits: {memory_mb: 2048, cpu_seconds: 600, open_files: 256}
  restart: {policy: On-Failure, max_restarts: 2, backoff: 2s}
  env: {HTTP_PROXY: "http://proxy:3128"}
  pass_env: [HF_HOME]
`), nil)
	if err != nil {
		t.Fatal(err)
	}
	want := Agents{
		Dirs: []string{"/srv/agents", "./more"}, Python: "/usr/bin/python3.12", MaxRunning: 4, Timeout: 10 * time.Minute,
		Limits:  AgentLimits{MemoryMB: 2048, CPUSeconds: 600, OpenFiles: 256},
		Restart: AgentRestart{Policy: "on-failure", MaxRestarts: 2, Backoff: 2 * time.Second},
		Env:     map[string]string{"HTTP_PROXY": "http://proxy:3128"}, PassEnv: []string{"HF_HOME"},
	}
	if !reflect.DeepEqual(cfg.Agents, want) {
		t.Errorf("agents:\n got %+v\nwant %+v", cfg.Agents, want)
	}

	// Defaults: the data directory's agents folder, nothing limited, never restarted.
	cfg, err = Load(writeFile(t, "data_dir: /var/lib/aios\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(cfg.Agents.Dirs, []string{filepath.Join("/var/lib/aios", "agents")}) || cfg.Agents.Restart.Policy != "" {
		t.Errorf("defaults: %+v", cfg.Agents)
	}
}

func TestAgentsFromEnvironment(t *testing.T) {
	t.Setenv("AIOS_AGENTS_DIRS", "/a:/b")
	t.Setenv("AIOS_AGENTS_MAX_RUNNING", "2")
	cfg, err := Load(writeFile(t, ""), nil)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(cfg.Agents.Dirs, []string{"/a", "/b"}) || cfg.Agents.MaxRunning != 2 {
		t.Errorf("agents from AIOS_AGENTS_*: %+v", cfg.Agents)
	}
}

func TestAgentsRefused(t *testing.T) {
	for body, want := range map[string]string{
		"agents: {restart: {policy: always}}":       "agents.restart.policy",
		"agents: {restart: {max_restarts: 50}}":     "max_restarts",
		"agents: {limits: {memory_mb: -1}}":         "agents.limits",
		"agents: {max_running: -3}":                 "max_running",
		"agents: {env: {\"A=B\": x}}":               "agents.env",
		"agents: {restart: {backoff: 1h}}":          "backoff",
		"agents: {dirs: [\"/ok\", \"  \"]}":         "agents.dirs[1]",
		"agents: {restart: {policy: on-failure}}\n": "",
	} {
		_, err := Load(writeFile(t, body), nil)
		if want == "" {
			if err != nil {
				t.Errorf("%s: %v", body, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want an error about %s", body, err, want)
		}
	}
}
