package sim

import "container/list"

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
func (l *Live) endSession(name string) {
	e, ok := l.sess.byKey[name]
	if !ok {
		return
	}
	ctx := l.sess.lru.Remove(e).(*sessionCtx)
	delete(l.sess.byKey, name)
	l.eng.forgetHashes(ctx.hashes, ctx.keep)
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

func (l *Live) swapSession(name string, in bool) {
	e, ok := l.sess.byKey[name]
	if !ok {
		return
	}
	r := &Request{hashes: e.Value.(*sessionCtx).hashes}
	if in {
		l.eng.Prefetch(r)
	} else {
		l.eng.Store(r)
	}
}
