// Package httptool makes tools of HTTP endpoints declared in configuration: the
// arguments a model passes become the URL's placeholders, a query string or a JSON body.
package httptool

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"strings"
	"time"

	"github.com/aios-go/aios/internal/tool"
)

// Source is the Source of every HTTP tool.
const Source = "http"

// Config declares one HTTP tool.
type Config struct {
	Name, Description string
	Method            string // default POST
	// URL may contain {param} placeholders, in its path and query only, filled
	// (URL-escaped) from the arguments of the same name, which are then not sent in the
	// body. The host is fixed: a model cannot choose where the request goes.
	URL string
	// Headers' values may hold "${ENV_VAR}", expanded from the environment at
	// construction, so secrets stay out of the configuration file; a variable that is
	// not set is a construction error.
	Headers     map[string]string
	Parameters  json.RawMessage // the JSON Schema of the arguments
	Annotations tool.Annotations
	Timeout     time.Duration // http client timeout; 0 → none (the manager's limit applies)
}

var (
	placeholder = regexp.MustCompile(`\{([^{}]*)\}`)
	envRef      = regexp.MustCompile(`\$\{([^{}]*)\}`)
	envName     = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
)

// hole is one placeholder of the URL.
type hole struct {
	param string
	query bool // in the query string (query-escaped), else in the path (path-escaped)
}

// New builds an HTTP tool. client nil means a plain http.Client; the tool uses a copy
// of it carrying c.Timeout.
func New(c Config, client *http.Client) (tool.Tool, error) {
	if c.Name == "" {
		return nil, errors.New("http tool: a name is required")
	}
	fail := func(format string, args ...any) (tool.Tool, error) {
		return nil, fmt.Errorf("http tool %s: "+format, append([]any{c.Name}, args...)...)
	}
	method := strings.ToUpper(c.Method)
	switch method {
	case "":
		method = http.MethodPost
	case http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete:
	default:
		return fail("method %q: want GET, POST, PUT, PATCH or DELETE", c.Method)
	}
	if c.Timeout < 0 {
		return fail("timeout may not be negative")
	}

	schema := c.Parameters
	if len(bytes.TrimSpace(schema)) == 0 {
		schema = json.RawMessage(`{"type":"object"}`)
	}
	var decl struct {
		Properties map[string]json.RawMessage `json:"properties"`
	}
	if err := json.Unmarshal(schema, &decl); err != nil {
		return fail("parameters must be a JSON Schema object: %v", err)
	}

	holes, err := parseURL(c.URL)
	if err != nil {
		return fail("%v", err)
	}
	for _, h := range holes {
		if _, ok := decl.Properties[h.param]; !ok {
			return fail("URL placeholder {%s} is not a property of the parameters", h.param)
		}
	}

	headers := make(http.Header, len(c.Headers))
	for k, v := range c.Headers {
		expanded, err := expandEnv(v)
		if err != nil {
			return fail("header %s: %v", k, err)
		}
		headers.Set(k, expanded)
	}

	if client == nil {
		client = &http.Client{}
	}
	hc := *client
	if c.Timeout > 0 {
		hc.Timeout = c.Timeout
	}
	return &httpTool{
		spec: tool.Spec{
			Name:        c.Name,
			Description: c.Description,
			InputSchema: schema,
			Annotations: c.Annotations,
			Source:      Source,
		},
		method:  method,
		url:     c.URL,
		holes:   holes,
		headers: headers,
		client:  &hc,
	}, nil
}

// parseURL checks an endpoint and finds its placeholders. Placeholders in the scheme or
// host are refused: they would let the model send the request, and its headers with
// their secrets, anywhere.
func parseURL(raw string) ([]hole, error) {
	if _, rest, ok := strings.Cut(raw, "://"); ok {
		if end := strings.IndexAny(rest, "/?#"); end >= 0 {
			rest = rest[:end]
		}
		if strings.ContainsAny(rest, "{}") {
			return nil, fmt.Errorf("URL %q: placeholders may appear in the path and query, not the host", raw)
		}
	}
	u, err := url.Parse(placeholder.ReplaceAllString(raw, "x"))
	if err != nil {
		return nil, fmt.Errorf("URL %q: %v", raw, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("URL %q: the scheme must be http or https", raw)
	}
	if u.Host == "" {
		return nil, fmt.Errorf("URL %q has no host", raw)
	}
	if strings.Contains(raw, "#") && placeholder.MatchString(raw[strings.Index(raw, "#"):]) {
		return nil, fmt.Errorf("URL %q: placeholders may not appear in the fragment", raw)
	}
	queryAt := strings.Index(raw, "?")
	var holes []hole
	for _, m := range placeholder.FindAllStringSubmatchIndex(raw, -1) {
		name := raw[m[2]:m[3]]
		if name == "" {
			return nil, fmt.Errorf("URL %q: an empty placeholder {}", raw)
		}
		holes = append(holes, hole{param: name, query: queryAt >= 0 && m[0] > queryAt})
	}
	return holes, nil
}

// expandEnv replaces each ${NAME} in v by the variable's value.
func expandEnv(v string) (string, error) {
	var missing error
	out := envRef.ReplaceAllStringFunc(v, func(ref string) string {
		name := ref[2 : len(ref)-1]
		if !envName.MatchString(name) {
			missing = fmt.Errorf("%q is not an environment variable's name", name)
			return ""
		}
		val, ok := os.LookupEnv(name)
		if !ok && missing == nil {
			missing = fmt.Errorf("environment variable %s is not set", name)
		}
		return val
	})
	return out, missing
}
