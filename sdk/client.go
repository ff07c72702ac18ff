// Package sdk is the Go client of the aios kernel. It speaks the kernel's two surfaces:
// AIOS's POST /query, with methods named after AIOS's Python SDK (llm_chat becomes
// LLMChat), and the OpenAI-compatible /v1, including streaming.
//
//	c := sdk.New("http://localhost:8000", sdk.WithAgent("researcher"))
//	res, err := c.LLMChat(ctx, []api.Message{{Role: "user", Content: "hi"}}, sdk.LLMOptions{})
//
// Every failure the kernel reports comes back as an *Error, including LLM failures that
// AIOS delivers inside an HTTP 200; errors.As finds it.
package sdk

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/aios-go/aios/api"
)

// maxResponseBody bounds a non-streaming response the client will read. The largest
// legitimate body is a long completion; the bound keeps a misbehaving server from
// exhausting the agent's memory.
const maxResponseBody = 64 << 20

// maxErrorBody bounds how much of an error response is read for its detail.
const maxErrorBody = 64 << 10

// Client calls one kernel. It is safe for concurrent use.
type Client struct {
	base    string
	hc      *http.Client
	agent   string
	session string
	apiKey  string
	header  http.Header
	timeout time.Duration
}

// Option configures a Client.
type Option func(*Client)

// WithAgent sets the agent name: agent_name on /query and X-AIOS-Agent on every request.
// The kernel schedules, accounts and isolates by it.
func WithAgent(name string) Option { return func(c *Client) { c.agent = name } }

// WithSession sets the program (session) the calls belong to: X-AIOS-Session on every
// request and the session field of LLM queries. Program-level schedulers group calls by
// it; without it the kernel treats the agent as one program.
func WithSession(id string) Option { return func(c *Client) { c.session = id } }

// WithHTTPClient replaces the HTTP client (transport, proxies, TLS).
func WithHTTPClient(hc *http.Client) Option { return func(c *Client) { c.hc = hc } }

// WithTimeout bounds each non-streaming call, and the wait for a stream's first byte of
// headers. A stream's body is bounded only by the caller's context, since a long
// generation is not a hung one.
func WithTimeout(d time.Duration) Option { return func(c *Client) { c.timeout = d } }

// WithAPIKey sends "Authorization: Bearer key", for kernels with authentication on,
// where the key rather than X-AIOS-Agent names the agent.
func WithAPIKey(key string) Option { return func(c *Client) { c.apiKey = key } }

// WithHeader adds a header to every request.
func WithHeader(key, value string) Option {
	return func(c *Client) { c.header.Add(key, value) }
}

// New returns a client of the kernel at baseURL (e.g. "http://localhost:8000", without
// "/v1": the client adds the path of each route).
func New(baseURL string, opts ...Option) *Client {
	c := &Client{
		base:   strings.TrimRight(baseURL, "/"),
		hc:     &http.Client{},
		header: make(http.Header),
	}
	for _, o := range opts {
		o(c)
	}
	return c
}

// Agent returns the agent name the client sends.
func (c *Client) Agent() string { return c.agent }

// Error is a failure reported by the kernel: a non-2xx response, an LLM response whose
// status_code is not 2xx, or an error event inside a stream.
type Error struct {
	// Status is the HTTP status, or AIOS's status_code for an error inside a /query
	// response.
	Status int
	// Kind says who is at fault. When the kernel did not send one (an error inside a
	// /query response, or a proxy in between), it is inferred from Status.
	Kind   api.Kind
	Detail string
	// RetryAfter is the server's Retry-After, when it sent one.
	RetryAfter time.Duration
}

func (e *Error) Error() string {
	return fmt.Sprintf("aios: %d %s: %s", e.Status, e.Kind, e.Detail)
}

// Retryable reports whether the same request may succeed later or elsewhere.
func (e *Error) Retryable() bool { return e.Kind.Retryable() }

// kindForStatus infers a Kind for errors that came without one. The mapping inverts
// api's table; where several kinds share a status it picks the one a caller most
// plausibly faces there (429 from the LLM path is the backend's rate limit, not a quota,
// since quota refusals always carry their kind).
func kindForStatus(status int) api.Kind {
	switch status {
	case http.StatusBadRequest:
		return api.CallerBadRequest
	case http.StatusUnauthorized:
		return api.CallerUnauthorized
	case http.StatusForbidden:
		return api.PolicyDenied
	case http.StatusNotFound:
		return api.CallerNotFound
	case http.StatusRequestEntityTooLarge:
		return api.CallerTooLarge
	case 499:
		return api.CallerCancelled
	case http.StatusTooManyRequests:
		return api.BackendRateLimited
	case http.StatusNotImplemented:
		return api.PolicyNotEnabled
	case http.StatusBadGateway:
		return api.BackendUnavailable
	case http.StatusServiceUnavailable:
		return api.BackendOverloaded
	case http.StatusGatewayTimeout:
		return api.BackendTimeout
	}
	if status >= 400 && status < 500 {
		return api.CallerBadRequest
	}
	return api.KernelInternal
}

// knownKind returns s as a Kind if it is one of api's kinds.
func knownKind(s string) (api.Kind, bool) {
	for _, k := range api.Kinds() {
		if string(k) == s {
			return k, true
		}
	}
	return "", false
}

// errorFromBody builds the *Error of a non-2xx response. The kernel's bodies carry
// "detail" and "kind" (api.ErrorBody); on /v1 also OpenAI's {"error": {...}}. Bodies from
// anything else in between (a proxy's HTML page) still give a status and some text.
func errorFromBody(resp *http.Response, body []byte) *Error {
	e := &Error{Status: resp.StatusCode}
	var eb api.ErrorBody
	var oe api.OpenAIError
	if json.Unmarshal(body, &eb) == nil {
		e.Detail, e.Kind = eb.Detail, eb.Kind
	}
	if json.Unmarshal(body, &oe) == nil {
		if e.Detail == "" {
			e.Detail = oe.Error.Message
		}
		if e.Kind == "" {
			if k, ok := knownKind(oe.Error.Code); ok {
				e.Kind = k
			} else if k, ok := knownKind(oe.Error.Type); ok {
				e.Kind = k
			}
		}
	}
	if e.Kind == "" {
		e.Kind = kindForStatus(resp.StatusCode)
	}
	if e.Detail == "" {
		e.Detail = strings.TrimSpace(string(body))
		if e.Detail == "" {
			e.Detail = http.StatusText(resp.StatusCode)
		}
	}
	if s := resp.Header.Get("Retry-After"); s != "" {
		if secs, err := strconv.Atoi(s); err == nil && secs >= 0 {
			e.RetryAfter = time.Duration(secs) * time.Second
		} else if t, err := http.ParseTime(s); err == nil {
			e.RetryAfter = max(time.Until(t), 0)
		}
	}
	return e
}

// newRequest builds a request with the client's identity headers.
func (c *Client) newRequest(ctx context.Context, method, path string, body any) (*http.Request, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, fmt.Errorf("sdk: encode %s %s: %w", method, path, err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return nil, fmt.Errorf("sdk: %w", err)
	}
	for k, vs := range c.header {
		req.Header[k] = append([]string(nil), vs...)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.agent != "" {
		req.Header.Set(api.HeaderAgent, c.agent)
	}
	if c.session != "" {
		req.Header.Set(api.HeaderSession, c.session)
	}
	if c.apiKey != "" {
		req.Header.Set("Authorization", "Bearer "+c.apiKey)
	}
	return req, nil
}

// do sends a JSON request and decodes a 2xx JSON response into out.
func (c *Client) do(ctx context.Context, method, path string, body, out any) error {
	if c.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.timeout)
		defer cancel()
	}
	req, err := c.newRequest(ctx, method, path, body)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := c.hc.Do(req)
	if err != nil {
		return fmt.Errorf("sdk: %s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
		return errorFromBody(resp, b)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBody+1))
	if err != nil {
		return fmt.Errorf("sdk: %s %s: read response: %w", method, path, err)
	}
	if len(b) > maxResponseBody {
		return fmt.Errorf("sdk: %s %s: response larger than %d bytes", method, path, maxResponseBody)
	}
	if err := json.Unmarshal(b, out); err != nil {
		return fmt.Errorf("sdk: %s %s: decode response: %w", method, path, err)
	}
	return nil
}

// Status is GET /status: whether the kernel is up.
func (c *Client) Status(ctx context.Context) (*api.StatusResponse, error) {
	var out api.StatusResponse
	if err := c.do(ctx, http.MethodGet, "/status", nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// CoreStatus is GET /core/status: modules, scheduler and LLM cores.
func (c *Client) CoreStatus(ctx context.Context) (*api.CoreStatus, error) {
	var out api.CoreStatus
	if err := c.do(ctx, http.MethodGet, "/core/status", nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// ListLLMs is GET /core/llms/list: the models the kernel serves.
func (c *Client) ListLLMs(ctx context.Context) (*api.LLMList, error) {
	var out api.LLMList
	if err := c.do(ctx, http.MethodGet, "/core/llms/list", nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// errNoAgent is returned before sending a /query without an agent name: the kernel
// schedules and accounts by it, so a nameless query is a mistake of the caller's setup.
var errNoAgent = errors.New("sdk: no agent name: pass sdk.WithAgent to New or set QueryRequest.AgentName")
