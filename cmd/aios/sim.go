package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/aios-go/aios/internal/config"
	"github.com/aios-go/aios/internal/llm/sim"
)

func simCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "sim", Short: "The LLM engine simulator"}
	cmd.AddCommand(simServeCmd())
	return cmd
}

func simServeCmd() *cobra.Command {
	var cfg sim.Config
	var host string
	var port int
	var mode, policy, logLevel string
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Serve a simulated vLLM engine over its HTTP API",
		Long: `Serve the engine simulator as a standalone vLLM-compatible server:
/v1/chat/completions, /v1/completions, /v1/embeddings, /v1/models, /health and /metrics
(vLLM's metric names). Agents can call it directly, or the kernel can use it as an
openai/vllm backend, so both paths run on the very same engine. Beyond vLLM's API it
takes the kernel's KV hints: kv_session on each request, and POST
/v1/kv/sessions/{session}/end and /swap (docs/simulator.md, "Session hints"); give the
model kv_retention (and, with --kv-offload-gib, kv_offload) in the kernel's config.

Profiles: ` + strings.Join(sim.ProfileNames(), ", "),
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg.Mode, cfg.Policy = sim.Mode(mode), sim.Policy(policy)
			srv, err := sim.NewServer(cfg)
			if err != nil {
				return err
			}
			defer srv.Close()
			l, err := net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(port)))
			if err != nil {
				return err
			}
			log := newLogger(config.Log{Level: logLevel})
			live := srv.Live()
			log.Info("simulated engine listening", "addr", l.Addr().String(), "model", live.Model(),
				"profile", live.Profile().Name, "mode", live.Mode(), "policy", live.Policy(), "speed", cfg.Speed)
			hs := &http.Server{Handler: srv.Handler(), ReadHeaderTimeout: 10 * time.Second}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			errc := make(chan error, 1)
			go func() { errc <- hs.Serve(l) }()
			select {
			case err := <-errc:
				return err
			case <-ctx.Done():
			}
			sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := hs.Shutdown(sctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
				return fmt.Errorf("shutdown: %w", err)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfg.Profile, "profile", "llama3-8b-h100", "engine profile: "+strings.Join(sim.ProfileNames(), ", "))
	f.StringVar(&host, "host", "localhost", "host to listen on")
	f.IntVar(&port, "port", 8100, "port to listen on")
	f.StringVar(&mode, "mode", "vllm", "engine mode: vllm (paged KV cache, prefix caching, preemption) or naive (reserve per request, fail when full)")
	f.StringVar(&policy, "scheduling-policy", "fcfs", "engine queue policy: fcfs or priority (vLLM's --scheduling-policy)")
	f.Float64Var(&cfg.Speed, "speed", 1, "simulated seconds per wall-clock second (50 = fifty times faster)")
	f.StringVar(&cfg.Model, "model", "", "served model name (default: the profile's model)")
	f.Float64Var(&cfg.KVOffloadGiB, "kv-offload-gib", 0, "host memory for a CPU KV offload tier, in GiB (vLLM's --kv-offloading-size); 0: none")
	f.StringVar(&logLevel, "log-level", "info", "log level")
	return cmd
}
