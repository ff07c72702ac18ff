// Command aios is the LLM agent operating-system kernel.
package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	root := &cobra.Command{
		Use:           "aios",
		Short:         "An operating-system kernel for LLM agents",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(serveCmd(), simCmd(), benchCmd(), mcpCmd(), agentsCmd(), topCmd(), versionCmd(),
		adminCmd(), auditCmd(), approvalsCmd())
	if err := root.Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "aios:", err)
		os.Exit(1)
	}
}

func versionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version",
		Run: func(cmd *cobra.Command, _ []string) {
			fmt.Fprintln(cmd.OutOrStdout(), "aios", version)
		},
	}
}
