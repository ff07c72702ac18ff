package e2e

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aios-go/aios/internal/testnpm"
)

// TestAccessNpmSDK starts `aios serve` with access.auth on, bootstraps an admin key with
// `aios admin key create` on the same data directory, registers an agent through the
// admin API and runs openai-npm/access.mjs: the openai SDK with the agent's key works,
// and after the key is revoked it gets 401 (AuthenticationError).
func TestAccessNpmSDK(t *testing.T) {
	testnpm.Package(t, "openai-npm", "openai")
	node := testnpm.Node(t)
	bin := aiosBinary(t)
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	cfg := filepath.Join(dir, "aios.yaml")
	if err := os.WriteFile(cfg, []byte("access:\n  auth: true\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, "admin", "key", "create", "--config", cfg, "--data-dir", data).Output()
	if err != nil {
		t.Fatalf("aios admin key create: %v", err)
	}
	admin := strings.TrimSpace(string(out))
	if !strings.HasPrefix(admin, "aios_admin_") {
		t.Fatalf("aios admin key create printed %q", admin)
	}
	k := startKernel(t, "--config", cfg, "--data-dir", data)

	// Without a key the kernel refuses; with the admin key it registers an agent.
	resp, err := http.Post(k.URL+"/v1/chat/completions", "application/json", strings.NewReader(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("no key: %d", resp.StatusCode)
	}
	out, err = exec.CommandContext(ctx, bin, "agents", "add", "e2e-agent", "--url", k.URL, "--admin-key", admin).Output()
	if err != nil {
		t.Fatalf("aios agents add: %v", err)
	}
	agentKey := strings.TrimSpace(string(out))
	req, _ := http.NewRequestWithContext(ctx, "GET", k.URL+"/admin/agents/e2e-agent/keys", nil)
	req.Header.Set("Authorization", "Bearer "+admin)
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var keys struct {
		Keys []struct {
			ID string `json:"id"`
		} `json:"keys"`
	}
	err = json.NewDecoder(resp.Body).Decode(&keys)
	resp.Body.Close()
	if err != nil || len(keys.Keys) != 1 {
		t.Fatalf("the agent's keys: %v %+v", err, keys)
	}

	cmd := exec.CommandContext(ctx, node, "--test", "access.mjs")
	cmd.Dir = testnpm.Folder("openai-npm")
	cmd.Env = append(os.Environ(), "AIOS_BASE_URL="+k.URL, "AIOS_AGENT_KEY="+agentKey,
		"AIOS_KEY_ID="+keys.Keys[0].ID, "AIOS_ADMIN_KEY="+admin)
	nout, err := runCmd(ctx, cmd)
	if err != nil {
		t.Fatalf("node --test access.mjs: %v\n%s", err, nout)
	}

	// The audit log recorded all of it, and its chain holds.
	vout, err := exec.CommandContext(ctx, bin, "audit", "verify", "--url", k.URL, "--admin-key", admin).CombinedOutput()
	if err != nil || !strings.Contains(string(vout), "verifies") {
		t.Fatalf("aios audit verify: %v\n%s", err, vout)
	}
}
