package server

import (
	"context"
	"net/http"
	"time"

	"github.com/aios-go/aios/api"
	"github.com/aios-go/aios/internal/access"
)

const (
	// uiApprovalsEvery is how often an open dashboard's stream reads the approvals
	// again. A new request arrives at once (Approvals.Subscribe); a decision made
	// elsewhere (aios approvals, another dashboard, /v1/approvals) and a deadline that
	// passes are only seen by reading.
	uiApprovalsEvery = time.Second
	// uiRecentDecisions is how many decided approvals the panel shows.
	uiRecentDecisions = 10
	// uiPendingMax bounds the pending approvals the panel lists.
	uiPendingMax = 100
)

// uiApprovalsOff is what the panel says with the access manager off.
const uiApprovalsOff = "Approvals need the access manager: set access.auth: true (docs/security.md)."

// uiApprovals is the approvals panel's content: GET /ui/api/approvals, and the
// "approvals" event of /ui/api/events.
type uiApprovals struct {
	// Enabled is false when the access manager is off: nothing ever asks.
	Enabled bool `json:"enabled"`
	// Message says why the lists are empty when they cannot be shown: the access
	// manager is off, this admin may not decide approvals, or they could not be read.
	Message string `json:"message,omitempty"`
	// Pending are the calls waiting for a decision, newest first.
	Pending []access.Approval `json:"pending"`
	// Recent are the latest decisions (approved, denied, expired, cancelled), the
	// latest first.
	Recent []access.Approval `json:"recent"`
}

// approvals reads the panel's content as the principal in ctx may see it: only an
// admin who may decide approvals (approval.decide, as GET /v1/approvals requires) sees
// them. The check is Evaluate, with no audit entry: the stream asks every second.
func (d *dashboard) approvals(ctx context.Context) uiApprovals {
	out := uiApprovals{Pending: []access.Approval{}, Recent: []access.Approval{}}
	m := d.s.opts.Access
	if m == nil {
		out.Message = uiApprovalsOff
		return out
	}
	out.Enabled = true
	p, _ := access.PrincipalFrom(ctx)
	res, err := m.Evaluate(ctx, p, access.ApprovalDecide, access.Route("/ui/api/approvals"), access.Context{})
	if err == nil && res.Effect == access.Deny {
		err = api.Errorf(api.PolicyDenied, "%s may not decide approvals: %s", p, res.Reason)
	}
	if err == nil {
		out.Pending, err = m.Approvals.List(ctx, access.Pending, uiPendingMax)
	}
	if err == nil {
		out.Recent, err = m.Approvals.Decided(ctx, uiRecentDecisions)
	}
	if err != nil {
		return uiApprovals{Enabled: true, Message: errorMessage(err), Pending: []access.Approval{}, Recent: []access.Approval{}}
	}
	return out
}

// routesUIApprovals serves the panel's reads and decisions: GET /ui/api/approvals and
// POST /ui/api/approvals/{id} {"approve", "reason"}, the same decision as POST
// /v1/approvals/{id} but under /ui, where the dashboard's session cookie is honoured.
func (s *Server) routesUIApprovals(d *dashboard) {
	m := s.opts.Access
	if m == nil {
		s.mux.HandleFunc("GET /ui/api/approvals", func(w http.ResponseWriter, r *http.Request) {
			writeJSON(w, http.StatusOK, d.approvals(r.Context()))
		})
		s.mux.HandleFunc("POST /ui/api/approvals/{id}", func(w http.ResponseWriter, r *http.Request) {
			writeError(w, api.Errorf(api.PolicyNotEnabled, "%s", uiApprovalsOff))
		})
		return
	}
	decide := func(h http.HandlerFunc) http.Handler { return m.Guard(access.ApprovalDecide, accessError)(h) }
	s.mux.Handle("GET /ui/api/approvals", decide(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-cache")
		writeJSON(w, http.StatusOK, d.approvals(r.Context()))
	}))
	s.mux.Handle("POST /ui/api/approvals/{id}", decide(func(w http.ResponseWriter, r *http.Request) {
		var body struct {
			Approve *bool  `json:"approve"`
			Reason  string `json:"reason"`
		}
		if err := s.decodeBody(w, r, &body); err != nil {
			writeError(w, err)
			return
		}
		if body.Approve == nil {
			writeError(w, api.Errorf(api.CallerBadRequest, "approve is required: true or false"))
			return
		}
		p, _ := access.PrincipalFrom(r.Context())
		ap, err := m.Approvals.Decide(r.Context(), r.PathValue("id"), *body.Approve, p.String(), body.Reason)
		if err != nil {
			writeError(w, err)
			return
		}
		writeJSON(w, http.StatusOK, ap)
	}))
}
