package main

import (
	"context"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
)

// SIGHUP reloads the access manager's policies (docs/security.md), as daemons reread
// their configuration on it: an operator who edits a policy where the directory watch
// cannot see it (a network file system, a directory replaced whole) says when.

// watchHangup calls reload on every SIGHUP the process gets, until the returned stop is
// called. While it watches, SIGHUP no longer stops the process.
func watchHangup(reload func() error, log *slog.Logger) (stop func()) {
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGHUP)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		reloadOnHangup(ctx, sig, reload, log)
	}()
	return func() {
		signal.Stop(sig)
		cancel()
		<-done
	}
}

// reloadOnHangup calls reload for each signal on sig until ctx ends. A reload that
// fails keeps the policies in force; Policies.Reload logs and audits either outcome.
func reloadOnHangup(ctx context.Context, sig <-chan os.Signal, reload func() error, log *slog.Logger) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-sig:
			log.Info("SIGHUP: reloading the access policies")
			if err := reload(); err != nil {
				log.Warn("SIGHUP: the access policies were not reloaded; the previous set stays in force", "err", err)
			}
		}
	}
}
