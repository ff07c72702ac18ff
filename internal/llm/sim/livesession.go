package sim

import (
	"container/list"
	"context"
)

// Live remembers the context of each session's latest finished request, so that when the
// session's owner says it has ended (EndSession) the engine can evict that context first
// (Engine.Forget): it will not be reused, and an LRU cache would otherwise keep it over
// the contexts of programs still running. Only block hashes are kept, at most
// maxSessions sessions, the least recently finished forgotten first.
const maxSessions = 4096

type sessionCtx struct {
	name   string
	hashes []uint64 // the prompt's full blocks
	keep   int      // leading blocks other sessions share (system prompt, tools)
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
	ctx := &sessionCtx{name: lr.session, hashes: lr.r.hashes[:n:n], keep: lr.keep / bs}
	if e, ok := l.sess.byKey[lr.session]; ok {
		e.Value = ctx
		l.sess.lru.MoveToBack(e)
		return
	}
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
	return SessionHint{Known: true, Blocks: l.eng.forgetHashes(ctx.hashes, ctx.keep)}
}

// EndSession tells the engine that session has ended: its latest context, past the
// prefix it shares with other sessions, is evicted before any other free block. A
// session never seen, or already forgotten, is ignored.
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
	r := &Request{hashes: e.Value.(*sessionCtx).hashes}
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
