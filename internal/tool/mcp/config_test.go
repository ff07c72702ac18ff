package mcp

import (
	"context"
	"strings"
	"testing"
	"time"
)

func TestValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  ServerConfig
		want string // substring of the error; "" means valid
	}{
		{"stdio", ServerConfig{Name: "fs", Command: "mcp-server-filesystem", Args: []string{"/tmp"}, Env: map[string]string{"A": "1"}}, ""},
		{"http", ServerConfig{Name: "remote-1", URL: "https://example.com/mcp", Headers: map[string]string{"Authorization": "Bearer x"}}, ""},
		{"single underscores", ServerConfig{Name: "my_server", Command: "x"}, ""},
		{"no name", ServerConfig{Command: "x"}, "name is empty"},
		{"bad char", ServerConfig{Name: "a/b", Command: "x"}, "letters, digits"},
		{"space", ServerConfig{Name: "a b", Command: "x"}, "letters, digits"},
		{"too long", ServerConfig{Name: strings.Repeat("a", 65), Command: "x"}, "1 to 64"},
		{"separator", ServerConfig{Name: "a__b", Command: "x"}, `must not contain "__"`},
		{"neither", ServerConfig{Name: "a"}, "set command"},
		{"both", ServerConfig{Name: "a", Command: "x", URL: "http://127.0.0.1/"}, "only one of command and url"},
		{"relative url", ServerConfig{Name: "a", URL: "/mcp"}, "absolute http or https"},
		{"ftp url", ServerConfig{Name: "a", URL: "ftp://host/mcp"}, "absolute http or https"},
		{"args with url", ServerConfig{Name: "a", URL: "http://127.0.0.1/", Args: []string{"x"}}, "command only"},
		{"headers with command", ServerConfig{Name: "a", Command: "x", Headers: map[string]string{"A": "b"}}, "url only"},
		{"bad env", ServerConfig{Name: "a", Command: "x", Env: map[string]string{"A=B": "c"}}, "not a valid variable"},
		{"negative timeout", ServerConfig{Name: "a", Command: "x", StartTimeout: -time.Second}, "start_timeout -1s is negative"},
		{"backoff over max", ServerConfig{Name: "a", Command: "x", RestartBackoff: time.Minute, MaxBackoff: time.Second}, "exceeds max_backoff"},
		{"all reported", ServerConfig{Name: "a__b", StartTimeout: -1}, "set command"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("valid config rejected: %v", err)
			case tc.want != "" && err == nil:
				t.Fatalf("invalid config accepted, want error containing %q", tc.want)
			case tc.want != "" && !strings.Contains(err.Error(), tc.want):
				t.Fatalf("error %q does not contain %q", err, tc.want)
			}
		})
	}
	// Every problem at once, so one edit of the config fixes them all.
	err := ServerConfig{Name: "a__b", StartTimeout: -1}.Validate()
	for _, want := range []string{`"__"`, "set command", "negative"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
	// Start refuses an invalid config before starting anything.
	if _, err := Start(context.Background(), ServerConfig{Name: "x"}, newRegistrar(), nil); err == nil {
		t.Fatal("Start accepted a config with neither command nor url")
	}
}

func TestDefaults(t *testing.T) {
	c := ServerConfig{Name: "a", Command: "x"}.withDefaults()
	if c.StartTimeout != 30*time.Second || c.RestartBackoff != 500*time.Millisecond || c.MaxBackoff != 30*time.Second {
		t.Fatalf("defaults: %+v", c)
	}
	for range 1000 {
		if d := jitter(time.Second); d < 500*time.Millisecond || d > time.Second {
			t.Fatalf("jitter(1s) = %v, want within [500ms, 1s]", d)
		}
	}
}
