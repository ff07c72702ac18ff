package sim

import (
	"bytes"
	"fmt"
	"net/http"
	"unicode"
	"unicode/utf8"
)

// The session hints over HTTP: what an in-process caller does with Live.EndSession and
// Live.SwapSession, a kernel in front of `aios sim serve` asks for with
//
//	POST /v1/kv/sessions/{session}/end    body: none, or {}
//	POST /v1/kv/sessions/{session}/swap   body: {"direction": "out" | "in"}
//
// The session is the kv_session its requests carried. Both answer once the engine has
// applied the hint, saying whether the engine knew the session and how many blocks
// moved; an unknown session is a 200 with "known": false, not an error, because a
// kernel sends every hint to every engine it runs on, and only one of them served it.

const (
	// maxSessionName bounds a session name: the engine keeps one per session.
	maxSessionName = 256
	// maxHintBody caps a hint's body, which holds one short field at most.
	maxHintBody = 4 << 10
)

// checkSessionName refuses names that cannot have come from a well-behaved client and
// would be awkward in logs: empty, too long, not UTF-8, or holding control characters.
func checkSessionName(field, name string) error {
	switch {
	case name == "":
		return badRequest("%s must not be empty", field)
	case len(name) > maxSessionName:
		return badRequest("%s is %d bytes long; at most %d are allowed", field, len(name), maxSessionName)
	case !utf8.ValidString(name):
		return badRequest("%s must be valid UTF-8", field)
	}
	for _, r := range name {
		if unicode.IsControl(r) {
			return badRequest("%s must not contain control characters", field)
		}
	}
	return nil
}

type swapBody struct {
	Direction string `json:"direction"`
}

type sessionHintResponse struct {
	Object    string `json:"object"` // kv.session.end or kv.session.swap
	Session   string `json:"session"`
	Direction string `json:"direction,omitempty"`
	Known     bool   `json:"known"`
	Blocks    int    `json:"blocks"`
}

func (s *Server) sessionHint(w http.ResponseWriter, r *http.Request) {
	action := r.PathValue("action")
	if action != "end" && action != "swap" {
		writeError(w, &apiError{http.StatusNotFound, fmt.Sprintf("unknown session hint %q: the hints are end and swap", action)})
		return
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		writeError(w, &apiError{http.StatusMethodNotAllowed, fmt.Sprintf("%s /v1/kv/sessions/{session}/%s: use POST", r.Method, action)})
		return
	}
	session := r.PathValue("session")
	if err := checkSessionName("the session in the path", session); err != nil {
		writeError(w, err)
		return
	}
	data, err := readBody(r.Body, maxHintBody)
	if err != nil {
		writeError(w, err)
		return
	}
	resp := sessionHintResponse{Object: "kv.session." + action, Session: session}
	var h SessionHint
	if action == "end" {
		// No body is as good as an empty object: the end names nothing more.
		if len(bytes.TrimSpace(data)) > 0 {
			var none struct{}
			if err := unmarshalBody(data, &none, true); err != nil {
				writeError(w, err)
				return
			}
		}
		h, err = s.live.EndSessionWait(r.Context(), session)
	} else {
		var body swapBody
		if len(bytes.TrimSpace(data)) == 0 {
			writeError(w, badRequest(`the body must be {"direction": "out"} or {"direction": "in"}`))
			return
		}
		if err := unmarshalBody(data, &body, true); err != nil {
			writeError(w, err)
			return
		}
		if body.Direction != "out" && body.Direction != "in" {
			writeError(w, badRequest(`direction must be "out" or "in", got %q`, body.Direction))
			return
		}
		if !s.live.Offloads() {
			// A swap that silently did nothing would let the kernel count a context as
			// off the GPU that never left it.
			writeError(w, &apiError{http.StatusConflict, "this engine has no CPU KV tier to swap through: start it with --kv-offload-gib"})
			return
		}
		resp.Direction = body.Direction
		h, err = s.live.SwapSessionWait(r.Context(), session, body.Direction == "in")
	}
	if err != nil {
		if r.Context().Err() == nil {
			writeError(w, err)
		}
		return
	}
	resp.Known, resp.Blocks = h.Known, h.Blocks
	writeJSON(w, resp)
}
