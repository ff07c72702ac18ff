package server

import (
	"net/http"

	"github.com/aios-go/aios/internal/kernel"
)

// routesAdmin serves the operator's view of the kernel: token accounting and what the
// backends say they serve. These routes read; they change nothing.
func (s *Server) routesAdmin() {
	s.mux.HandleFunc("GET /admin/usage", s.handleUsage)
	s.mux.HandleFunc("GET /admin/models", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, s.k.Discover(r.Context()))
	})
}

// handleUsage reports tokens charged per agent, session and model since the kernel
// started; ?agent= and ?session= narrow the report to one of each.
func (s *Server) handleUsage(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	writeJSON(w, http.StatusOK, s.k.Usage(kernel.UsageFilter{Agent: q.Get("agent"), Session: q.Get("session")}))
}
