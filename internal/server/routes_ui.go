package server

import (
	"bytes"
	"embed"
	"encoding/json"
	"io/fs"
	"net/http"
	"strconv"
	"time"

	"github.com/aios-go/aios/internal/access"
	"github.com/aios-go/aios/internal/kernel"
)

// uiFiles are the dashboard's page, script and style: plain files, no build step, no
// third-party assets, so the kernel binary alone serves the whole dashboard.
//
//go:embed ui
var uiFiles embed.FS

// uiInterval is how often the event stream sends the kernel's state; ?interval_ms=
// overrides it within [uiMinInterval, uiMaxInterval].
const (
	uiInterval    = 500 * time.Millisecond
	uiMinInterval = 50 * time.Millisecond
	uiMaxInterval = time.Minute
)

// routesUI serves the live dashboard: GET /ui (the page), GET /ui/api/state (one
// snapshot, which `aios top` polls), GET /ui/api/events (the snapshot as server-sent
// events, each syscall as it ends, and the approvals), the approvals panel's reads and
// decisions (ui_approvals.go) and, with the access manager on, signing in from a
// browser (ui_auth.go). Deciding an approval is the only change the dashboard makes.
func (s *Server) routesUI() {
	d := &dashboard{s: s}
	sub, err := fs.Sub(uiFiles, "ui")
	if err != nil {
		panic(err) // the folder is embedded at build time
	}
	files := http.StripPrefix("/ui", http.FileServerFS(sub))
	s.mux.HandleFunc("GET /ui", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/ui/", http.StatusMovedPermanently)
	})
	s.mux.HandleFunc("GET /ui/", func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		// Everything the page loads comes from the kernel; a page that tried to load
		// anything else would be refused by the browser.
		h.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; connect-src 'self'")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Cache-Control", "no-cache")
		files.ServeHTTP(w, r)
	})
	s.mux.HandleFunc("GET /ui/api/state", d.handleState)
	s.mux.HandleFunc("GET /ui/api/events", d.handleEvents)
	s.routesUIAuth()
	s.routesUIApprovals(d)
}

func (d *dashboard) handleState(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-cache")
	writeJSON(w, http.StatusOK, d.state(r.Context(), true))
}

// handleEvents streams the dashboard: a "state" event with the recent calls first, then
// a "state" event every interval and an "end" event for each syscall as it ends; and an
// "approvals" event (uiApprovals) first and whenever the approvals change: at once for
// a new request, within uiApprovalsEvery for a decision or a deadline. It returns when
// the client leaves or the kernel has shut down; it starts no goroutine, and its
// observers of ending calls and of new approvals only signal channels, so a slow client
// never holds up the kernel or a call that asks.
func (d *dashboard) handleEvents(w http.ResponseWriter, r *http.Request) {
	interval := uiInterval
	if v := r.URL.Query().Get("interval_ms"); v != "" {
		ms, err := strconv.Atoi(v)
		if err != nil {
			writeDetail(w, http.StatusBadRequest, "", "interval_ms must be a whole number of milliseconds")
			return
		}
		interval = min(max(time.Duration(ms)*time.Millisecond, uiMinInterval), uiMaxInterval)
	}
	ctx := r.Context()
	rc := http.NewResponseController(w)
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)

	ended := make(chan struct{}, 1)
	stop := d.s.k.ObserveEnds(func(*kernel.Syscall) {
		select {
		case ended <- struct{}{}:
		default:
		}
	})
	defer stop()

	sendJSON := func(event string, b []byte) bool {
		buf := make([]byte, 0, len(b)+len(event)+16)
		buf = append(buf, "event: "...)
		buf = append(buf, event...)
		buf = append(buf, "\ndata: "...)
		buf = append(buf, b...)
		buf = append(buf, '\n', '\n')
		_, err := w.Write(buf)
		return err == nil
	}
	send := func(event string, v any) bool {
		b, err := json.Marshal(v)
		return err == nil && sendJSON(event, b)
	}
	flush := func() bool { return rc.Flush() == nil }

	// Approvals are sent only when they changed since the last "approvals" event: the
	// page counts deadlines down itself.
	var asks <-chan access.Approval
	var reread <-chan time.Time
	if m := d.s.opts.Access; m != nil {
		ch, stop := m.Approvals.Subscribe()
		defer stop()
		t := time.NewTicker(uiApprovalsEvery)
		defer t.Stop()
		asks, reread = ch, t.C
	}
	var lastApprovals []byte
	sendApprovals := func() bool {
		b, err := json.Marshal(d.approvals(ctx))
		if err != nil || bytes.Equal(b, lastApprovals) {
			return err == nil
		}
		lastApprovals = b
		return sendJSON("approvals", b) && flush()
	}

	st := d.state(ctx, true)
	last := st.LastEnded
	// The client reconnects after this long when the stream breaks (EventSource).
	if _, err := w.Write([]byte("retry: 1000\n\n")); err != nil || !send("state", st) || !sendApprovals() || !flush() {
		return
	}
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-d.s.k.Stopped():
			send("shutdown", map[string]string{"status": "stopped"})
			flush()
			return
		case <-ended:
			for _, v := range d.s.k.Ended(last) {
				if !send("end", syscallView(v)) {
					return
				}
				last = v.Seq
			}
			if !flush() {
				return
			}
		case <-tick.C:
			st := d.state(ctx, false)
			if !send("state", st) || !flush() {
				return
			}
		case <-asks:
			// A burst of requests is read once.
			for drained := false; !drained; {
				select {
				case <-asks:
				default:
					drained = true
				}
			}
			if !sendApprovals() {
				return
			}
		case <-reread:
			if !sendApprovals() {
				return
			}
		}
	}
}
