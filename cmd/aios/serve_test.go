package main

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/aios-go/aios/internal/config"
	"github.com/aios-go/aios/internal/testleak"
)

// The Gemini backend's dependencies start a goroutine for the life of the process.
func TestMain(m *testing.M) {
	if os.Getenv(keyedAgentEnv) != "" {
		os.Exit(keyedAgent()) // this binary is run as an agent by a test (runkeys_test.go)
	}
	goleak.VerifyTestMain(m, testleak.Ignore()...)
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func TestServeAnswersAndStops(t *testing.T) {
	base, stop := startServe(t, nil)
	resp, err := http.Post(base+"/query", "application/json", strings.NewReader(
		`{"agent_name":"a","query_type":"llm","query_data":{"messages":[{"role":"user","content":"hi"}],"max_new_tokens":3}}`))
	if err != nil {
		t.Fatal(err)
	}
	var body bytes.Buffer
	_, _ = body.ReadFrom(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(body.String(), `"finished":true`) {
		t.Fatalf("%d %s", resp.StatusCode, body.String())
	}
	stop()
}

// startServe runs serve on a free loopback address with the embedded defaults and the
// given config overrides, and waits until it answers. stop cancels it and waits for it
// to return, failing the test if it errs or hangs.
func startServe(t *testing.T, overrides map[string]any) (base string, stop func()) {
	t.Helper()
	t.Chdir(t.TempDir())
	addr := freeAddr(t)
	o := map[string]any{"server.addr": addr, "data_dir": t.TempDir(), "log.level": "error"}
	for k, v := range overrides {
		o[k] = v
	}
	cfg, err := config.Load("", o)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- serve(ctx, cfg) }()

	base = "http://" + addr
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := http.Get(base + "/status")
		if err == nil {
			resp.Body.Close()
			break
		}
		if time.Now().After(deadline) {
			cancel()
			t.Fatalf("server never answered: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return base, func() {
		t.Helper()
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("serve returned %v", err)
			}
		case <-time.After(15 * time.Second):
			t.Fatal("serve did not stop")
		}
		http.DefaultClient.CloseIdleConnections()
	}
}

func TestServeRefusesUnsupportedBackend(t *testing.T) {
	t.Chdir(t.TempDir())
	cfg, err := config.Load("", map[string]any{"data_dir": t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	cfg.LLMs.Models = []config.Model{{Name: "local", Backend: "huggingface", Cores: 1}}
	err = serve(context.Background(), cfg)
	if err == nil || !strings.Contains(err.Error(), "unsupported backend") {
		t.Fatalf("err = %v", err)
	}
}

func TestVersion(t *testing.T) {
	cmd := versionCmd()
	var out bytes.Buffer
	cmd.SetOut(&out)
	if err := cmd.Execute(); err != nil || !strings.HasPrefix(out.String(), "aios ") {
		t.Fatalf("%q %v", out.String(), err)
	}
}
