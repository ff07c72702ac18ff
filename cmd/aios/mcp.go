package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/aios-go/aios/internal/config"
	"github.com/aios-go/aios/internal/mcpserver"
)

func mcpCmd() *cobra.Command {
	var url, agent string
	cmd := &cobra.Command{
		Use:   "mcp",
		Short: "Serve a running kernel's tools to an MCP client over stdin/stdout",
		Long: `Run an MCP server on stdin/stdout for a client that starts its servers as
commands (Claude Desktop, an IDE). Every tool call goes to the kernel at --url, as
--agent, so it is scheduled and accounted with every other agent's; start the kernel
first with "aios serve". stdout carries the protocol; logs go to stderr.

Example client configuration:
  {"command": "aios", "args": ["mcp", "--agent", "desktop"]}`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if agent == "" {
				agent = os.Getenv("AIOS_AGENT")
			}
			if agent == "" {
				return errors.New("mcp: name the agent the client acts as, with --agent or AIOS_AGENT")
			}
			// Nothing may write to stdout but the protocol.
			slog.SetDefault(slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), &slog.HandlerOptions{Level: slog.LevelWarn})))
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return runMCP(ctx, url, agent, cmd.InOrStdin(), cmd.OutOrStdout())
		},
	}
	cmd.Flags().StringVar(&url, "url", defaultKernelURL(), "URL of the running kernel")
	cmd.Flags().StringVar(&agent, "agent", "", "agent the client acts as (default $AIOS_AGENT)")
	return cmd
}

// defaultKernelURL is where "aios serve" listens when not configured otherwise.
func defaultKernelURL() string {
	addr := config.Defaults().Server.Addr
	if strings.HasPrefix(addr, ":") {
		addr = "localhost" + addr
	}
	return "http://" + addr
}

func runMCP(ctx context.Context, url, agent string, in io.Reader, out io.Writer) error {
	k, conn, err := mcpserver.Remote(ctx, url, agent, nil)
	if err != nil {
		return fmt.Errorf("%w (is the kernel running? start it with \"aios serve\")", err)
	}
	defer conn.Close()
	return mcpserver.ServeStdio(ctx, k, agent, in, out)
}
