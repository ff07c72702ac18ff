package memory_test

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aios-go/aios/api"
	"github.com/aios-go/aios/internal/memory"
)

// TestTrieCompression1000Sessions stores 1,000 sessions that share a 2,000-token system
// prompt (8,000 bytes at the usual 4 bytes a token) and each add a user turn and an
// assistant reply of their own, then a second exchange (as an append: the common case).
//
// By hand, with S the stored size of the system message and u the size of a session's
// own messages: logical = 1000 (S + u), stored = S + 1000 u. S is about 8,030 bytes (the
// prompt and its JSON wrapping) and u about 4 x 60 bytes, so the ratio is about
// 1000 x 8270 / (8030 + 240000) ≈ 33. The test asserts more than 25.
func TestTrieCompression1000Sessions(t *testing.T) {
	ctx := context.Background()
	m, err := memory.Open(ctx, memory.Config{Path: filepath.Join(t.TempDir(), "trie.db")})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	// 2,000 distinct four-byte tokens: "w000 w001 ... w1999"-like words padded to four bytes.
	var sb strings.Builder
	for i := range 2000 {
		fmt.Fprintf(&sb, "%03x ", i)
	}
	sys := api.Message{Role: "system", Content: api.Content(sb.String())}
	for s := range 1000 {
		msgs := []api.Message{sys,
			{Role: "user", Content: api.Content(fmt.Sprintf("Session %d: please summarise my notes.", s))},
			{Role: "assistant", Content: api.Content(fmt.Sprintf("Here is the summary for session %d.", s))},
		}
		session := fmt.Sprintf("agent%d/session%d", s%10, s)
		if err := m.SaveConversation(ctx, session, msgs); err != nil {
			t.Fatal(err)
		}
		msgs = append(msgs, api.Message{Role: "user", Content: api.Content(fmt.Sprintf("Thanks, session %d.", s))},
			api.Message{Role: "assistant", Content: api.Content(fmt.Sprintf("You're welcome (%d).", s))})
		if err := m.SaveConversation(ctx, session, msgs); err != nil {
			t.Fatal(err)
		}
	}
	got, err := m.Conversation(ctx, "agent7/session407")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 5 || got[0].Content != sys.Content || got[4].Content != "You're welcome (407)." {
		t.Fatalf("session 407 read back wrong: %d messages", len(got))
	}
	st, err := m.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("1000 sessions sharing a 2000-token system prompt: logical %d bytes, stored %d bytes, compression ratio %.1f",
		st.TrieLogicalBytes, st.TrieStoredBytes, st.CompressionRatio)
	if st.CompressionRatio < 25 {
		t.Fatalf("compression ratio %.1f, want > 25 (about 33 by hand)", st.CompressionRatio)
	}
}
