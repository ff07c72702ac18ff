package tool

import (
	"sync"
	"time"
	"unicode/utf8"

	"github.com/aios-go/aios/api"
)

// Bounds of the call log: it is a recent history for the agent and its group to read
// (GET /v1/tools/calls), not an archive; the access audit log keeps every decision.
const (
	logPerAgent  = 100  // calls kept per agent
	logAgents    = 1024 // agents kept; the one written to longest ago goes first
	logArgsBytes = 1024 // arguments kept per call
)

// Call is one tool call in an agent's log.
type Call struct {
	Tool    string        `json:"tool"`
	Session string        `json:"session,omitempty"`
	Start   time.Time     `json:"start"`
	Took    time.Duration `json:"took_ns"`
	// Args are the call's arguments as sent, cut to 1 KiB (ArgsCut says so).
	Args    string `json:"args"`
	ArgsCut bool   `json:"args_cut,omitempty"`
	// OutputBytes is the size of the output the model read; IsError marks an error the
	// tool reported; Kind and Error a call that failed.
	OutputBytes int      `json:"output_bytes"`
	IsError     bool     `json:"is_error,omitempty"`
	Kind        api.Kind `json:"kind,omitempty"`
	Error       string   `json:"error,omitempty"`
}

type agentCalls struct {
	ring    [logPerAgent]Call
	n       int // calls ever added
	written time.Time
}

// callLog keeps the last calls of each agent. Its own lock keeps it off the registry's.
type callLog struct {
	mu     sync.Mutex
	agents map[string]*agentCalls
}

func (l *callLog) add(in Input, name string, start time.Time, took time.Duration, res Result, err error) {
	c := Call{Tool: name, Session: in.Session, Start: start, Took: took,
		OutputBytes: len(res.Content), IsError: res.IsError}
	c.Args, c.ArgsCut = cutUTF8(string(in.Args), logArgsBytes)
	if err != nil {
		c.Kind, c.Error = api.KindOf(err), err.Error()
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.agents == nil {
		l.agents = map[string]*agentCalls{}
	}
	a := l.agents[in.Agent]
	if a == nil {
		if len(l.agents) >= logAgents {
			l.evictLocked()
		}
		a = &agentCalls{}
		l.agents[in.Agent] = a
	}
	a.ring[a.n%logPerAgent] = c
	a.n++
	a.written = time.Now()
}

func (l *callLog) evictLocked() {
	var oldest string
	var at time.Time
	for name, a := range l.agents {
		if oldest == "" || a.written.Before(at) {
			oldest, at = name, a.written
		}
	}
	delete(l.agents, oldest)
}

// Calls returns agent's last calls, newest first, at most limit (all kept when
// limit <= 0).
func (m *Manager) Calls(agent string, limit int) []Call {
	l := &m.calls
	l.mu.Lock()
	defer l.mu.Unlock()
	a := l.agents[agent]
	if a == nil {
		return []Call{}
	}
	kept := min(a.n, logPerAgent)
	if limit <= 0 || limit > kept {
		limit = kept
	}
	out := make([]Call, 0, limit)
	for i := 1; i <= limit; i++ {
		out = append(out, a.ring[(a.n-i)%logPerAgent])
	}
	return out
}

// cutUTF8 cuts s to at most n bytes without splitting a character.
func cutUTF8(s string, n int) (string, bool) {
	if len(s) <= n {
		return s, false
	}
	for back := 0; n > 0 && back < utf8.UTFMax-1 && !utf8.RuneStart(s[n]); back++ {
		n--
	}
	return s[:n], true
}
