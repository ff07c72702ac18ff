package sim

import (
	"container/list"
	"context"
	"slices"
)

// Live remembers the contexts of each session's latest finished requests, so that when
// the session's owner says it has ended (EndSession) the engine can evict them first
// (Engine.Forget): they will not be reused, and an LRU cache would otherwise keep them
// over the contexts of programs still running. Only block hashes are kept, at most
// maxSessions sessions, the least recently finished forgotten first.
const maxSessions = 4096

// maxBranches is how many diverging contexts a session keeps. An agent that samples
// several continuations of one context (tree search, parallel tool plans) forks its
// session; remembering only the latest branch left the others' blocks to linger after
// the end (in aios bench the end hint naming only one branch of each program was most
// of what +aeg recomputed).
const maxBranches = 8

type sessionCtx struct {
	name string
	// branches are the full blocks of the session's diverging contexts, oldest first;
	// a new prompt that extends one replaces it.
	branches [][]uint64
	keep     int // leading blocks other sessions share (system prompt, tools)
}

// latest is the context the session finished last.
func (c *sessionCtx) latest() []uint64 { return c.branches[len(c.branches)-1] }

// add records hashes as the session's latest context: in place of a branch it extends
// (or that extends it: a shorter retry of the same context), else as a new branch, the
// oldest dropped past maxBranches.
func (c *sessionCtx) add(hashes []uint64) {
	for i, b := range c.branches {
		if isPrefix(b, hashes) || isPrefix(hashes, b) {
			if len(hashes) < len(b) {
				hashes = b
			}
			c.branches = append(append(c.branches[:i:i], c.branches[i+1:]...), hashes)
			return
		}
	}
	c.branches = append(c.branches, hashes)
	if len(c.branches) > maxBranches {
		c.branches = c.branches[1:]
	}
}

func isPrefix(a, b []uint64) bool {
	return len(a) <= len(b) && slices.Equal(a, b[:len(a)])
}

// forgettable is every branch's blocks past the shared prefix, each block once, latest
// branch first.
func (c *sessionCtx) forgettable() []uint64 {
	seen := map[uint64]bool{}
	var out []uint64
	for i := len(c.branches) - 1; i >= 0; i-- {
		for _, h := range c.branches[i][min(c.keep, len(c.branches[i])):] {
			if !seen[h] {
				seen[h] = true
				out = append(out, h)
			}
		}
	}
	return out
}

type sessions struct {
	lru   list.List // of *sessionCtx, most recent at the back
	byKey map[string]*list.Element
}

// remember records lr's prompt as its session's latest context.
func (l *Live) remember(lr *liveReq) {
	if lr.session == "" || l.eng.kv == nil || !l.eng.kv.caching {
		return
	}
	if l.sess.byKey == nil {
		l.sess.byKey = map[string]*list.Element{}
	}
	bs := l.eng.bs
	n := len(lr.r.Prompt) / bs
	lr.r.ensureHashes(n, bs)
	hashes := lr.r.hashes[:n:n]
	if e, ok := l.sess.byKey[lr.session]; ok {
		ctx := e.Value.(*sessionCtx)
		ctx.add(hashes)
		ctx.keep = lr.keep / bs
		l.sess.lru.MoveToBack(e)
		return
	}
	ctx := &sessionCtx{name: lr.session, branches: [][]uint64{hashes}, keep: lr.keep / bs}
	l.sess.byKey[lr.session] = l.sess.lru.PushBack(ctx)
	if l.sess.lru.Len() > maxSessions {
		old := l.sess.lru.Remove(l.sess.lru.Front()).(*sessionCtx)
		delete(l.sess.byKey, old.name)
	}
}

// endSession demotes the ended session's context in the cache and forgets it.
func (l *Live) endSession(name string) SessionHint {
	e, ok := l.sess.byKey[name]
	if !ok {
		return SessionHint{}
	}
	ctx := l.sess.lru.Remove(e).(*sessionCtx)
	delete(l.sess.byKey, name)
	return SessionHint{Known: true, Blocks: l.eng.forgetHashes(ctx.forgettable(), 0)}
}

// EndSession tells the engine that session has ended: its contexts (every branch it
// forked into, up to maxBranches), past the prefix it shares with other sessions, are
// evicted before any other free block. A session never seen, or already forgotten, is
// ignored.
func (l *Live) EndSession(session string) {
	if session != "" {
		l.send(command{end: session})
	}
}

// sharedPrefix is how many leading tokens of a chat prompt other sessions of its kind
// share: the system message and the tools, which encodeChat writes first.
func sharedPrefix(msgs []Message, tools []Tool) int {
	if len(msgs) > 0 && msgs[0].Role == "system" {
		msgs = msgs[:1]
	} else {
		msgs = nil
	}
	ids, _ := encodeChat(msgs, tools, "", false)
	return len(ids)
}

// SwapSession moves session's latest context through the CPU KV tier: out copies it
// there (Engine.Store: the GPU keeps its eviction order), in copies back what the GPU
// lost (Engine.Prefetch, paid by the next step). Without a tier, or for a session not
// remembered, it does nothing.
func (l *Live) SwapSession(session string, in bool) {
	if session != "" {
		l.send(command{swap: session, swapIn: in})
	}
}

func (l *Live) swapSession(name string, in bool) SessionHint {
	e, ok := l.sess.byKey[name]
	if !ok {
		return SessionHint{}
	}
	r := &Request{hashes: e.Value.(*sessionCtx).latest()}
	if in {
		return SessionHint{Known: true, Blocks: l.eng.Prefetch(r)}
	}
	return SessionHint{Known: true, Blocks: l.eng.Store(r)}
}

// SessionHint is what a session hint found and did, for callers that report it (the
// server's /v1/kv/sessions endpoints).
type SessionHint struct {
	// Known: the engine remembered the session's latest context. An unknown session is
	// no error: it never finished a request here, ended already, or was dropped from
	// the maxSessions remembered.
	Known bool
	// Blocks: for an end, the blocks put first in line for eviction; for a swap out,
	// those newly copied to the CPU tier; for a swap in, those copied back to the GPU.
	Blocks int
}

// EndSessionWait is EndSession, waiting until the engine has applied it to say what it
// did. It fails only when ctx ends first or the engine is closed (ErrClosed).
func (l *Live) EndSessionWait(ctx context.Context, session string) (SessionHint, error) {
	return l.hintWait(ctx, command{end: session})
}

// SwapSessionWait is SwapSession, waiting until the engine has applied it. Without a
// CPU tier (Offloads) it does nothing and reports so.
func (l *Live) SwapSessionWait(ctx context.Context, session string, in bool) (SessionHint, error) {
	return l.hintWait(ctx, command{swap: session, swapIn: in})
}

func (l *Live) hintWait(ctx context.Context, c command) (SessionHint, error) {
	if c.end == "" && c.swap == "" {
		return SessionHint{}, nil
	}
	// Buffered, so the loop never waits on a caller that went away.
	c.reply = make(chan SessionHint, 1)
	if !l.send(c) {
		return SessionHint{}, ErrClosed
	}
	select {
	case h := <-c.reply:
		return h, nil
	case <-ctx.Done():
		return SessionHint{}, ctx.Err()
	case <-l.done:
		// The loop may have answered just before it stopped.
		select {
		case h := <-c.reply:
			return h, nil
		default:
			return SessionHint{}, ErrClosed
		}
	}
}

// Offloads reports whether the engine has a CPU KV tier that swaps move KV through.
func (l *Live) Offloads() bool { return l.offloads }
