package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/aios-go/aios/internal/access"
	"github.com/aios-go/aios/internal/agents"
	"github.com/aios-go/aios/internal/boot"
	"github.com/aios-go/aios/internal/config"
	"github.com/aios-go/aios/internal/kernel"
	"github.com/aios-go/aios/internal/metrics"
	"github.com/aios-go/aios/internal/sched"
	"github.com/aios-go/aios/internal/server"
	"github.com/aios-go/aios/internal/telemetry"
)

func serveCmd() *cobra.Command {
	var cfgPath string
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the kernel and its HTTP API",
		Long: `Run the kernel. With no configuration it serves the simulated model
sim-llama3-8b on localhost:8000: no GPU, no API key and no other server needed.

Configuration comes from a YAML file (--config, or ./aios.yaml when present; AIOS's
config.yaml shape is accepted), then AIOS_* environment variables
(AIOS_SCHEDULER_POLICY=rr, AIOS_SERVER_ADDR=:9000, AIOS_DATA_DIR=...), then flags.`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			overrides := map[string]any{}
			flagKeys := map[string]string{
				"addr": "server.addr", "data-dir": "data_dir", "policy": "scheduler.policy",
				"time-slice": "scheduler.time_slice", "log-level": "log.level", "log-format": "log.format",
			}
			for flag, key := range flagKeys {
				if f := cmd.Flags().Lookup(flag); f != nil && f.Changed {
					overrides[key] = f.Value.String()
				}
			}
			cfg, err := config.Load(cfgPath, overrides)
			if err != nil {
				return err
			}
			if insecure, _ := cmd.Flags().GetBool("insecure-no-auth"); insecure {
				cfg.Access.InsecureNoAuth = true
			}
			return serve(cmd.Context(), cfg)
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfgPath, "config", "", "YAML configuration file (default ./aios.yaml if present)")
	f.String("addr", "localhost:8000", "address to listen on, host:port")
	f.String("data-dir", "", "directory for the kernel's data (default ~/.aios)")
	f.String("policy", sched.DefaultPolicy, "the LLM module's scheduling policy: "+strings.Join(sched.PolicyNames(), ", "))
	f.Duration("time-slice", 0, "round-robin time slice (default 500ms)")
	f.String("log-level", "info", "log level: debug, info, warn, error")
	f.Bool("insecure-no-auth", false, "listen beyond loopback without authentication (access.insecure_no_auth)")
	f.String("log-format", "text", "log format: text or json")
	return cmd
}

func newLogger(c config.Log) *slog.Logger {
	var level slog.Level
	if err := level.UnmarshalText([]byte(c.Level)); err != nil {
		level = slog.LevelInfo
	}
	opts := &slog.HandlerOptions{Level: level}
	if strings.EqualFold(c.Format, "json") {
		return slog.New(slog.NewJSONHandler(os.Stderr, opts))
	}
	return slog.New(slog.NewTextHandler(os.Stderr, opts))
}

func serve(ctx context.Context, cfg config.Config) error {
	log := newLogger(cfg.Log)
	// Without authentication, only loopback: anyone who reaches the port could call
	// every model and read every agent's data (docs/security.md).
	if err := access.CheckListen(cfg.Server.Addr, cfg.Access.Auth, cfg.Access.InsecureNoAuth); err != nil {
		return err
	}
	if err := os.MkdirAll(cfg.DataDir, 0o755); err != nil {
		return fmt.Errorf("data directory: %w", err)
	}
	mx := metrics.New()
	sys, err := boot.Build(cfg, log, boot.OnEnd(mx.OnEnd))
	if err != nil {
		return err
	}
	k := sys.Kernel
	// The access manager closes after the kernel has drained (deferred first, so it runs
	// last): the syscalls that end in the drain release their quotas into it.
	defer func() {
		if err := sys.CloseAccess(); err != nil {
			log.Warn("closing the access manager", "error", err)
		}
	}()
	if sys.Access != nil {
		defer watchHangup(sys.Access.Policies.Reload, log)()
	}
	stopTracing, err := telemetry.Start(cfg.Telemetry, k, log)
	if err != nil {
		_ = k.Shutdown(context.Background())
		return err
	}
	defer stopTracing() // after the kernel has drained: the last syscalls' spans go too
	mc := cfg.Memory
	opts := server.Options{MaxBodyBytes: cfg.Server.MaxBodyBytes, Version: version, Logger: log,
		Memory: server.MemoryOptions{
			InjectAgents: mc.Inject.Agents, TopK: mc.Inject.TopK, MinScore: mc.Inject.MinScore, Tokens: mc.Inject.Tokens,
			ContextTokens: mc.Context.Tokens, ContextWarning: mc.Context.Warning, ContextHard: mc.Context.Hard,
			ContextPolicy: mc.Context.Policy,
		}}
	if sys.Storage != nil {
		opts.Shared, opts.Responses = sys.Storage, sys.Responses
	}
	src := metrics.Sources{Kernel: k}
	if sys.Memory != nil {
		opts.MemoryStats, src.Memory = sys.Memory, sys.Memory
	}
	if sys.Tools != nil {
		opts.Tools, opts.ToolTurns, opts.ToolStatus = sys.Tools, cfg.Tools.MaxTurns, sys.ToolStatus
		src.Tools = sys.Tools
	}
	mx.Watch(src)
	opts.Metrics = mx.Handler()
	opts.Embeddings = sys.Embeddings
	opts.Access = sys.Access
	l, err := net.Listen("tcp", cfg.Server.Addr)
	if err != nil {
		_ = k.Shutdown(context.Background())
		return err
	}
	// Agents reach the kernel at the address it listens on (docs/agents.md).
	agentRT, err := boot.Agents(cfg.Agents, k, sys.Access, agents.KernelURL(l.Addr()), log)
	if err != nil {
		l.Close()
		_ = k.Shutdown(context.Background())
		return err
	}
	stopAgents := func(context.Context) {}
	if agentRT != nil {
		opts.Agents = agentRT
		// Agents go first at shutdown: their processes are killed and their syscalls
		// cancelled, so the drain that follows does not wait on them.
		stopAgents = func(ctx context.Context) {
			if err := agentRT.Close(ctx); err != nil {
				log.Warn("stopping agents", "error", err)
			}
		}
	}
	srv := server.New(k, opts)
	log.Info("aios kernel listening", "addr", l.Addr().String(), "policy", k.Policy(),
		"models", k.Models(), "modules", k.Status().Modules, "data_dir", cfg.DataDir, "version", version)
	stopDiscovery := logDiscoveredModels(k, log)
	defer stopDiscovery()

	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(l) }()
	select {
	case err := <-errc:
		stopAgents(context.Background())
		_ = k.Shutdown(context.Background())
		return err
	case <-ctx.Done():
	}
	log.Info("shutting down: letting in-flight syscalls finish", "timeout", cfg.Server.ShutdownTimeout)
	sctx, cancel := context.WithTimeout(context.Background(), cfg.Server.ShutdownTimeout)
	defer cancel()
	stopAgents(sctx)
	err = srv.Shutdown(sctx)
	<-errc
	if err != nil && !strings.Contains(err.Error(), "deadline") {
		return err
	}
	log.Info("stopped")
	return nil
}

// logDiscoveredModels asks every backend which models it serves and logs the answers,
// in the background: a slow or unreachable backend must not hold up the start, and a
// model name that the server does not know shows up here before the first call fails.
// The returned function stops the asking and waits for it.
func logDiscoveredModels(k *kernel.Kernel, log *slog.Logger) func() {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for _, c := range k.Discover(ctx).Cores {
			if c.Error != "" {
				log.Debug("backend did not list its models", "core", c.Core, "error", c.Error)
				continue
			}
			ids := make([]string, len(c.Models))
			for i, m := range c.Models {
				ids[i] = m.ID
			}
			log.Info("backend serves", "core", c.Core, "host", c.Hostname, "models", ids)
		}
	}()
	return func() {
		cancel()
		<-done
	}
}
