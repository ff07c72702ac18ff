package fakeopenai

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"slices"
	"strings"

	"github.com/aios-go/aios/api"
)

// words is the fake model's vocabulary; one output token is one word and a space.
var words = [...]string{
	"lorem", "ipsum", "dolor", "sit", "amet", "consectetur", "adipiscing", "elit",
	"sed", "do", "eiusmod", "tempor", "incididunt", "ut", "labore", "et",
	"dolore", "magna", "aliqua", "enim", "ad", "minim", "veniam", "quis",
	"nostrud", "exercitation", "ullamco", "laboris", "nisi", "aliquip", "ex", "ea",
	"commodo", "consequat", "duis", "aute", "irure", "in", "reprehenderit", "voluptate",
	"velit", "esse", "cillum", "fugiat", "nulla", "pariatur", "excepteur", "sint",
	"occaecat", "cupidatat", "non", "proident", "sunt", "culpa", "qui", "officia",
	"deserunt", "mollit", "anim", "id", "est", "laborum", "vitae", "nunc",
}

// Word is output token i (without its trailing space) of a request whose seed is seed.
// Exported so tests elsewhere can compute expected text.
func Word(seed uint64, i int) string {
	return words[mix(seed^mix(uint64(i)+1))%uint64(len(words))]
}

// mix is splitmix64's finaliser: consecutive inputs give unrelated outputs.
func mix(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

// Seed is the hash of a conversation that picks its output words. A continuation
// prefix (the trailing assistant message when continuing) is not part of msgs, so the
// resumed call draws from the same sequence as the original.
func Seed(msgs []api.Message) uint64 {
	h := fnv.New64a()
	for _, m := range msgs {
		hashMessage(h, m)
	}
	return h.Sum64()
}

func hashMessage(h io.Writer, m api.Message) {
	for _, s := range []string{m.Role, string(m.Content), m.Name, m.ToolCallID} {
		var n [8]byte
		binary.LittleEndian.PutUint64(n[:], uint64(len(s)))
		_, _ = h.Write(n[:])
		_, _ = h.Write([]byte(s))
	}
	for _, tc := range m.ToolCalls {
		_, _ = h.Write([]byte(tc.ID + "\x00" + tc.Function.Name + "\x00" + tc.Function.Arguments + "\x00"))
	}
	_, _ = h.Write([]byte{0x1e})
}

// Text is the text an uninterrupted request with this seed produces for tokens
// [from, to): what tests compare resumed output against.
func Text(seed uint64, from, to int) string {
	var sb strings.Builder
	for i := from; i < to; i++ {
		sb.WriteString(Word(seed, i))
		sb.WriteByte(' ')
	}
	return sb.String()
}

// piece is one output token: text, or a fragment of a tool call in OpenAI's streaming
// form.
type piece struct {
	text string
	call *api.ToolCall
}

type plan struct {
	pieces []piece
	calls  []api.ToolCall // assembled, for non-streaming answers
	finish string
	prompt int
	cached int
}

func (p *plan) text() string {
	var sb strings.Builder
	for _, pc := range p.pieces {
		sb.WriteString(pc.text)
	}
	return sb.String()
}

func (p *plan) usage() *api.Usage {
	return &api.Usage{
		PromptTokens:        p.prompt,
		CompletionTokens:    len(p.pieces),
		TotalTokens:         p.prompt + len(p.pieces),
		PromptTokensDetails: &api.PromptTokensDetails{CachedTokens: p.cached},
	}
}

// plan decides the whole answer up front; the handlers only pace and format it.
func (s *Server) plan(req *chatRequest) (*plan, error) {
	if len(req.Messages) == 0 {
		return nil, errors.New("messages must not be empty")
	}
	msgs := req.Messages
	start := 0
	if req.ContinueFinalMessage {
		last := msgs[len(msgs)-1]
		if last.Role != "assistant" {
			return nil, errors.New("continue_final_message is set but the final message is not an assistant message")
		}
		if req.AddGenerationPrompt != nil && *req.AddGenerationPrompt {
			return nil, errors.New("cannot set both continue_final_message and add_generation_prompt to true")
		}
		msgs = msgs[:len(msgs)-1]
		start = len(strings.Fields(string(last.Content)))
	}
	seed := Seed(msgs)
	p := &plan{}
	p.prompt, p.cached = s.promptTokens(req.Messages)

	limit := -1
	if req.MaxCompletionTokens != nil {
		limit = *req.MaxCompletionTokens
	} else if req.MaxTokens != nil {
		limit = *req.MaxTokens
	}
	if limit == 0 {
		return nil, errors.New("max_tokens must be at least 1")
	}

	tool, err := s.chooseTool(req)
	if err != nil {
		return nil, err
	}
	if tool != nil {
		args, err := json.Marshal(fill(tool.Function.Parameters, seed, 0))
		if err != nil {
			return nil, err
		}
		id := fmt.Sprintf("call_%016x", mix(seed))
		zero := 0
		p.calls = []api.ToolCall{{ID: id, Type: "function",
			Function: api.FunctionCall{Name: tool.Function.Name, Arguments: string(args)}}}
		// First fragment: id, type and name with empty arguments, as OpenAI streams it.
		p.pieces = append(p.pieces, piece{call: &api.ToolCall{Index: &zero, ID: id, Type: "function",
			Function: api.FunctionCall{Name: tool.Function.Name}}})
		for _, frag := range split(string(args), 8) {
			p.pieces = append(p.pieces, piece{call: &api.ToolCall{Index: &zero,
				Function: api.FunctionCall{Arguments: frag}}})
		}
		p.finish = "tool_calls"
		return p, nil
	}

	n, finish := s.opts.DefaultTokens-start, "stop"
	if limit > 0 {
		n, finish = limit, "length"
	}
	n = max(n, 0)

	if rf := req.ResponseFormat; rf != nil && (rf.Type == "json_object" || rf.Type == "json_schema") {
		var out any = map[string]any{"text": strings.TrimSpace(Text(seed, 0, max(n, 1)))}
		if rf.Type == "json_schema" {
			var js struct {
				Schema json.RawMessage `json:"schema"`
			}
			if err := json.Unmarshal(rf.JSONSchema, &js); err != nil || len(js.Schema) == 0 {
				return nil, errors.New("response_format json_schema must have a schema")
			}
			out = fill(js.Schema, seed, 0)
		}
		b, err := json.Marshal(out)
		if err != nil {
			return nil, err
		}
		for _, frag := range split(string(b), 8) {
			p.pieces = append(p.pieces, piece{text: frag})
		}
		p.finish = "stop"
		return p, nil
	}

	for i := range n {
		p.pieces = append(p.pieces, piece{text: Word(seed, start+i) + " "})
	}
	p.finish = finish
	return p, nil
}

// chooseTool applies tool_choice the way OpenAI does: a named function or "required"
// forces a call, "none" forbids one, and "auto" calls only when AutoToolCall is set.
func (s *Server) chooseTool(req *chatRequest) (*api.Tool, error) {
	if len(req.Tools) == 0 {
		return nil, nil
	}
	var mode string
	var named struct {
		Type     string `json:"type"`
		Function struct {
			Name string `json:"name"`
		} `json:"function"`
	}
	switch {
	case len(req.ToolChoice) == 0 || string(req.ToolChoice) == "null":
		mode = "auto"
	case json.Unmarshal(req.ToolChoice, &mode) == nil:
	case json.Unmarshal(req.ToolChoice, &named) == nil && named.Function.Name != "":
		i := slices.IndexFunc(req.Tools, func(t api.Tool) bool { return t.Function.Name == named.Function.Name })
		if i < 0 {
			return nil, fmt.Errorf("tool_choice names function %q, which is not in tools", named.Function.Name)
		}
		return &req.Tools[i], nil
	default:
		return nil, fmt.Errorf("invalid tool_choice %s", req.ToolChoice)
	}
	switch mode {
	case "required":
		return &req.Tools[0], nil
	case "auto":
		if s.opts.AutoToolCall && req.Messages[len(req.Messages)-1].Role != "tool" {
			return &req.Tools[0], nil
		}
		return nil, nil
	case "none":
		return nil, nil
	}
	return nil, fmt.Errorf("invalid tool_choice %q", mode)
}

// fill makes a deterministic value that fits a JSON schema well enough for tests: every
// property present, strings drawn from the vocabulary, the first enum value when given.
func fill(schema json.RawMessage, seed uint64, depth int) any {
	var sc struct {
		Type       any                        `json:"type"`
		Enum       []any                      `json:"enum"`
		Const      any                        `json:"const"`
		Properties map[string]json.RawMessage `json:"properties"`
		Items      json.RawMessage            `json:"items"`
	}
	if len(schema) == 0 || json.Unmarshal(schema, &sc) != nil || depth > 8 {
		return map[string]any{}
	}
	if sc.Const != nil {
		return sc.Const
	}
	if len(sc.Enum) > 0 {
		return sc.Enum[0]
	}
	typ, _ := sc.Type.(string)
	if ts, ok := sc.Type.([]any); ok && len(ts) > 0 {
		typ, _ = ts[0].(string)
	}
	if typ == "" && sc.Properties != nil {
		typ = "object"
	}
	switch strings.ToLower(typ) { // Gemini's own schema spells types in capitals
	case "string":
		return Word(seed, depth)
	case "integer", "number":
		return int(mix(seed+uint64(depth)) % 100)
	case "boolean":
		return true
	case "null":
		return nil
	case "array":
		if len(sc.Items) == 0 {
			return []any{}
		}
		return []any{fill(sc.Items, seed, depth+1)}
	}
	out := map[string]any{}
	keys := make([]string, 0, len(sc.Properties))
	for k := range sc.Properties {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for i, k := range keys {
		out[k] = fill(sc.Properties[k], mix(seed+uint64(i)), depth+1)
	}
	return out
}

// Fill makes a deterministic value that fits a JSON schema well enough for tests: every
// property present, strings from the vocabulary, the first enum value when there is one.
// The other providers' fakes use it too.
func Fill(schema json.RawMessage, seed uint64) any { return fill(schema, seed, 0) }

// Split cuts s into pieces of at most n bytes without splitting a UTF-8 sequence, as
// providers stream tool arguments and JSON output.
func Split(s string, n int) []string { return split(s, n) }

// split cuts s into pieces of at most n bytes without splitting a UTF-8 sequence.
func split(s string, n int) []string {
	var out []string
	for len(s) > 0 {
		end := min(n, len(s))
		for end < len(s) && end > 0 && s[end]&0xC0 == 0x80 {
			end--
		}
		if end == 0 {
			end = min(n, len(s))
		}
		out = append(out, s[:end])
		s = s[end:]
	}
	return out
}

// promptTokens counts a prompt the fake's way (words plus per-message framing) and how
// many of those tokens an engine with prefix caching would already hold: those of the
// longest message prefix this server has served before.
func (s *Server) promptTokens(msgs []api.Message) (total, cached int) {
	h := fnv.New64a()
	hashes := make([]uint64, len(msgs))
	counts := make([]int, len(msgs))
	for i, m := range msgs {
		total += 4 + len(strings.Fields(string(m.Content)))
		for _, tc := range m.ToolCalls {
			total += 4 + len(strings.Fields(tc.Function.Name+" "+tc.Function.Arguments))
		}
		hashMessage(h, m)
		hashes[i], counts[i] = h.Sum64(), total
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := len(msgs) - 1; i >= 0; i-- {
		if _, ok := s.seen[hashes[i]]; ok {
			cached = counts[i]
			break
		}
	}
	// Bound memory in long benchmarks; forgetting everything is a cold cache, still valid.
	if len(s.seen) > 1<<16 {
		clear(s.seen)
	}
	for _, x := range hashes {
		s.seen[x] = struct{}{}
	}
	return total, cached
}
