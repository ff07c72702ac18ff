package telemetry

import (
	"context"
	"log/slog"
	"time"

	"github.com/aios-go/aios/internal/config"
	"github.com/aios-go/aios/internal/kernel"
)

// flushTimeout bounds the last flush at shutdown: a collector that is down must not hold
// up the kernel's exit for longer.
const flushTimeout = 5 * time.Second

// Start traces k's syscalls as cfg says: with no endpoint it does nothing. The returned
// function shuts the tracer down, sending what is left; call it after k has drained.
func Start(cfg config.Telemetry, k *kernel.Kernel, log *slog.Logger) (stop func(), err error) {
	if cfg.OTLPEndpoint == "" {
		return func() {}, nil
	}
	tr, err := New(cfg)
	if err != nil {
		return nil, err
	}
	tr.Watch(k)
	u, _ := cfg.EndpointURL()
	log.Info("tracing syscalls over OTLP", "endpoint", u.Redacted(), "service", cfg.ServiceName, "sample_ratio", cfg.SampleRatio)
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), flushTimeout)
		defer cancel()
		if err := tr.Shutdown(ctx); err != nil {
			log.Warn("traces not all sent", "error", err)
		}
	}, nil
}
