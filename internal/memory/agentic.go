package memory

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/aios-go/aios/api"
)

// ToolCaller asks the LLM to call tool, given msgs, and returns the arguments it called
// it with. The kernel passes one that issues an LLM syscall (scheduled like any other)
// with the call forced; the memory module needs nothing else of the LLM module.
type ToolCaller func(ctx context.Context, agent string, msgs []api.Message, tool api.Tool) (json.RawMessage, error)

// agenticNeighbours is how many similar notes A-MEM's link and evolution step looks at.
const agenticNeighbours = 5

var noteTool = api.Tool{Type: "function", Function: api.FunctionDef{
	Name:        "record_note_attributes",
	Description: "Record the attributes of a new memory note.",
	Parameters: json.RawMessage(`{"type":"object","properties":{` +
		`"keywords":{"type":"array","items":{"type":"string"},"description":"the note's key concepts, most important first"},` +
		`"context":{"type":"string","description":"one sentence: the domain, topic and purpose of the note"},` +
		`"tags":{"type":"array","items":{"type":"string"},"description":"broad categories for the note"}},` +
		`"required":["keywords","context","tags"]}`),
}}

// evolveTool asks, for each neighbour i shown (1-based), whether to link it and how its
// context and tags should change now that the new note exists. It is flat, one property
// per neighbour and field, so that any model that calls functions can fill it.
func evolveTool(n int) api.Tool {
	var props []string
	for i := 1; i <= n; i++ {
		props = append(props,
			fmt.Sprintf(`"link_%d":{"type":"boolean","description":"whether note %d is related to the new note"}`, i, i),
			fmt.Sprintf(`"context_%d":{"type":"string","description":"note %d's context rewritten in the light of the new note; empty to keep it"}`, i, i),
			fmt.Sprintf(`"tags_%d":{"type":"array","items":{"type":"string"},"description":"note %d's tags, updated; empty to keep them"}`, i, i))
	}
	return api.Tool{Type: "function", Function: api.FunctionDef{
		Name:        "evolve_memory",
		Description: "Link the new note to related notes and update those notes.",
		Parameters:  json.RawMessage(`{"type":"object","properties":{` + strings.Join(props, ",") + `}}`),
	}}
}

// AddAgentic adds n the way A-MEM does (Xu et al. 2025): the LLM extracts the note's
// keywords, context and tags; the note is stored; its nearest neighbours are shown to the
// LLM, which links the related ones and rewrites their context and tags ("memory
// evolution"). What the caller gave (keywords, tags, context) is kept and extended, not
// replaced. Every step is an LLM syscall through call.
func (m *Manager) AddAgentic(ctx context.Context, actor string, n Note, call ToolCaller) (Note, error) {
	if call == nil {
		return Note{}, api.Errorf(api.PolicyNotEnabled, "add_agentic_memory needs the LLM module, which this kernel did not give the memory module")
	}
	if strings.TrimSpace(n.Content) == "" {
		return Note{}, api.Errorf(api.CallerBadRequest, "add_agentic_memory needs params.content")
	}
	agent := n.Agent
	if agent == "" {
		agent = actor
	}
	raw, err := call(ctx, agent, []api.Message{
		{Role: "system", Content: "You organise an agent's long-term memory. Describe the note you are given by calling record_note_attributes."},
		{Role: "user", Content: api.Content("Note:\n" + n.Content)},
	}, noteTool)
	if err != nil {
		return Note{}, err
	}
	var attrs struct {
		Keywords []string `json:"keywords"`
		Context  string   `json:"context"`
		Tags     []string `json:"tags"`
	}
	if err := json.Unmarshal(raw, &attrs); err != nil {
		return Note{}, api.Wrap(api.BackendBadResponse, err, "the model's record_note_attributes arguments are not the object asked for")
	}
	n.Keywords = union(n.Keywords, attrs.Keywords)
	n.Tags = union(n.Tags, attrs.Tags)
	if n.Context == "" {
		n.Context = strings.TrimSpace(attrs.Context)
	}
	added, err := m.Add(ctx, actor, n)
	if err != nil {
		return Note{}, err
	}
	near, err := m.Neighbours(ctx, actor, added.ID, agenticNeighbours)
	if err != nil || len(near) == 0 {
		return added, err
	}
	var b strings.Builder
	fmt.Fprintf(&b, "New note:\n%s\n\nExisting notes:\n", added.Content)
	for i, h := range near {
		fmt.Fprintf(&b, "%d. %s\n   context: %s\n   tags: %s\n", i+1, h.Content, h.Context, strings.Join(h.Tags, ", "))
	}
	raw, err = call(ctx, agent, []api.Message{
		{Role: "system", Content: "You maintain an agent's long-term memory. Decide which existing notes relate to the new note, and update their context and tags. Answer by calling evolve_memory."},
		{Role: "user", Content: api.Content(b.String())},
	}, evolveTool(len(near)))
	if err != nil {
		// The note is stored; only its evolution failed, which leaves memory as a plain
		// add would. The caller learns of it through the error.
		return added, err
	}
	var evo map[string]json.RawMessage
	if err := json.Unmarshal(raw, &evo); err != nil {
		return added, api.Wrap(api.BackendBadResponse, err, "the model's evolve_memory arguments are not an object")
	}
	var links []string
	for i, h := range near {
		var link bool
		var ctxText string
		var tags []string
		_ = json.Unmarshal(evo[fmt.Sprintf("link_%d", i+1)], &link)
		_ = json.Unmarshal(evo[fmt.Sprintf("context_%d", i+1)], &ctxText)
		_ = json.Unmarshal(evo[fmt.Sprintf("tags_%d", i+1)], &tags)
		if !link {
			continue
		}
		links = append(links, h.ID)
		p := Patch{Links: ptr(union(h.Links, []string{added.ID}))}
		if c := strings.TrimSpace(ctxText); c != "" {
			p.Context = &c
		}
		if t := union(nil, tags); len(t) > 0 {
			p.Tags = &t
		}
		if _, err := m.Update(ctx, actor, h.ID, p); err != nil {
			return added, err
		}
	}
	if len(links) == 0 {
		return added, nil
	}
	return m.Update(ctx, actor, added.ID, Patch{Links: ptr(union(added.Links, links))})
}

// union is a then the members of b not in a, without empty or repeated strings.
func union(a, b []string) []string {
	seen := make(map[string]bool, len(a)+len(b))
	out := make([]string, 0, len(a)+len(b))
	for _, s := range append(append([]string(nil), a...), b...) {
		s = strings.TrimSpace(s)
		if s == "" || seen[s] {
			continue
		}
		seen[s] = true
		out = append(out, s)
	}
	return out
}

func ptr[T any](v T) *T { return &v }
