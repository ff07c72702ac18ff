package openai

import (
	"bytes"
	"context"
	"encoding/json"
	"hash/fnv"
	"io"
	"net/http"
	"net/url"
	"unicode"
	"unicode/utf8"

	"github.com/aios-go/aios/internal/llm"
	"github.com/aios-go/aios/internal/llm/upstream"
)

// The kernel's session hints, carried to a server that takes them (aios sim serve's
// POST /v1/kv/sessions/{session}/end and /swap). vLLM has no such requests, so only a
// core configured with Retention sends them, and only one with Offload too sends swaps.
//
// The kernel gives a hint under its own lock and never waits for one, so hints are
// queued and sent by a few workers. A session's hints always go to the same worker,
// so a swap out, the swap in and the end reach the server in the order given.

const (
	hintWorkers = 4
	// hintQueue bounds each worker's backlog; a hint that finds it full is dropped, as
	// a late hint is worth little and the engine works without it.
	hintQueue = 256
	// maxHintSession is aios sim serve's limit on a session name. A longer one (or one
	// it would refuse otherwise) is not sent at all: a kv_session the server refused
	// would fail the call, and a hint can never be worth that.
	maxHintSession = 256
	maxHintReply   = 64 << 10
)

type hint struct {
	session string
	swap    bool // else end
	in      bool
}

// hintable says whether aios sim serve accepts session as a session name.
func hintable(session string) bool {
	// "." and ".." would name no session in the hint's path: the server's router cleans
	// them away.
	if session == "" || session == "." || session == ".." || len(session) > maxHintSession || !utf8.ValidString(session) {
		return false
	}
	for _, r := range session {
		if unicode.IsControl(r) {
			return false
		}
	}
	return true
}

// startHints starts the workers; Close stops them.
func (c *Core) startHints() {
	c.hints = make([]chan hint, hintWorkers)
	for i := range c.hints {
		q := make(chan hint, hintQueue)
		c.hints[i] = q
		c.hintsDone.Add(1)
		go func() {
			defer c.hintsDone.Done()
			for {
				select {
				case <-c.closing.Done():
					return
				case h := <-q:
					c.sendHint(h)
				}
			}
		}()
	}
}

func (c *Core) queueHint(h hint) {
	if c.hints == nil || !hintable(h.session) || c.closing.Err() != nil {
		return
	}
	f := fnv.New32a()
	f.Write([]byte(h.session))
	select {
	case c.hints[f.Sum32()%uint32(len(c.hints))] <- h:
	default:
		// Logged at 1, 2, 4, 8... drops, so that a server that stops answering does not
		// flood the log.
		if n := c.hintsDropped.Add(1); n&(n-1) == 0 {
			c.log.Warn("session hint dropped: the queue to the server is full", "backend", c.cfg.Name, "base", c.base,
				"session", h.session, "hint", h.name(), "dropped", n)
		}
	}
}

func (h hint) name() string {
	switch {
	case !h.swap:
		return "end"
	case h.in:
		return "swap in"
	}
	return "swap out"
}

// sendHint makes one hint request. Failures are logged and otherwise ignored: a hint
// only helps the engine choose what to evict, and no call depends on it.
func (c *Core) sendHint(h hint) {
	ctx, cancel := context.WithTimeout(c.closing, c.cfg.HealthTimeout)
	defer cancel()
	u := c.base + "kv/sessions/" + url.PathEscape(h.session) + "/end"
	body := []byte("{}")
	if h.swap {
		u = c.base + "kv/sessions/" + url.PathEscape(h.session) + "/swap"
		body = []byte(`{"direction":"out"}`)
		if h.in {
			body = []byte(`{"direction":"in"}`)
		}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(body))
	if err != nil {
		c.log.Warn("session hint not sent", "backend", c.cfg.Name, "session", h.session, "hint", h.name(), "err", err)
		return
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+c.key)
	resp, err := c.http.Do(req)
	if err != nil {
		if c.closing.Err() == nil {
			c.log.Warn("session hint failed", "backend", c.cfg.Name, "base", c.base, "session", h.session, "hint", h.name(), "err", err)
		}
		return
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(io.LimitReader(resp.Body, maxHintReply))
	if resp.StatusCode != http.StatusOK {
		c.log.Warn("session hint refused", "backend", c.cfg.Name, "base", c.base, "session", h.session, "hint", h.name(),
			"status", resp.StatusCode, "message", upstream.ErrorMessage(data))
		return
	}
	var done struct {
		Known  bool `json:"known"`
		Blocks int  `json:"blocks"`
	}
	_ = json.Unmarshal(data, &done)
	c.log.Debug("session hint applied", "backend", c.cfg.Name, "session", h.session, "hint", h.name(), "known", done.Known, "blocks", done.Blocks)
}

// WithHints is the core as the kernel should hold it: with Retention it is also an
// llm.SessionEnder, and with Offload an llm.SessionSwapper, so the kernel's checks of
// what a core can do (working_set swap needs every core to swap) see what the server
// takes; without Retention it is c itself, as vLLM takes neither hint.
func (c *Core) WithHints() llm.Core {
	switch {
	case c.cfg.Retention && c.cfg.Offload:
		return swapperCore{enderCore{c}}
	case c.cfg.Retention:
		return enderCore{c}
	}
	return c
}

type enderCore struct{ *Core }

// EndSession asks the server to demote the session's context (llm.SessionEnder).
func (c enderCore) EndSession(session string) { c.queueHint(hint{session: session}) }

type swapperCore struct{ enderCore }

// SwapSession asks the server to move the session's context through its CPU tier
// (llm.SessionSwapper).
func (c swapperCore) SwapSession(session string, in bool) {
	c.queueHint(hint{session: session, swap: true, in: in})
}

var (
	_ llm.SessionEnder   = enderCore{}
	_ llm.SessionSwapper = swapperCore{}
)
