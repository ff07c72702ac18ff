package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/aios-go/aios/internal/access"
	"github.com/aios-go/aios/internal/config"
)

// The access manager's commands (docs/security.md): bootstrap an admin key on the
// kernel's own store, and use the admin API for agents, audit and approvals.

func adminCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "admin", Short: "Administer the access manager"}
	key := &cobra.Command{Use: "key", Short: "Admin keys"}
	var cfgPath, dataDir, name string
	create := &cobra.Command{
		Use:   "create",
		Short: "Issue an admin key on the kernel's access store (shown once)",
		Long: `Issue an admin key by opening the access manager's store directly: the
bootstrap, before any admin key exists. Whoever can open the data directory owns the
kernel anyway. Run it with the --config or --data-dir the kernel uses.`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			overrides := map[string]any{}
			if dataDir != "" {
				overrides["data_dir"] = dataDir
			}
			cfg, err := config.Load(cfgPath, overrides)
			if err != nil {
				return err
			}
			if err := os.MkdirAll(cfg.DataDir, 0o755); err != nil {
				return err
			}
			ctx := cmd.Context()
			m, err := access.Open(ctx, access.Options{
				Store: access.StoreConfig{Backend: cfg.Access.Backend, Path: cfg.Access.Path, DSN: cfg.Access.DSN},
			})
			if err != nil {
				return err
			}
			defer m.Close()
			k, info, err := m.Keys.Issue(ctx, access.KindAdmin, name)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "admin key %s for %s (shown once; keep it safe):\n", info.ID, name)
			fmt.Fprintln(cmd.OutOrStdout(), k)
			return nil
		},
	}
	f := create.Flags()
	f.StringVar(&cfgPath, "config", "", "the kernel's YAML configuration file")
	f.StringVar(&dataDir, "data-dir", "", "the kernel's data directory (default ~/.aios)")
	f.StringVar(&name, "name", "admin", "the admin's name, recorded in the audit log")
	key.AddCommand(create)
	cmd.AddCommand(key)
	return cmd
}

// adminKeyFlag is --admin-key, defaulting to $AIOS_ADMIN_KEY.
func adminKeyFlag(cmd *cobra.Command) *string {
	return cmd.Flags().String("admin-key", os.Getenv("AIOS_ADMIN_KEY"), "an admin key (default $AIOS_ADMIN_KEY)")
}

// adminCall sends a request to the admin API and decodes a 2xx reply into out.
func adminCall(ctx context.Context, method, url, key string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	setAdminKey(req, key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if err := adminAuthError(method+" "+url, resp.StatusCode, b, key); err != nil {
		return err
	}
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("%s %s: %s: %s", method, url, resp.Status, strings.TrimSpace(string(b)))
	}
	if out != nil && len(b) > 0 {
		return json.Unmarshal(b, out)
	}
	return nil
}

func agentsAddCmd() *cobra.Command {
	var tenant string
	var groups []string
	cmd := &cobra.Command{
		Use:   "add NAME",
		Short: "Register an agent through the admin API and print its API key (shown once)",
		Args:  cobra.ExactArgs(1),
	}
	url := kernelURLFlag(cmd)
	key := adminKeyFlag(cmd)
	cmd.Flags().StringVar(&tenant, "tenant", "", "the agent's tenant (default: default)")
	cmd.Flags().StringSliceVar(&groups, "group", nil, "a privilege group of the agent (repeatable)")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		var out struct {
			Key  string         `json:"key"`
			Info access.KeyInfo `json:"info"`
		}
		body := map[string]any{"name": args[0], "tenant": tenant, "groups": groups}
		if err := adminCall(cmd.Context(), "POST", strings.TrimRight(*url, "/")+"/admin/agents", *key, body, &out); err != nil {
			return err
		}
		fmt.Fprintf(cmd.ErrOrStderr(), "agent %s registered; key %s (shown once; keep it safe):\n", args[0], out.Info.ID)
		fmt.Fprintln(cmd.OutOrStdout(), out.Key)
		return nil
	}
	return cmd
}

func auditCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "audit", Short: "The access manager's audit log"}
	verify := &cobra.Command{Use: "verify", Short: "Check the audit log's hash chain", Args: cobra.NoArgs}
	url := kernelURLFlag(verify)
	key := adminKeyFlag(verify)
	verify.RunE = func(cmd *cobra.Command, _ []string) error {
		var out struct {
			OK      bool   `json:"ok"`
			Entries int64  `json:"entries"`
			Error   string `json:"error"`
		}
		req, err := http.NewRequestWithContext(cmd.Context(), "GET", strings.TrimRight(*url, "/")+"/admin/audit/verify", nil)
		if err != nil {
			return err
		}
		setAdminKey(req, *key)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if err := adminAuthError("GET /admin/audit/verify", resp.StatusCode, b, *key); err != nil {
			return err
		}
		if err := json.Unmarshal(b, &out); err != nil || (resp.StatusCode != 200 && resp.StatusCode != http.StatusConflict) {
			return fmt.Errorf("GET /admin/audit/verify: %s: %s", resp.Status, strings.TrimSpace(string(b)))
		}
		if !out.OK {
			return fmt.Errorf("the audit log does not verify after %d entries: %s", out.Entries, out.Error)
		}
		fmt.Fprintf(cmd.OutOrStdout(), "the audit log verifies: %d entries, hash chain intact\n", out.Entries)
		return nil
	}
	cmd.AddCommand(verify)
	return cmd
}

func approvalsCmd() *cobra.Command {
	var once bool
	cmd := &cobra.Command{
		Use:   "approvals",
		Short: "List pending approvals and decide each on the terminal (y/n/skip)",
		Args:  cobra.NoArgs,
	}
	url := kernelURLFlag(cmd)
	key := adminKeyFlag(cmd)
	cmd.Flags().BoolVar(&once, "once", false, "list the pending approvals and decide none")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		base := strings.TrimRight(*url, "/")
		var list struct {
			Data []access.Approval `json:"data"`
		}
		if err := adminCall(cmd.Context(), "GET", base+"/v1/approvals", *key, nil, &list); err != nil {
			return err
		}
		out := cmd.OutOrStdout()
		if len(list.Data) == 0 {
			fmt.Fprintln(out, "no pending approvals")
			return nil
		}
		in := bufio.NewReader(cmd.InOrStdin())
		for _, ap := range list.Data {
			fmt.Fprintf(out, "%s  %s wants to %s %s %s\n    why asked: %s; deadline in %s\n",
				ap.ID, ap.Principal, ap.Action, ap.Resource, ap.Path, ap.Reason, time.Until(ap.Deadline).Round(time.Second))
			if once {
				continue
			}
			fmt.Fprint(out, "approve? [y/n/skip] ")
			line, err := in.ReadString('\n')
			answer := strings.ToLower(strings.TrimSpace(line))
			var approve bool
			switch answer {
			case "y", "yes":
				approve = true
			case "n", "no":
			default:
				if err != nil {
					return nil // end of input
				}
				continue
			}
			var got access.Approval
			if err := adminCall(cmd.Context(), "POST", base+"/v1/approvals/"+ap.ID, *key,
				map[string]any{"approve": approve, "reason": "decided with aios approvals"}, &got); err != nil {
				fmt.Fprintln(cmd.ErrOrStderr(), err)
				continue
			}
			fmt.Fprintf(out, "    %s\n", got.Status)
		}
		return nil
	}
	return cmd
}
