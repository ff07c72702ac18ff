package mcp

import (
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/aios-go/aios/internal/tool"
)

// ServerConfig says how to reach one MCP server. Exactly one of Command (a subprocess
// speaking stdio) and URL (streamable HTTP) is set.
type ServerConfig struct {
	// Name is the server's namespace: its tools are registered as Name__tool.
	Name string

	Command string
	Args    []string
	Env     map[string]string // added to the kernel's environment
	Dir     string

	URL     string
	Headers map[string]string

	// StartTimeout bounds connect, initialize and the first tools/list; 0 means 30s.
	StartTimeout time.Duration
	// RestartBackoff is the first wait before a restart (0 means 500ms); it doubles, with
	// jitter, up to MaxBackoff (0 means 30s).
	RestartBackoff time.Duration
	MaxBackoff     time.Duration
}

const (
	defaultStartTimeout   = 30 * time.Second
	defaultRestartBackoff = 500 * time.Millisecond
	defaultMaxBackoff     = 30 * time.Second
)

// The name becomes the prefix of function names offered to LLM APIs, which accept only
// these characters; "__" would make "a__b__c" ambiguous between servers.
var validName = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// Validate reports every problem with the config at once, so one edit fixes them all.
func (c ServerConfig) Validate() error {
	var errs []error
	switch {
	case c.Name == "":
		errs = append(errs, errors.New("name is empty"))
	case !validName.MatchString(c.Name):
		errs = append(errs, fmt.Errorf("name %q must be 1 to 64 letters, digits, '_' or '-'", c.Name))
	case strings.Contains(c.Name, tool.Separator):
		errs = append(errs, fmt.Errorf("name %q must not contain %q, which separates server and tool names", c.Name, tool.Separator))
	}
	switch {
	case c.Command == "" && c.URL == "":
		errs = append(errs, errors.New("set command (a server over stdio) or url (streamable HTTP)"))
	case c.Command != "" && c.URL != "":
		errs = append(errs, errors.New("set only one of command and url"))
	case c.URL != "":
		if u, err := url.Parse(c.URL); err != nil {
			errs = append(errs, fmt.Errorf("url: %v", err))
		} else if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			errs = append(errs, fmt.Errorf("url %q must be an absolute http or https URL", c.URL))
		}
		if len(c.Args) > 0 || len(c.Env) > 0 || c.Dir != "" {
			errs = append(errs, errors.New("args, env and dir apply to command only, not to url"))
		}
	case c.Command != "":
		if len(c.Headers) > 0 {
			errs = append(errs, errors.New("headers apply to url only, not to command"))
		}
	}
	for k := range c.Env {
		if k == "" || strings.ContainsAny(k, "=\x00") {
			errs = append(errs, fmt.Errorf("env name %q is not a valid variable name", k))
		}
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"start_timeout", c.StartTimeout}, {"restart_backoff", c.RestartBackoff}, {"max_backoff", c.MaxBackoff}} {
		if d.v < 0 {
			errs = append(errs, fmt.Errorf("%s %v is negative", d.name, d.v))
		}
	}
	if c.RestartBackoff > 0 && c.MaxBackoff > 0 && c.RestartBackoff > c.MaxBackoff {
		errs = append(errs, fmt.Errorf("restart_backoff %v exceeds max_backoff %v", c.RestartBackoff, c.MaxBackoff))
	}
	if len(errs) > 0 {
		return fmt.Errorf("MCP server %q: %w", c.Name, errors.Join(errs...))
	}
	return nil
}

func (c ServerConfig) withDefaults() ServerConfig {
	if c.StartTimeout == 0 {
		c.StartTimeout = defaultStartTimeout
	}
	if c.RestartBackoff == 0 {
		c.RestartBackoff = defaultRestartBackoff
	}
	if c.MaxBackoff == 0 {
		c.MaxBackoff = defaultMaxBackoff
	}
	if c.RestartBackoff > c.MaxBackoff {
		c.MaxBackoff = c.RestartBackoff
	}
	return c
}

func (c ServerConfig) transport() string {
	if c.URL != "" {
		return "http"
	}
	return "stdio"
}
