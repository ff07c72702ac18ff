package sim

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

// A session's end demotes its latest context past the system prompt, which other
// sessions share: the blocks demoted are its full blocks beyond the shared prefix.
func TestLiveEndSessionForgetsItsContext(t *testing.T) {
	l := newTestLive(t, fast)
	bs := l.eng.bs
	msgs := []Message{{Role: "system", Content: strings.Repeat("rules ", 3*bs)},
		{Role: "user", Content: strings.Repeat("task ", 4*bs)}}
	res, err := l.Generate(context.Background(), GenRequest{Messages: msgs, KVSession: "a", MaxTokens: 4}, nil)
	if err != nil {
		t.Fatal(err)
	}
	shared := sharedPrefix(msgs, nil)
	want := int64(res.PromptTokens/bs - shared/bs)
	if want <= 0 {
		t.Fatalf("test set-up: prompt %d tokens, shared %d", res.PromptTokens, shared)
	}
	l.EndSession("unknown") // ignored
	l.EndSession("a")
	deadline := time.Now().Add(10 * time.Second)
	for l.Stats().ForgottenBlocks == 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if got := l.Stats().ForgottenBlocks; got != want {
		t.Fatalf("forgot %d blocks, want %d (the prompt's full blocks past the %d shared tokens)", got, want, shared)
	}
	// Forgotten once: a second end of the same session does nothing.
	l.EndSession("a")
	if _, err := l.Generate(context.Background(), GenRequest{Messages: chat, MaxTokens: 1}, nil); err != nil {
		t.Fatal(err)
	}
	if got := l.Stats().ForgottenBlocks; got != want {
		t.Fatalf("after a second end: forgot %d blocks in all, want %d", got, want)
	}
}

// At most maxSessions sessions are remembered, the least recently finished dropped.
func TestLiveRemembersBoundedSessions(t *testing.T) {
	l := &Live{eng: newTestEngine(t, "test", ModeVLLM, PolicyFCFS)}
	for i := 0; i < maxSessions+10; i++ {
		lr := &liveReq{r: &Request{Prompt: ids(uint64(i), 2*l.eng.bs)}, session: fmt.Sprintf("s%d", i)}
		l.remember(lr)
	}
	if n := l.sess.lru.Len(); n != maxSessions || len(l.sess.byKey) != maxSessions {
		t.Fatalf("remembered %d sessions (%d keys), want %d", n, len(l.sess.byKey), maxSessions)
	}
	if _, ok := l.sess.byKey["s0"]; ok {
		t.Error("the first session finished is still remembered")
	}
}

// SwapSession out copies a session's latest context to the CPU tier, block for block;
// in, with every block still on the GPU, copies nothing back.
func TestLiveSwapSession(t *testing.T) {
	cfg := fast
	cfg.KVOffloadGiB = 1
	l := newTestLive(t, cfg)
	bs := l.eng.bs
	msgs := []Message{{Role: "system", Content: "rules"}, {Role: "user", Content: strings.Repeat("task ", 4*bs)}}
	res, err := l.Generate(context.Background(), GenRequest{Messages: msgs, KVSession: "a", MaxTokens: 4}, nil)
	if err != nil {
		t.Fatal(err)
	}
	before := l.Stats().OffloadStoredBlocks
	l.SwapSession("a", false)
	want := before + int64(res.PromptTokens/bs)
	deadline := time.Now().Add(10 * time.Second)
	for l.Stats().OffloadStoredBlocks < want && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if got := l.Stats().OffloadStoredBlocks; got != want {
		t.Fatalf("stored %d blocks in all, want %d (the prompt's %d full blocks)", got, want, res.PromptTokens/bs)
	}
	l.SwapSession("a", true)
	if _, err := l.Generate(context.Background(), GenRequest{Messages: chat, MaxTokens: 1}, nil); err != nil {
		t.Fatal(err)
	}
	if got := l.Stats().PrefetchedBlocks; got != 0 {
		t.Fatalf("prefetched %d blocks of a context still on the GPU", got)
	}
}

// A session that forks keeps each branch: a context extending one replaces it, a
// diverging one is added, and the end demotes every branch's blocks past the shared
// prefix, each once.
func TestSessionBranches(t *testing.T) {
	c := &sessionCtx{branches: [][]uint64{{1, 2, 3}}, keep: 1}
	c.add([]uint64{1, 2, 3, 4}) // extends the branch
	c.add([]uint64{1, 2, 5})    // forks after block 2
	c.add([]uint64{1, 2})       // a prefix of both: replaces the oldest it matches, kept at its full length
	if len(c.branches) != 2 || !slices.Equal(c.latest(), []uint64{1, 2, 3, 4}) || !slices.Equal(c.branches[0], []uint64{1, 2, 5}) {
		t.Fatalf("branches %v", c.branches)
	}
	if got := c.forgettable(); !slices.Equal(got, []uint64{2, 3, 4, 5}) {
		t.Fatalf("forgettable %v, want 2 3 4 5 (past the shared block 1, each once, latest branch first)", got)
	}
	for i := 0; i < maxBranches+3; i++ {
		c.add([]uint64{100 + uint64(i)})
	}
	if len(c.branches) != maxBranches {
		t.Fatalf("%d branches kept, want %d", len(c.branches), maxBranches)
	}
}

// Two diverging requests of one session: its end demotes both contexts' blocks.
func TestLiveEndSessionForgetsEveryBranch(t *testing.T) {
	l := newTestLive(t, fast)
	bs := l.eng.bs
	system := Message{Role: "system", Content: strings.Repeat("rules ", 3*bs)}
	var want int64
	for _, task := range []string{"left ", "right "} {
		msgs := []Message{system, {Role: "user", Content: strings.Repeat(task, 4*bs)}}
		res, err := l.Generate(context.Background(), GenRequest{Messages: msgs, KVSession: "a", MaxTokens: 4}, nil)
		if err != nil {
			t.Fatal(err)
		}
		want += int64(res.PromptTokens/bs - sharedPrefix(msgs, nil)/bs)
	}
	if _, err := l.EndSessionWait(context.Background(), "a"); err != nil {
		t.Fatal(err)
	}
	if got := l.Stats().ForgottenBlocks; got != want {
		t.Fatalf("forgot %d blocks, want %d (both branches past the shared system prompt)", got, want)
	}
}
