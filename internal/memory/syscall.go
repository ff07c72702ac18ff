package memory

import (
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"time"

	"github.com/aios-go/aios/api"
)

// Syscall runs one memory operation as AIOS's SDK names it (api.MemoryParams) and answers
// in AIOS's MemoryResponse shape. It is what the kernel's memory module runs for every
// memory syscall, from /query and /v1/memory alike. call serves add_agentic_memory.
func (m *Manager) Syscall(ctx context.Context, agent, op string, p *api.MemoryParams, call ToolCaller) (any, error) {
	if p == nil {
		p = &api.MemoryParams{}
	}
	needID := func() error {
		if p.MemoryID == "" {
			return api.Errorf(api.CallerBadRequest, "%s needs params.memory_id", op)
		}
		return nil
	}
	switch op {
	case api.MemoryAdd, api.MemoryAddAgentic:
		if p.Content == nil || strings.TrimSpace(*p.Content) == "" {
			return nil, api.Errorf(api.CallerBadRequest, "%s needs params.content, the text to remember", op)
		}
		n, err := noteFrom(*p.Content, p.Metadata)
		if err != nil {
			return nil, err
		}
		n.Block = p.Block
		if op == api.MemoryAddAgentic {
			n, err = m.AddAgentic(ctx, agent, n, call)
		} else {
			n, err = m.Add(ctx, agent, n)
		}
		if err != nil {
			return nil, err
		}
		return noteResponse(n), nil
	case api.MemoryGet:
		if err := needID(); err != nil {
			return nil, err
		}
		n, err := m.Get(ctx, agent, p.MemoryID)
		if err != nil {
			return nil, err
		}
		return noteResponse(n), nil
	case api.MemoryUpdate:
		if err := needID(); err != nil {
			return nil, err
		}
		patch, err := patchFrom(p)
		if err != nil {
			return nil, err
		}
		n, err := m.Update(ctx, agent, p.MemoryID, patch)
		if err != nil {
			return nil, err
		}
		return noteResponse(n), nil
	case api.MemoryRemove:
		if err := needID(); err != nil {
			return nil, err
		}
		if err := m.Remove(ctx, agent, p.MemoryID); err != nil {
			return nil, err
		}
		return &api.MemoryResponse{MemoryID: &p.MemoryID}, nil
	case api.MemoryRetrieve, api.MemoryRetrieveRaw:
		q := Query{K: p.Limit(), Tags: p.Tags, Category: p.Category, MinScore: p.MinScore}
		if p.Content != nil {
			q.Text = *p.Content
		}
		var err error
		if q.Since, err = parseTime("since", p.Since); err != nil {
			return nil, err
		}
		if q.Until, err = parseTime("until", p.Until); err != nil {
			return nil, err
		}
		hits, err := m.Retrieve(ctx, agent, q)
		if err != nil {
			return nil, err
		}
		out := &api.MemoryResponse{SearchResults: make([]map[string]any, 0, len(hits))}
		var texts []string
		for _, h := range hits {
			r := map[string]any{"memory_id": h.ID, "content": h.Content, "score": h.Score, "metadata": metadataOf(h.Note)}
			if op == api.MemoryRetrieveRaw {
				r["note"] = APINote(h.Note, h.Score)
			}
			out.SearchResults = append(out.SearchResults, r)
			texts = append(texts, h.Content)
		}
		if op == api.MemoryRetrieve {
			joined := strings.Join(texts, "\n")
			out.Content = &joined
		}
		return out, nil
	case api.MemoryCreateBlock, api.MemoryAttachBlock, api.MemoryDetachBlock:
		if p.Block == "" {
			return nil, api.Errorf(api.CallerBadRequest, "%s needs params.block, the block's name", op)
		}
		var err error
		switch op {
		case api.MemoryCreateBlock:
			_, err = m.CreateBlock(ctx, agent, p.Block)
		case api.MemoryAttachBlock:
			err = m.AttachBlock(ctx, agent, p.Block)
		default:
			err = m.DetachBlock(ctx, agent, p.Block)
		}
		if err != nil {
			return nil, err
		}
		return &api.MemoryResponse{}, nil
	case api.MemoryGetConversation:
		msgs, err := m.Conversation(ctx, conversationKey(agent, p.Session))
		if err != nil {
			return nil, err
		}
		return msgs, nil
	case api.MemorySaveConversation:
		if err := m.SaveConversation(ctx, conversationKey(agent, p.Session), p.Messages); err != nil {
			return nil, err
		}
		return &api.MemoryResponse{}, nil
	}
	return nil, api.Errorf(api.CallerBadRequest, "unknown memory operation_type %q: expected add_memory, get_memory, update_memory, remove_memory, retrieve_memory, retrieve_memory_raw or add_agentic_memory", op)
}

// metaKeys are the metadata keys that are a note's own fields, not free metadata.
var metaKeys = map[string]bool{"tags": true, "keywords": true, "category": true, "context": true, "links": true}

// noteFrom builds a note from AIOS's content and metadata dict.
func noteFrom(content string, meta map[string]any) (Note, error) {
	n := Note{Content: content}
	var err error
	if n.Tags, err = stringList(meta, "tags"); err != nil {
		return n, err
	}
	if n.Keywords, err = stringList(meta, "keywords"); err != nil {
		return n, err
	}
	if n.Links, err = stringList(meta, "links"); err != nil {
		return n, err
	}
	if n.Category, err = stringField(meta, "category"); err != nil {
		return n, err
	}
	if n.Context, err = stringField(meta, "context"); err != nil {
		return n, err
	}
	for k, v := range meta {
		if !metaKeys[k] {
			if n.Metadata == nil {
				n.Metadata = make(map[string]any)
			}
			n.Metadata[k] = v
		}
	}
	return n, nil
}

// patchFrom reads update_memory's params: content null keeps the content, and only the
// metadata keys present change.
func patchFrom(p *api.MemoryParams) (Patch, error) {
	var patch Patch
	patch.Content = p.Content
	meta := p.Metadata
	n, err := noteFrom("", meta)
	if err != nil {
		return patch, err
	}
	if _, ok := meta["tags"]; ok {
		patch.Tags = &n.Tags
	}
	if _, ok := meta["keywords"]; ok {
		patch.Keywords = &n.Keywords
	}
	if _, ok := meta["links"]; ok {
		patch.Links = &n.Links
	}
	if _, ok := meta["category"]; ok {
		patch.Category = &n.Category
	}
	if _, ok := meta["context"]; ok {
		patch.Context = &n.Context
	}
	if n.Metadata != nil {
		patch.Metadata = &n.Metadata
	}
	return patch, nil
}

// stringList reads a list of strings, or one comma-separated string, from meta[key].
func stringList(meta map[string]any, key string) ([]string, error) {
	v, ok := meta[key]
	if !ok || v == nil {
		return nil, nil
	}
	b, _ := json.Marshal(v)
	var s api.Strings
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, api.Errorf(api.CallerBadRequest, "metadata.%s must be a list of strings or a comma-separated string, not %s", key, b)
	}
	return s, nil
}

func stringField(meta map[string]any, key string) (string, error) {
	v, ok := meta[key]
	if !ok || v == nil {
		return "", nil
	}
	s, ok := v.(string)
	if !ok {
		return "", api.Errorf(api.CallerBadRequest, "metadata.%s must be a string", key)
	}
	return s, nil
}

func parseTime(name, s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t, nil
		}
	}
	return time.Time{}, api.Errorf(api.CallerBadRequest, "params.%s %q is not an ISO 8601 time such as 2026-12-01T10:00:00Z", name, s)
}

// metadataOf is the metadata dict AIOS's SDK reads back: the note's A-MEM fields and
// the free metadata it was given.
func metadataOf(n Note) map[string]any {
	md := map[string]any{
		"tags": nonNil(n.Tags), "keywords": nonNil(n.Keywords), "category": n.Category,
		"context": n.Context, "links": nonNil(n.Links),
		"timestamp": n.Created.UTC().Format(time.RFC3339Nano), "last_accessed": n.Updated.UTC().Format(time.RFC3339Nano),
		"retrieval_count": n.Retrievals,
	}
	if n.Block != "" {
		md["block"] = n.Block
	}
	for k, v := range n.Metadata {
		if _, own := md[k]; !own {
			md[k] = v
		}
	}
	return md
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func noteResponse(n Note) *api.MemoryResponse {
	id, content := n.ID, n.Content
	return &api.MemoryResponse{MemoryID: &id, Content: &content, Metadata: metadataOf(n)}
}

// APINote is n in the /v1/memory wire shape.
func APINote(n Note, score float64) api.MemoryNote {
	return api.MemoryNote{
		ID: n.ID, Agent: n.Agent, Block: n.Block, Content: n.Content,
		Keywords: nonNil(n.Keywords), Tags: nonNil(n.Tags), Category: n.Category, Context: n.Context,
		Links: nonNil(n.Links), Metadata: n.Metadata,
		Created: n.Created.UTC().Format(time.RFC3339Nano), Updated: n.Updated.UTC().Format(time.RFC3339Nano),
		Retrievals: n.Retrievals, Pinned: n.Pinned, Score: score,
	}
}

// conversationKey scopes a session's conversation to its agent, so two agents naming
// their sessions alike never read each other's history.
func conversationKey(agent, session string) string {
	if session == "" {
		session = agent
	}
	// The agent's length first makes the key unambiguous whatever the names hold.
	return strconv.Itoa(len(agent)) + ":" + agent + "/" + session
}
