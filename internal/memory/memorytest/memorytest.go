// Package memorytest is the conformance suite every memory backend passes: the same
// behaviour, checked the same way, against SQLite and PostgreSQL.
package memorytest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aios-go/aios/api"
	"github.com/aios-go/aios/internal/memory"
)

// Opener opens a Manager on one store, filling in cfg's backend fields. Every call opens
// the same store, so a test can close a Manager and open the store again.
type Opener func(cfg memory.Config) (*memory.Manager, error)

// Run runs the suite. newStore makes a fresh, empty store for one test.
func Run(t *testing.T, newStore func(t *testing.T) Opener) {
	tests := []struct {
		name string
		fn   func(t *testing.T, op Opener)
	}{
		{"CRUD", testCRUD},
		{"Scoping", testScoping},
		{"SharedBlocks", testBlocks},
		{"History", testHistory},
		{"HistoryActor", testHistoryActor},
		{"Retrieve", testRetrieve},
		{"RetrieveFilters", testFilters},
		{"RetrieveIgnoresHotSet", testRetrieveCold},
		{"HotSetBudget", testBudget},
		{"Neighbours", testNeighbours},
		{"Allow", testAllow},
		{"Conversations", testConversations},
		{"Persistence", testPersistence},
		{"ConcurrentWriters", testConcurrent},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.fn(t, newStore(t))
		})
	}
}

func open(t *testing.T, op Opener, cfg memory.Config) *memory.Manager {
	t.Helper()
	m, err := op(cfg)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

// Clock is a settable clock for Config.Now, advancing a second at each reading so
// every write has a distinct time.
type Clock struct {
	mu sync.Mutex
	t  time.Time
}

func NewClock() *Clock { return &Clock{t: time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)} }

func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(time.Second)
	return c.t
}

func kindOf(err error) api.Kind {
	var e *api.Error
	if errors.As(err, &e) {
		return e.Kind
	}
	return ""
}

func wantKind(t *testing.T, err error, k api.Kind) {
	t.Helper()
	if kindOf(err) != k {
		t.Fatalf("err = %v, want kind %s", err, k)
	}
}

func must[T any](t *testing.T) func(T, error) T {
	return func(v T, err error) T {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
}

func add(t *testing.T, m *memory.Manager, actor string, n memory.Note) memory.Note {
	t.Helper()
	out, err := m.Add(context.Background(), actor, n)
	if err != nil {
		t.Fatalf("add %q: %v", n.Content, err)
	}
	return out
}

func testCRUD(t *testing.T, op Opener) {
	ctx := context.Background()
	m := open(t, op, memory.Config{Now: NewClock().Now})
	n := add(t, m, "alice", memory.Note{Content: "Alice's cat is called Miso", Keywords: []string{"cat", " cat", ""},
		Tags: []string{"pets"}, Category: "personal", Context: "talking about pets", Metadata: map[string]any{"source": "chat"}})
	if n.ID == "" || n.Agent != "alice" || n.Created.IsZero() || !n.Created.Equal(n.Updated) {
		t.Fatalf("added %+v", n)
	}
	if !slices.Equal(n.Keywords, []string{"cat"}) {
		t.Fatalf("keywords not cleaned: %q", n.Keywords)
	}
	got := must[memory.Note](t)(m.Get(ctx, "alice", n.ID))
	if got.Content != n.Content || got.Category != "personal" || got.Context != "talking about pets" ||
		got.Metadata["source"] != "chat" || !slices.Equal(got.Tags, []string{"pets"}) {
		t.Fatalf("get %+v", got)
	}
	// nil fields are unchanged: AIOS's SDK sends content: null.
	tags := []string{"pets", "cats"}
	up := must[memory.Note](t)(m.Update(ctx, "alice", n.ID, memory.Patch{Tags: &tags}))
	if up.Content != n.Content || !slices.Equal(up.Tags, tags) || !up.Updated.After(n.Updated) {
		t.Fatalf("update %+v", up)
	}
	content := "Alice's cat is called Tofu"
	must[memory.Note](t)(m.Update(ctx, "alice", n.ID, memory.Patch{Content: &content}))
	hits := must[[]memory.Hit](t)(m.Retrieve(ctx, "alice", memory.Query{Text: "Tofu"}))
	if len(hits) != 1 || hits[0].ID != n.ID {
		t.Fatalf("retrieve after update: %+v", hits)
	}
	empty := ""
	_, err := m.Update(ctx, "alice", n.ID, memory.Patch{Content: &empty})
	wantKind(t, err, api.CallerBadRequest)
	if err := m.Remove(ctx, "alice", n.ID); err != nil {
		t.Fatal(err)
	}
	_, err = m.Get(ctx, "alice", n.ID)
	wantKind(t, err, api.CallerNotFound)
	wantKind(t, m.Remove(ctx, "alice", n.ID), api.CallerNotFound)
	if hits := must[[]memory.Hit](t)(m.Retrieve(ctx, "alice", memory.Query{Text: "Tofu cat"})); len(hits) != 0 {
		t.Fatalf("removed note retrieved: %+v", hits)
	}
	_, err = m.Add(ctx, "alice", memory.Note{})
	wantKind(t, err, api.CallerBadRequest)
	_, err = m.Add(ctx, "", memory.Note{Content: "x"})
	wantKind(t, err, api.CallerBadRequest)
	_, err = m.Add(ctx, "alice", memory.Note{Content: strings.Repeat("x", 300<<10)})
	wantKind(t, err, api.CallerTooLarge)
	_, err = m.Retrieve(ctx, "alice", memory.Query{Text: "x", Mode: "magic"})
	wantKind(t, err, api.CallerBadRequest)
}

func testScoping(t *testing.T, op Opener) {
	ctx := context.Background()
	m := open(t, op, memory.Config{})
	a := add(t, m, "alice", memory.Note{Content: "the launch code is banana"})
	add(t, m, "bob", memory.Note{Content: "bob likes banana bread"})
	// Another agent's note is reported missing, not forbidden: ids reveal nothing.
	_, err := m.Get(ctx, "bob", a.ID)
	wantKind(t, err, api.CallerNotFound)
	wantKind(t, m.Remove(ctx, "bob", a.ID), api.CallerNotFound)
	c := "stolen"
	_, err = m.Update(ctx, "bob", a.ID, memory.Patch{Content: &c})
	wantKind(t, err, api.CallerNotFound)
	_, err = m.History(ctx, "bob", a.ID)
	wantKind(t, err, api.CallerNotFound)
	for _, agent := range []string{"alice", "bob"} {
		hits := must[[]memory.Hit](t)(m.Retrieve(ctx, agent, memory.Query{Text: "banana", K: 10}))
		if len(hits) != 1 || hits[0].Agent != agent {
			t.Fatalf("%s retrieved %+v", agent, hits)
		}
	}
	_, err = m.Add(ctx, "bob", memory.Note{Agent: "alice", Content: "forged"})
	wantKind(t, err, api.PolicyDenied)
}

func testBlocks(t *testing.T, op Opener) {
	ctx := context.Background()
	m := open(t, op, memory.Config{})
	b := must[memory.Block](t)(m.CreateBlock(ctx, "alice", "team"))
	if b.Owner != "alice" || b.Name != "team" {
		t.Fatalf("block %+v", b)
	}
	_, err := m.CreateBlock(ctx, "bob", "team")
	wantKind(t, err, api.CallerBadRequest)
	_, err = m.Add(ctx, "bob", memory.Note{Block: "team", Content: "not yet"})
	wantKind(t, err, api.PolicyDenied)
	n := add(t, m, "alice", memory.Note{Block: "team", Content: "the staging server is kiwi"})
	_, err = m.Get(ctx, "bob", n.ID)
	wantKind(t, err, api.CallerNotFound)
	if err := m.AttachBlock(ctx, "bob", "team"); err != nil {
		t.Fatal(err)
	}
	wantKind(t, m.AttachBlock(ctx, "bob", "nope"), api.CallerNotFound)
	if got := must[memory.Note](t)(m.Get(ctx, "bob", n.ID)); got.Agent != "alice" || got.Block != "team" {
		t.Fatalf("bob reads %+v", got)
	}
	// Attached agents write the block too.
	bn := add(t, m, "bob", memory.Note{Block: "team", Content: "the prod server is mango"})
	hits := must[[]memory.Hit](t)(m.Retrieve(ctx, "alice", memory.Query{Text: "server", K: 10}))
	if len(hits) != 2 {
		t.Fatalf("alice sees %d block notes, want 2", len(hits))
	}
	c := "the prod server is papaya"
	must[memory.Note](t)(m.Update(ctx, "alice", bn.ID, memory.Patch{Content: &c}))
	wantKind(t, m.DetachBlock(ctx, "alice", "team"), api.CallerBadRequest)
	if err := m.DetachBlock(ctx, "bob", "team"); err != nil {
		t.Fatal(err)
	}
	_, err = m.Get(ctx, "bob", n.ID)
	wantKind(t, err, api.CallerNotFound)
	if hits := must[[]memory.Hit](t)(m.Retrieve(ctx, "bob", memory.Query{Text: "server"})); len(hits) != 0 {
		t.Fatalf("detached bob still retrieves %+v", hits)
	}
}

func testHistory(t *testing.T, op Opener) {
	ctx := context.Background()
	m := open(t, op, memory.Config{Now: NewClock().Now})
	must[memory.Block](t)(m.CreateBlock(ctx, "alice", "b"))
	if err := m.AttachBlock(ctx, "bob", "b"); err != nil {
		t.Fatal(err)
	}
	n := add(t, m, "alice", memory.Note{Block: "b", Content: "v1"})
	c := "v2"
	must[memory.Note](t)(m.Update(ctx, "bob", n.ID, memory.Patch{Content: &c}))
	if err := m.Pin(ctx, "alice", n.ID, true); err != nil {
		t.Fatal(err)
	}
	if err := m.Remove(ctx, "bob", n.ID); err != nil {
		t.Fatal(err)
	}
	h := must[[]memory.Change](t)(m.History(ctx, "alice", n.ID))
	want := []struct{ op, actor, before, after string }{
		{"add", "alice", "", "v1"}, {"update", "bob", "v1", "v2"}, {"pin", "alice", "v2", "v2"}, {"remove", "bob", "v2", ""},
	}
	if len(h) != len(want) {
		t.Fatalf("history has %d changes, want %d: %+v", len(h), len(want), h)
	}
	content := func(n *memory.Note) string {
		if n == nil {
			return ""
		}
		return n.Content
	}
	for i, w := range want {
		c := h[i]
		if c.Op != w.op || c.Actor != w.actor || content(c.Before) != w.before || content(c.After) != w.after {
			t.Errorf("change %d = %s by %s %q -> %q, want %+v", i, c.Op, c.Actor, content(c.Before), content(c.After), w)
		}
		if i > 0 && !c.Time.After(h[i-1].Time) {
			t.Errorf("change %d time %v not after %v", i, c.Time, h[i-1].Time)
		}
	}
	if !h[2].After.Pinned || h[1].After.Pinned {
		t.Error("pin not recorded in history")
	}
	_, err := m.History(ctx, "carol", n.ID)
	wantKind(t, err, api.CallerNotFound)
}

// An agent acting in another's memory (params.owner: the kernel runs the call as the
// owner, with WithActor naming the caller) is recorded as who made the change; the
// note stays in the owner's namespace.
func testHistoryActor(t *testing.T, op Opener) {
	ctx := context.Background()
	m := open(t, op, memory.Config{Now: NewClock().Now})
	asBob := memory.WithActor(ctx, "bob")
	n, err := m.Add(asBob, "alice", memory.Note{Content: "from bob"})
	if err != nil {
		t.Fatal(err)
	}
	c := "edited by alice"
	must[memory.Note](t)(m.Update(ctx, "alice", n.ID, memory.Patch{Content: &c}))
	h := must[[]memory.Change](t)(m.History(ctx, "alice", n.ID))
	if len(h) != 2 || h[0].Actor != "bob" || h[1].Actor != "alice" {
		t.Fatalf("history: %+v", h)
	}
	if _, err := m.Get(ctx, "bob", n.ID); kindOf(err) != api.CallerNotFound {
		t.Fatalf("the note left alice's namespace: bob reads it (%v)", err)
	}
}

func testRetrieve(t *testing.T, op Opener) {
	ctx := context.Background()
	m := open(t, op, memory.Config{Now: NewClock().Now})
	texts := []string{
		"Alice's sister Priya lives in Lisbon",
		"We talked about the weather, it rained all week",
		"Alice prefers green tea over coffee",
		"The quarterly report is due on Friday",
		"Alice adopted a beagle named Biscuit",
	}
	ids := map[string]string{}
	for _, s := range texts {
		ids[s] = add(t, m, "alice", memory.Note{Content: s}).ID
	}
	hits := must[[]memory.Hit](t)(m.Retrieve(ctx, "alice", memory.Query{Text: "where does my sister live?", K: 2}))
	if len(hits) == 0 || hits[0].ID != ids[texts[0]] {
		t.Fatalf("top hit %+v, want the sister note", hits)
	}
	if hits[0].Score <= 0 || hits[0].Score > 1 || hits[0].Retrievals != 1 {
		t.Fatalf("hit score %v retrievals %d", hits[0].Score, hits[0].Retrievals)
	}
	for i := 1; i < len(hits); i++ {
		if hits[i].Score > hits[i-1].Score {
			t.Fatalf("hits not in score order: %+v", hits)
		}
	}
	// Retrieval counts are visible at once and survive a reopen (written at Close).
	if got := must[memory.Note](t)(m.Get(ctx, "alice", ids[texts[0]])); got.Retrievals != 1 {
		t.Fatalf("retrievals %d, want 1", got.Retrievals)
	}
	for _, mode := range []string{"keyword", "vector"} {
		h := must[[]memory.Hit](t)(m.Retrieve(ctx, "alice", memory.Query{Text: "beagle Biscuit", Mode: mode}))
		if len(h) == 0 || h[0].ID != ids[texts[4]] {
			t.Fatalf("mode %s: %+v", mode, h)
		}
	}
	// MinScore drops weak hits; 1.01 drops all.
	if h := must[[]memory.Hit](t)(m.Retrieve(ctx, "alice", memory.Query{Text: "tea", MinScore: 1.01})); len(h) != 0 {
		t.Fatalf("MinScore ignored: %+v", h)
	}
	// No words: newest first.
	h := must[[]memory.Hit](t)(m.Retrieve(ctx, "alice", memory.Query{K: 2}))
	if len(h) != 2 || h[0].ID != ids[texts[4]] || h[1].ID != ids[texts[3]] {
		t.Fatalf("newest: %+v", h)
	}
	before := must[memory.Note](t)(m.Get(ctx, "alice", ids[texts[0]])).Retrievals
	m.Close()
	m2 := open(t, op, memory.Config{})
	if got := must[memory.Note](t)(m2.Get(ctx, "alice", ids[texts[0]])); got.Retrievals != before || before < 2 {
		t.Fatalf("retrievals after reopen %d, before close %d (want equal, at least 2)", got.Retrievals, before)
	}
}

func testFilters(t *testing.T, op Opener) {
	ctx := context.Background()
	clock := NewClock()
	m := open(t, op, memory.Config{Now: clock.Now})
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var ids []string
	for i := range 6 {
		n := memory.Note{Content: fmt.Sprintf("meeting notes number %d about the budget", i), Created: base.AddDate(0, i, 0)}
		if i%2 == 0 {
			n.Tags = []string{"work", "finance"}
			n.Category = "meetings"
		} else {
			n.Tags = []string{"work"}
		}
		ids = append(ids, add(t, m, "alice", n).ID)
	}
	got := func(q memory.Query) []string {
		t.Helper()
		q.K = 10
		var out []string
		for _, h := range must[[]memory.Hit](t)(m.Retrieve(ctx, "alice", q)) {
			out = append(out, h.ID)
		}
		slices.Sort(out)
		return out
	}
	sorted := func(s ...string) []string { slices.Sort(s); return s }
	even := sorted(ids[0], ids[2], ids[4])
	for _, mode := range []string{"", "keyword", "vector"} {
		if g := got(memory.Query{Text: "budget meeting", Tags: []string{"finance", "work"}, Mode: mode}); !slices.Equal(g, even) {
			t.Errorf("mode %q tags: %v, want %v", mode, g, even)
		}
		if g := got(memory.Query{Text: "budget meeting", Category: "meetings", Mode: mode}); !slices.Equal(g, even) {
			t.Errorf("mode %q category: %v, want %v", mode, g, even)
		}
		g := got(memory.Query{Text: "budget meeting", Since: base.AddDate(0, 1, 0), Until: base.AddDate(0, 3, 0), Mode: mode})
		if w := sorted(ids[1], ids[2]); !slices.Equal(g, w) {
			t.Errorf("mode %q time range: %v, want %v", mode, g, w)
		}
		if g := got(memory.Query{Text: "budget", Tags: []string{"nope"}, Mode: mode}); len(g) != 0 {
			t.Errorf("mode %q unknown tag: %v", mode, g)
		}
	}
	if g := got(memory.Query{Tags: []string{"finance"}}); !slices.Equal(g, even) {
		t.Errorf("filters without text: %v, want %v", g, even)
	}
}

// testRetrieveCold checks that ranking does not depend on what is in RAM: the same
// query over the same notes ranks alike with a budget that holds everything and one
// that holds almost nothing.
func testRetrieveCold(t *testing.T, op Opener) {
	ctx := context.Background()
	big := open(t, op, memory.Config{})
	var notes []memory.Note
	for i := range 300 {
		notes = append(notes, memory.Note{Content: fmt.Sprintf("fact %d: the %s is %s", i, topics[i%len(topics)], values[(i*7)%len(values)])})
	}
	must[[]memory.Note](t)(big.AddBatch(ctx, "alice", notes))
	query := memory.Query{Text: "what colour is the bicycle", K: 10}
	ids := func(m *memory.Manager) []string {
		var out []string
		for _, h := range must[[]memory.Hit](t)(m.Retrieve(ctx, "alice", query)) {
			out = append(out, h.ID)
		}
		return out
	}
	want := ids(big)
	big.Close()
	small := open(t, op, memory.Config{HotBytes: 4 << 10})
	if got := ids(small); !slices.Equal(got, want) {
		t.Fatalf("cold retrieval %v, hot %v", got, want)
	}
	s := must[memory.Stats](t)(small.Stats(ctx))
	if s.HotBytes > s.Budget || s.Faults == 0 {
		t.Fatalf("stats %+v: want hot bytes within budget and faults counted", s)
	}
}

var (
	topics = []string{"bicycle", "kettle", "garden gate", "front door", "umbrella", "laptop sticker", "car", "sofa"}
	values = []string{"red", "blue", "green", "yellow", "black", "white", "orange", "purple", "grey", "pink", "brown"}
)

func testBudget(t *testing.T, op Opener) {
	ctx := context.Background()
	const budget = 64 << 10
	m := open(t, op, memory.Config{HotBytes: budget})
	pinned := add(t, m, "alice", memory.Note{Content: "pinned: the wifi password is hunter2", Pinned: true})
	var last memory.Note
	for i := range 200 {
		last = add(t, m, "alice", memory.Note{Content: fmt.Sprintf("note %d %s", i, strings.Repeat("filler ", 40))})
		s := must[memory.Stats](t)(m.Stats(ctx))
		if s.HotBytes > s.Budget*8/10 {
			t.Fatalf("after %d adds hot bytes %d exceed 80%% of budget %d", i+1, s.HotBytes, s.Budget)
		}
	}
	s := must[memory.Stats](t)(m.Stats(ctx))
	if s.Evictions == 0 || s.Notes != 201 {
		t.Fatalf("stats %+v: want evictions and 201 notes", s)
	}
	f0 := s.Faults
	must[memory.Note](t)(m.Get(ctx, "alice", pinned.ID)) // pinned: still hot, no fault
	must[memory.Note](t)(m.Get(ctx, "alice", last.ID))   // newest: still hot
	if s := must[memory.Stats](t)(m.Stats(ctx)); s.Faults != f0 {
		t.Fatalf("faults %d -> %d reading hot notes", f0, s.Faults)
	}
	first := must[[]memory.Hit](t)(m.Retrieve(ctx, "alice", memory.Query{Text: "note 0 filler"}))
	if len(first) == 0 {
		t.Fatal("evicted note not retrievable")
	}
	if s := must[memory.Stats](t)(m.Stats(ctx)); s.Faults == f0 {
		t.Fatal("retrieving evicted notes counted no fault")
	}
}

func testNeighbours(t *testing.T, op Opener) {
	ctx := context.Background()
	m := open(t, op, memory.Config{})
	a := add(t, m, "alice", memory.Note{Content: "Alice plays the violin in an orchestra"})
	b := add(t, m, "alice", memory.Note{Content: "The orchestra rehearses violin pieces on Tuesday"})
	add(t, m, "alice", memory.Note{Content: "Tax forms are due in April"})
	add(t, m, "bob", memory.Note{Content: "Bob plays the violin in an orchestra too"})
	hits := must[[]memory.Hit](t)(m.Neighbours(ctx, "alice", a.ID, 2))
	if len(hits) != 2 || hits[0].ID != b.ID || hits[0].Score <= hits[1].Score {
		t.Fatalf("neighbours %+v, want %s first", hits, b.ID)
	}
	for _, h := range hits {
		if h.ID == a.ID || h.Agent != "alice" {
			t.Fatalf("neighbour %+v: itself or another agent's", h)
		}
	}
}

func testAllow(t *testing.T, op Opener) {
	ctx := context.Background()
	var mu sync.Mutex
	var seen []string
	deny := api.Errorf(api.PolicyDenied, "no secrets")
	m := open(t, op, memory.Config{Allow: func(_ context.Context, actor, opName string, n memory.Note) error {
		mu.Lock()
		seen = append(seen, opName)
		mu.Unlock()
		if strings.Contains(n.Content, "secret") && opName != memory.OpAdd {
			return deny
		}
		return nil
	}})
	s := add(t, m, "alice", memory.Note{Content: "a secret plan about apples"})
	add(t, m, "alice", memory.Note{Content: "a public plan about apples"})
	_, err := m.Get(ctx, "alice", s.ID)
	wantKind(t, err, api.PolicyDenied)
	hits := must[[]memory.Hit](t)(m.Retrieve(ctx, "alice", memory.Query{Text: "plan apples"}))
	if len(hits) != 1 || strings.Contains(hits[0].Content, "secret") {
		t.Fatalf("Allow did not filter retrieval: %+v", hits)
	}
	for _, want := range []string{memory.OpAdd, memory.OpGet, memory.OpRetrieve} {
		if !slices.Contains(seen, want) {
			t.Errorf("Allow never asked for %s (saw %v)", want, seen)
		}
	}
}

func testConversations(t *testing.T, op Opener) {
	ctx := context.Background()
	m := open(t, op, memory.Config{})
	sys := api.Message{Role: "system", Content: api.Content(strings.Repeat("You are a careful assistant. ", 50))}
	conv := func(turns ...string) []api.Message {
		out := []api.Message{sys}
		for i, s := range turns {
			role := "user"
			if i%2 == 1 {
				role = "assistant"
			}
			out = append(out, api.Message{Role: role, Content: api.Content(s)})
		}
		return out
	}
	if err := m.SaveConversation(ctx, "s1", conv("hi", "hello")); err != nil {
		t.Fatal(err)
	}
	if err := m.SaveConversation(ctx, "s1", conv("hi", "hello", "how are you", "fine")); err != nil {
		t.Fatal(err)
	}
	if err := m.SaveConversation(ctx, "s2", conv("hi", "hello", "bye")); err != nil {
		t.Fatal(err)
	}
	got := must[[]api.Message](t)(m.Conversation(ctx, "s1"))
	if len(got) != 5 || got[0].Content != sys.Content || got[4].Content != "fine" || got[3].Role != "user" {
		t.Fatalf("s1 = %+v", got)
	}
	s := must[memory.Stats](t)(m.Stats(ctx))
	// The system prompt and "hi", "hello" are stored once for both sessions.
	if s.CompressionRatio < 1.5 || s.TrieStoredBytes >= s.TrieLogicalBytes {
		t.Fatalf("stats %+v: shared prefix not shared", s)
	}
	// Replacing with a different history frees the nodes only s1 used.
	if err := m.SaveConversation(ctx, "s1", conv("other")); err != nil {
		t.Fatal(err)
	}
	if err := m.SaveConversation(ctx, "s2", nil); err != nil {
		t.Fatal(err)
	}
	if err := m.SaveConversation(ctx, "s1", nil); err != nil {
		t.Fatal(err)
	}
	s = must[memory.Stats](t)(m.Stats(ctx))
	if s.TrieStoredBytes != 0 || s.TrieLogicalBytes != 0 {
		t.Fatalf("nodes left after every session was cleared: %+v", s)
	}
	if got := must[[]api.Message](t)(m.Conversation(ctx, "never")); len(got) != 0 {
		t.Fatalf("unknown session: %+v", got)
	}
}

func testPersistence(t *testing.T, op Opener) {
	ctx := context.Background()
	m := open(t, op, memory.Config{})
	must[memory.Block](t)(m.CreateBlock(ctx, "alice", "shared"))
	if err := m.AttachBlock(ctx, "bob", "shared"); err != nil {
		t.Fatal(err)
	}
	n := add(t, m, "alice", memory.Note{Block: "shared", Content: "durable fact about zebras", Tags: []string{"z"}})
	if err := m.SaveConversation(ctx, "s", []api.Message{{Role: "user", Content: "hello"}}); err != nil {
		t.Fatal(err)
	}
	m.Close()
	m2 := open(t, op, memory.Config{})
	if got := must[memory.Note](t)(m2.Get(ctx, "bob", n.ID)); got.Content != n.Content || !slices.Equal(got.Tags, []string{"z"}) {
		t.Fatalf("after reopen: %+v", got)
	}
	hits := must[[]memory.Hit](t)(m2.Retrieve(ctx, "bob", memory.Query{Text: "zebras"}))
	if len(hits) != 1 || hits[0].ID != n.ID {
		t.Fatalf("retrieve after reopen: %+v", hits)
	}
	if c := must[[]api.Message](t)(m2.Conversation(ctx, "s")); len(c) != 1 || c[0].Content != "hello" {
		t.Fatalf("conversation after reopen: %+v", c)
	}
}

func testConcurrent(t *testing.T, op Opener) {
	ctx := context.Background()
	m := open(t, op, memory.Config{HotBytes: 32 << 10})
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			agent := fmt.Sprintf("agent%d", w%2)
			for i := range 15 {
				n, err := m.Add(ctx, agent, memory.Note{Content: fmt.Sprintf("worker %d wrote item %d about otters", w, i)})
				if err != nil {
					errs <- err
					return
				}
				c := n.Content + " (edited)"
				if _, err := m.Update(ctx, agent, n.ID, memory.Patch{Content: &c}); err != nil {
					errs <- err
					return
				}
				if _, err := m.Retrieve(ctx, agent, memory.Query{Text: "otters item"}); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	s := must[memory.Stats](t)(m.Stats(ctx))
	if s.Notes != 60 || s.HotBytes > s.Budget {
		t.Fatalf("stats %+v", s)
	}
	hits := must[[]memory.Hit](t)(m.Retrieve(ctx, "agent0", memory.Query{Text: "edited otters", K: 100}))
	if len(hits) != 30 {
		t.Fatalf("agent0 retrieves %d of its 30 notes", len(hits))
	}
}
