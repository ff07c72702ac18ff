package server

import (
	"context"
	"net/http"

	"github.com/aios-go/aios/api"
	"github.com/aios-go/aios/internal/memory"

	"github.com/aios-go/aios/internal/kernel"
)

// routesAdmin serves the operator's view of the kernel: token accounting, what the
// backends say they serve, the execution graphs learned of each kind of program, and
// Prometheus metrics. These routes read; they change
// nothing.
func (s *Server) routesAdmin() {
	s.mux.HandleFunc("GET /admin/usage", s.handleUsage)
	s.mux.HandleFunc("GET /admin/models", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, s.k.Discover(r.Context()))
	})
	s.mux.HandleFunc("GET /admin/memory", s.handleMemoryStats)
	s.mux.HandleFunc("GET /admin/graphs", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, s.k.Graphs())
	})
	if s.opts.Metrics != nil {
		s.mux.Handle("GET /metrics", s.opts.Metrics)
	}
}

// MemoryStats reads the memory manager's RAM manager and trie counters.
type MemoryStats interface {
	Stats(ctx context.Context) (memory.Stats, error)
}

// handleMemoryStats reports the memory module's hot set, evictions, faults and the
// conversation trie's compression.
func (s *Server) handleMemoryStats(w http.ResponseWriter, r *http.Request) {
	if s.opts.MemoryStats == nil {
		writeError(w, api.Errorf(api.PolicyNotEnabled, "the memory module is not enabled in this kernel"))
		return
	}
	st, err := s.opts.MemoryStats.Stats(r.Context())
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, api.MemoryStats{
		HotNotes: st.HotNotes, HotBytes: st.HotBytes, BudgetBytes: st.Budget, Evictions: st.Evictions, Faults: st.Faults,
		Notes: st.Notes, IndexBytes: st.IndexBytes, TrieLogicalBytes: st.TrieLogicalBytes, TrieStoredBytes: st.TrieStoredBytes,
		CompressionRatio: st.CompressionRatio,
	})
}

// handleUsage reports tokens charged per agent, session and model since the kernel
// started; ?agent= and ?session= narrow the whole report, its total included, to one of
// each.
func (s *Server) handleUsage(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	writeJSON(w, http.StatusOK, s.k.Usage(kernel.UsageFilter{Agent: q.Get("agent"), Session: q.Get("session")}))
}
