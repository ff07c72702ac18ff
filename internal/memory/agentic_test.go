package memory_test

import (
	"context"
	"encoding/json"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/aios-go/aios/api"
	"github.com/aios-go/aios/internal/memory"
)

// A-MEM's three steps with a scripted model: the new note gets the attributes the model
// extracted (added to the caller's), the neighbour the model links is linked both ways
// and gets its context and tags rewritten, the neighbour it does not link is untouched.
func TestAddAgenticLinksAndEvolves(t *testing.T) {
	ctx := context.Background()
	m, err := memory.Open(ctx, memory.Config{Path: filepath.Join(t.TempDir(), "memory.db")})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	cello, _ := m.Add(ctx, "a", memory.Note{Content: "Mia plays the cello on Tuesdays", Context: "family schedule"})
	soup, _ := m.Add(ctx, "a", memory.Note{Content: "Mia had tomato soup on Tuesday"})

	var calls []string
	caller := func(_ context.Context, agent string, msgs []api.Message, tool api.Tool) (json.RawMessage, error) {
		calls = append(calls, agent+":"+tool.Function.Name)
		if tool.Function.Name == "record_note_attributes" {
			return json.RawMessage(`{"keywords": ["Mia", "cello", "lesson"], "context": "music lessons", "tags": ["music"]}`), nil
		}
		// The neighbours come in order of similarity: find which number each note has.
		user := string(msgs[len(msgs)-1].Content)
		args := map[string]any{}
		for _, n := range []memory.Note{cello, soup} {
			idx := indexIn(user, n.Content)
			if idx == 0 {
				t.Fatalf("neighbour %q not shown to the model:\n%s", n.Content, user)
			}
			if n.ID == cello.ID {
				args[key("link_", idx)] = true
				args[key("context_", idx)] = "cello lessons, now on Wednesdays"
				args[key("tags_", idx)] = []string{"music", "schedule"}
			} else {
				args[key("link_", idx)] = false
				args[key("context_", idx)] = "should not be applied"
			}
		}
		b, _ := json.Marshal(args)
		return b, nil
	}
	added, err := m.AddAgentic(ctx, "a", memory.Note{Content: "Mia's cello lesson moved to Wednesday", Tags: []string{"family"}}, caller)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(calls, []string{"a:record_note_attributes", "a:evolve_memory"}) {
		t.Fatalf("LLM calls %v", calls)
	}
	if !slices.Equal(added.Tags, []string{"family", "music"}) || added.Context != "music lessons" ||
		!slices.Contains(added.Keywords, "cello") || !slices.Equal(added.Links, []string{cello.ID}) {
		t.Fatalf("new note %+v", added)
	}
	c, _ := m.Get(ctx, "a", cello.ID)
	if c.Context != "cello lessons, now on Wednesdays" || !slices.Equal(c.Tags, []string{"music", "schedule"}) || !slices.Equal(c.Links, []string{added.ID}) {
		t.Fatalf("linked neighbour not evolved: %+v", c)
	}
	s, _ := m.Get(ctx, "a", soup.ID)
	if s.Context != "" || len(s.Links) != 0 {
		t.Fatalf("unlinked neighbour changed: %+v", s)
	}

	// Without an LLM the call is refused before anything is stored.
	if _, err := m.AddAgentic(ctx, "a", memory.Note{Content: "x"}, nil); api.KindOf(err) != api.PolicyNotEnabled {
		t.Fatalf("no LLM: %v", err)
	}
}

func key(prefix string, i int) string { return prefix + strconv.Itoa(i) }

// indexIn finds the number (1-based) the evolve prompt gave the note with content c.
func indexIn(prompt, c string) int {
	for i := 1; i <= 9; i++ {
		if strings.Contains(prompt, strconv.Itoa(i)+". "+c) {
			return i
		}
	}
	return 0
}
