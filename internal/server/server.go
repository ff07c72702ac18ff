// Package server is the kernel's HTTP front: AIOS's /query API (routes_aios.go), the
// OpenAI-compatible /v1 surface (routes_openai.go) and status routes. It turns requests
// into syscalls and syscall outcomes into each protocol's shapes; it holds no policy.
package server

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/aios-go/aios/internal/access"
	"github.com/aios-go/aios/internal/kernel"
)

// Options configure the HTTP server.
type Options struct {
	MaxBodyBytes int64
	Version      string
	Logger       *slog.Logger
	// Shared serves GET /shared/{token}: the storage module's share links.
	Shared SharedFiles
	// Responses keeps the Responses API's stored responses (store: true); nil when the
	// storage module is off, and then nothing is stored.
	Responses ResponseStore
	// Memory configures memory injection and managed context around LLM calls.
	Memory MemoryOptions
	// MemoryStats serves GET /admin/memory.
	MemoryStats MemoryStats
	// Tools is the tool registry: GET /v1/tools, and the kernel's tool loop on /v1
	// (ToolTurns model calls at most; DefaultToolTurns when 0).
	Tools     Tools
	ToolTurns int
	// ToolStatus serves GET /admin/tools: tool counters and MCP server connections.
	ToolStatus func() any
	// Embeddings serves POST /v1/embeddings (boot.EmbeddingModels); nil: no model embeds.
	Embeddings EmbeddingModels
	// Metrics serves GET /metrics (internal/metrics), when set.
	Metrics http.Handler
	// Agents runs agents (POST /agents/submit, routes_agents.go); nil: the routes answer 501.
	Agents AgentRuntime
	// Access, when set, is the access manager: every request but GET /status and GET
	// /shared/{token} needs an API key, and admin routes an admin key (routes_access.go).
	Access *access.Manager
}

// Server serves the kernel over HTTP.
type Server struct {
	k    *kernel.Kernel
	opts Options
	log  *slog.Logger
	mux  *http.ServeMux
	h    http.Handler // mux behind the request log
	http *http.Server
	ui   *uiSessions // the dashboard's signed-in browsers, with the access manager on (ui_auth.go)
}

// New builds the server's routes over k.
func New(k *kernel.Kernel, opts Options) *Server {
	if opts.MaxBodyBytes <= 0 {
		opts.MaxBodyBytes = 8 << 20
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	opts.Memory = opts.Memory.withDefaults()
	s := &Server{k: k, opts: opts, log: opts.Logger, mux: http.NewServeMux()}
	s.routesAIOS()
	s.routesOpenAI()
	s.routesAdmin()
	s.routesStorage()
	s.routesMemory()
	s.routesTools()
	s.routesResponses()
	s.routesAnthropic()
	s.routesOpenAIMore()
	s.routesAgents()
	s.routesUI()
	s.routesAccess()
	s.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeDetail(w, http.StatusNotFound, "", "no route for "+r.Method+" "+r.URL.Path)
	})
	s.h = logRequests(s.log, s.withAccess(s.mux))
	return s
}

// Handler returns the server's HTTP handler.
func (s *Server) Handler() http.Handler { return s.h }

// Serve accepts connections on l until Shutdown.
func (s *Server) Serve(l net.Listener) error {
	s.http = &http.Server{Handler: s.h, ReadHeaderTimeout: 10 * time.Second}
	err := s.http.Serve(l)
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// Shutdown drains the kernel first, so in-flight syscalls finish (or end cancelled when
// ctx expires) and their responses are written, then closes the listener and connections.
func (s *Server) Shutdown(ctx context.Context) error {
	kerr := s.k.Shutdown(ctx)
	if s.http == nil {
		return kerr
	}
	// Responses of syscalls that just ended are still being written; give them a moment
	// even when ctx is spent.
	hctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	herr := s.http.Shutdown(hctx)
	return errors.Join(kerr, herr)
}
