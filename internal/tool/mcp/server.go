// Package mcp makes the tools of MCP servers a source of the kernel's tool manager. Each
// configured server is connected (a subprocess over stdio, or streamable HTTP), its tools
// are registered under its name, and a supervisor reconnects it when it dies: the tools
// stay listed, calls fail fast as unavailable during the outage, and the list is
// re-registered when the server is back.
package mcp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"runtime/debug"
	"sync"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/aios-go/aios/api"
	"github.com/aios-go/aios/internal/tool"
)

// Registrar is the tool manager as a source of tools sees it.
type Registrar interface {
	// SetSource replaces every tool of source with tools.
	SetSource(source string, tools []tool.Tool) error
	// SetSourceDown marks the tools of source unavailable because of err; nil: up again.
	SetSourceDown(source string, err error)
}

// Status is a server's state, as the kernel reports it.
type Status struct {
	Name      string `json:"name"`
	Transport string `json:"transport"` // "stdio" or "http"
	Connected bool   `json:"connected"`
	Restarts  int    `json:"restarts"`
	LastError string `json:"last_error,omitempty"`
	Tools     int    `json:"tools"`
	PID       int    `json:"pid,omitempty"`      // of the current process (stdio)
	Protocol  string `json:"protocol,omitempty"` // the MCP version negotiated
}

// ErrClosed is the reason a closed server's source is down.
var ErrClosed = errors.New("MCP server closed")

// probeTimeout bounds the ping that decides whether a failed call means a dead server.
const probeTimeout = 5 * time.Second

// Server is one supervised MCP server.
type Server struct {
	cfg    ServerConfig
	source string
	reg    Registrar
	log    *slog.Logger
	client *sdk.Client
	http   *http.Transport // streamable HTTP only; its idle connections end with Close

	// relist is signalled by tools/list_changed; the supervisor re-lists, so that
	// registrations happen on one goroutine in order.
	relist chan struct{}

	ctx    context.Context // the supervisor's; cancelled by Close
	cancel context.CancelFunc
	done   chan struct{}
	once   sync.Once

	mu       sync.Mutex
	conn     *conn // nil while disconnected
	closed   bool
	restarts int
	lastErr  error
	tools    int
	// restartGate, when set, holds restarts until it is closed: tests observe the
	// outage before the server comes back.
	restartGate <-chan struct{}
}

// conn is one session with the server and what it runs on.
type conn struct {
	sess  *sdk.ClientSession
	proc  *process // stdio only
	tap   *hintTap
	check chan struct{} // a call failed in a way that may mean the server is gone
}

// Start connects to the server, lists its tools and registers them as source
// "mcp:<name>", then supervises it until Close. ctx bounds this first connection only. A
// server that cannot be reached, initialized and listed within cfg.StartTimeout is an
// error, and leaves no process behind: the kernel does not start on a server that
// cannot work.
func Start(ctx context.Context, cfg ServerConfig, reg Registrar, log *slog.Logger) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.Default()
	}
	cfg = cfg.withDefaults()
	s := &Server{
		cfg:    cfg,
		source: "mcp:" + cfg.Name,
		reg:    reg,
		log:    log.With("mcp_server", cfg.Name),
		relist: make(chan struct{}, 1),
		done:   make(chan struct{}),
	}
	if cfg.URL != "" {
		s.http = http.DefaultTransport.(*http.Transport).Clone()
	}
	s.client = sdk.NewClient(&sdk.Implementation{Name: "aios", Version: moduleVersion()}, &sdk.ClientOptions{
		// No roots: a server that would take its allowed directories from the client
		// (server-filesystem) must keep those it was configured with.
		Capabilities: &sdk.ClientCapabilities{},
		ToolListChangedHandler: func(context.Context, *sdk.ToolListChangedRequest) {
			select {
			case s.relist <- struct{}{}:
			default:
			}
		},
		Logger: s.log,
	})

	c, tools, err := s.connect(ctx)
	if err != nil {
		s.closeHTTP()
		return nil, err
	}
	if err := reg.SetSource(s.source, tools); err != nil {
		c.close()
		s.closeHTTP()
		return nil, fmt.Errorf("MCP server %s: registering its tools: %w", cfg.Name, err)
	}
	s.conn, s.tools = c, len(tools)
	s.log.Info("MCP server connected", "transport", cfg.transport(), "tools", len(tools), "pid", c.pid(), "protocol", c.protocol())
	s.ctx, s.cancel = context.WithCancel(context.Background())
	go s.supervise(c)
	return s, nil
}

// Close stops the supervisor, closes the session and ends the server process (waiting
// for it). A stdio server gets a grace period to exit after its stdin closes, then is
// killed with everything it started. Calls in flight fail as unavailable. The source is
// marked down with ErrClosed. Close is idempotent.
func (s *Server) Close() error {
	s.once.Do(func() {
		s.mu.Lock()
		s.closed = true
		s.mu.Unlock()
		s.cancel()
		<-s.done
		s.closeHTTP()
		s.reg.SetSourceDown(s.source, ErrClosed)
		s.log.Info("MCP server closed")
	})
	return nil
}

// Status reports the server's state now.
func (s *Server) Status() Status {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := Status{Name: s.cfg.Name, Transport: s.cfg.transport(), Connected: s.conn != nil, Restarts: s.restarts, Tools: s.tools}
	if s.lastErr != nil {
		st.LastError = s.lastErr.Error()
	}
	if s.conn != nil {
		st.PID, st.Protocol = s.conn.pid(), s.conn.protocol()
	}
	return st
}

// current is the live session for a call, or why there is none.
func (s *Server) current() (*conn, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.closed:
		return nil, api.Wrap(api.BackendUnavailable, ErrClosed, "MCP server %s is closed", s.cfg.Name)
	case s.conn == nil:
		return nil, api.Wrap(api.BackendUnavailable, s.lastErr, "MCP server %s is restarting", s.cfg.Name)
	}
	return s.conn, nil
}

// connect starts the transport, initializes a session and lists the tools, within
// StartTimeout. On failure nothing is left running.
func (s *Server) connect(ctx context.Context) (*conn, []tool.Tool, error) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.StartTimeout)
	defer cancel()
	c := &conn{tap: newHintTap(), check: make(chan struct{}, 1)}
	var transport sdk.Transport
	if s.cfg.URL != "" {
		transport = &sdk.StreamableClientTransport{
			Endpoint:   s.cfg.URL,
			HTTPClient: &http.Client{Transport: &roundTripper{base: s.http, headers: s.cfg.Headers, tap: c.tap}},
			// The SDK's own retries of a broken stream would hide an outage from the
			// supervisor, which reconnects from scratch anyway.
			MaxRetries: 1,
		}
	} else {
		p, err := startProcess(s.cfg)
		if err != nil {
			return nil, nil, fmt.Errorf("MCP server %s: %w", s.cfg.Name, err)
		}
		c.proc = p
		transport = tapTransport{inner: &sdk.IOTransport{Reader: p.stdout, Writer: p.stdin}, tap: c.tap}
	}
	fail := func(step string, err error) (*conn, []tool.Tool, error) {
		c.close()
		if c.proc != nil {
			return nil, nil, fmt.Errorf("MCP server %s: %s: %w (%s)", s.cfg.Name, step, err, c.proc.describe())
		}
		return nil, nil, fmt.Errorf("MCP server %s: %s %s: %w", s.cfg.Name, step, s.cfg.URL, err)
	}
	sess, err := s.client.Connect(ctx, transport, nil)
	if err != nil {
		return fail("initialize", err)
	}
	c.sess = sess
	tools, err := s.list(ctx, c)
	if err != nil {
		return fail("tools/list", err)
	}
	return c, tools, nil
}

// list fetches every page of the server's tools.
func (s *Server) list(ctx context.Context, c *conn) ([]tool.Tool, error) {
	var out []tool.Tool
	for t, err := range c.sess.Tools(ctx, nil) {
		if err != nil {
			return nil, err
		}
		out = append(out, s.newTool(t, c.tap))
	}
	return out, nil
}

// close ends the session and, for stdio, the process. Closing a session waits for calls
// in flight; a stdio server still busy after the grace period is killed, which ends them.
func (c *conn) close() {
	closed := make(chan struct{})
	go func() {
		if c.sess != nil {
			_ = c.sess.Close()
		}
		close(closed)
	}()
	if c.proc != nil {
		t := time.NewTimer(stopGrace)
		select {
		case <-closed:
		case <-t.C:
		}
		t.Stop()
		c.proc.stop()
	}
	<-closed
}

func (c *conn) pid() int {
	if c.proc == nil {
		return 0
	}
	return c.proc.pid
}

func (c *conn) protocol() string {
	if c.sess == nil || c.sess.InitializeResult() == nil {
		return ""
	}
	return c.sess.InitializeResult().ProtocolVersion
}

// suspect asks the supervisor to check the connection after a failed call.
func (c *conn) suspect() {
	select {
	case c.check <- struct{}{}:
	default:
	}
}

func (s *Server) closeHTTP() {
	if s.http != nil {
		s.http.CloseIdleConnections()
	}
}

// jitter spreads restarts of servers that failed together (a shared dependency went
// away) so they do not all come back at once.
func jitter(d time.Duration) time.Duration {
	return d/2 + rand.N(d/2+1)
}

func moduleVersion() string {
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
		return bi.Main.Version
	}
	return "dev"
}
