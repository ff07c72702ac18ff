package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/aios-go/aios/api"
	"github.com/aios-go/aios/internal/agents"
)

func agentsCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "agents",
		Short: "Run agents against a kernel, and list the kernel's agent runs",
	}
	cmd.AddCommand(agentsRunCmd(), agentsPsCmd(), agentsAddCmd())
	return cmd
}

func kernelURLFlag(cmd *cobra.Command) *string {
	def := os.Getenv("AIOS_KERNEL_URL")
	if def == "" {
		def = "http://localhost:8000"
	}
	return cmd.Flags().String("url", def, "the kernel's base URL (default $AIOS_KERNEL_URL or http://localhost:8000)")
}

func agentsRunCmd() *cobra.Command {
	var (
		task, python, restart  string
		timeout                time.Duration
		limits                 api.AgentLimits
		maxRestarts            int
		asJSON                 bool
		killGrace, waitForExit time.Duration
		adminKey               *string
	)
	cmd := &cobra.Command{
		Use:   "run DIR --task TEXT",
		Short: "Run the agent in DIR against a running kernel and print its result",
		Long: `Run one agent package as a supervised child process of this command, pointed at a
running kernel (--url): an AIOS agent folder (config.json, the entry file, meta_requirements.txt)
or any executable described by aios-agent.json. Its environment carries the kernel's URL, the
agent's name and a program id, so its syscalls are scheduled as one program (docs/agents.md).

The agent's output goes to stderr as it comes; its result (an AIOS agent's run() return value,
as JSON) to stdout. The exit status is 0 only when the agent exited 0. Ctrl-C stops the agent
(SIGTERM, then SIGKILL).

When the kernel has access.auth on, pass an admin key (--admin-key or $AIOS_ADMIN_KEY): the
run gets its own agent key, issued through the admin API as it starts (the agent is
registered in tenant default when it is new) and revoked when it ends.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			url := strings.TrimRight(cmd.Flag("url").Value.String(), "/")
			if strings.TrimSpace(task) == "" {
				return errors.New("--task is required: the text the agent works on")
			}
			pkg, err := agents.Load(args[0])
			if err != nil {
				return err
			}
			if err := pingKernel(cmd.Context(), url); err != nil {
				return err
			}
			stderr := cmd.ErrOrStderr()
			// With authentication on, the run gets its own agent key through the admin API.
			keys, err := runKeys(cmd.Context(), url, *adminKey, stderr)
			if err != nil {
				return err
			}
			rt, err := agents.New(agents.Options{
				KernelURL: url, Python: python, KillGrace: killGrace, Keys: keys,
				OnLog: func(_ int64, l api.AgentLogLine) { fmt.Fprintln(stderr, l.Text) },
				// The program is over: the kernel frees its place at once.
				Ended: func(program string) { endSession(url, program, *adminKey) },
			})
			if err != nil {
				return err
			}
			defer func() {
				ctx, cancel := context.WithTimeout(context.Background(), waitForExit)
				defer cancel()
				_ = rt.Close(ctx)
			}()
			spec := agents.Spec{AgentID: args[0], Package: pkg, Task: task, Limits: limits, Timeout: timeout,
				Config: map[string]any{"task": task}}
			if restart != "" {
				spec.Restart = &api.AgentRestart{Policy: restart, MaxRestarts: maxRestarts}
			}
			rec, err := rt.Start(spec)
			if err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			rec, err = rt.Wait(ctx, rec.ExecutionID)
			if err != nil {
				// Interrupted: stop the agent, and report how it ended.
				cctx, cancel := context.WithTimeout(context.Background(), waitForExit)
				defer cancel()
				rec, _ = rt.Cancel(cctx, rec.ExecutionID)
			}
			out := cmd.OutOrStdout()
			if asJSON {
				enc := json.NewEncoder(out)
				enc.SetIndent("", "  ")
				if err := enc.Encode(rec); err != nil {
					return err
				}
			} else if rec.Result != nil {
				fmt.Fprintln(out, string(rec.Result))
			}
			if rec.State != api.AgentExited {
				return fmt.Errorf("agent %s %s: %s", rec.AgentName, rec.State, rec.Error)
			}
			return nil
		},
	}
	kernelURLFlag(cmd)
	adminKey = adminKeyFlag(cmd)
	f := cmd.Flags()
	f.StringVar(&task, "task", "", "the task: AIOS agents get it as run()'s argument, executables on stdin and in AIOS_TASK")
	f.StringVar(&python, "python", "python3", "the Python that runs AIOS agent folders")
	f.DurationVar(&timeout, "timeout", 0, "stop the agent after this long (0: never)")
	f.Int64Var(&limits.MemoryMB, "memory-mb", 0, "address-space limit in MiB (RLIMIT_AS; 0: none)")
	f.Int64Var(&limits.CPUSeconds, "cpu-seconds", 0, "CPU-time limit (RLIMIT_CPU; 0: none)")
	f.Int64Var(&limits.OpenFiles, "open-files", 0, "open-files limit (RLIMIT_NOFILE; 0: as inherited)")
	f.StringVar(&restart, "restart", "", "restart policy: never or on-failure")
	f.IntVar(&maxRestarts, "max-restarts", 0, "restarts at most, with --restart on-failure (default 3)")
	f.BoolVar(&asJSON, "json", false, "print the run's whole record as JSON instead of its result")
	f.DurationVar(&killGrace, "kill-grace", agents.DefaultKillGrace, "wait between SIGTERM and SIGKILL when the agent is stopped")
	f.DurationVar(&waitForExit, "stop-timeout", 15*time.Second, "how long to wait for a stopped agent to be gone")
	return cmd
}

// pingKernel checks that a kernel answers at url, so a wrong --url fails before the
// agent starts rather than inside it.
func pingKernel(ctx context.Context, url string) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url+"/status", nil)
	if err != nil {
		return fmt.Errorf("--url %s: %w", url, err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("no kernel answers at %s (start one with `aios serve`, or pass --url): %w", url, err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s/status answered %s: is that an aios kernel?", url, resp.Status)
	}
	return nil
}

// endSession tells the kernel a program is over (DELETE /sessions/{id}); best effort.
// With authentication on, any key will do; the run's own is revoked by then, so the
// admin key goes.
func endSession(url, program, adminKey string) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodDelete, url+"/sessions/"+program, nil)
	if err != nil {
		return
	}
	setAdminKey(req, adminKey)
	if resp, err := http.DefaultClient.Do(req); err == nil {
		resp.Body.Close()
	}
}

func agentsPsCmd() *cobra.Command {
	var asJSON bool
	var adminKey *string
	cmd := &cobra.Command{
		Use:   "ps",
		Short: "List the kernel's agent runs (GET /agents/ps; an admin key with access.auth on)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			url := strings.TrimRight(cmd.Flag("url").Value.String(), "/")
			ctx, cancel := context.WithTimeout(cmd.Context(), 10*time.Second)
			defer cancel()
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, url+"/agents/ps", nil)
			if err != nil {
				return err
			}
			setAdminKey(req, *adminKey)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				return fmt.Errorf("no kernel answers at %s: %w", url, err)
			}
			defer resp.Body.Close()
			b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
			if err != nil {
				return err
			}
			if err := adminAuthError("GET "+url+"/agents/ps", resp.StatusCode, b, *adminKey); err != nil {
				return err
			}
			if resp.StatusCode != http.StatusOK {
				var e api.ErrorBody
				if json.Unmarshal(b, &e) == nil && e.Detail != "" {
					return fmt.Errorf("%s: %s", resp.Status, e.Detail)
				}
				return fmt.Errorf("GET %s/agents/ps: %s", url, resp.Status)
			}
			var list api.AgentList
			if err := json.Unmarshal(b, &list); err != nil {
				return fmt.Errorf("GET %s/agents/ps: %w", url, err)
			}
			out := cmd.OutOrStdout()
			if asJSON {
				enc := json.NewEncoder(out)
				enc.SetIndent("", "  ")
				return enc.Encode(list)
			}
			tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tAGENT\tSTATE\tPID\tRESTARTS\tSTARTED\tTASK")
			for _, p := range list.Processes {
				started := "-"
				if p.Started != nil {
					started = p.Started.Local().Format("15:04:05")
				}
				pid := "-"
				if p.State == api.AgentRunning {
					pid = fmt.Sprint(p.PID)
				}
				fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%d\t%s\t%s\n", p.ExecutionID, p.AgentName, p.State, pid, p.Restarts, started, shorten(p.Task, 40))
			}
			return tw.Flush()
		},
	}
	kernelURLFlag(cmd)
	adminKey = adminKeyFlag(cmd)
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the kernel's answer as JSON")
	return cmd
}

func shorten(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if r := []rune(s); len(r) > n {
		return string(r[:n-1]) + "…"
	}
	return s
}
