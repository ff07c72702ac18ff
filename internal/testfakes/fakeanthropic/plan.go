package fakeanthropic

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/aios-go/aios/internal/testfakes/fakegen"
	"github.com/aios-go/aios/internal/testfakes/fakeopenai"
)

// request is a Messages API request as the API reads it.
type request struct {
	Model        string          `json:"model"`
	MaxTokens    *int            `json:"max_tokens"`
	Messages     []message       `json:"messages"`
	System       json.RawMessage `json:"system"`
	Tools        []tool          `json:"tools"`
	ToolChoice   *toolChoice     `json:"tool_choice"`
	Stream       bool            `json:"stream"`
	OutputConfig *struct {
		Format *struct {
			Type   string          `json:"type"`
			Schema json.RawMessage `json:"schema"`
		} `json:"format"`
	} `json:"output_config"`
}

type message struct {
	Role    string          `json:"role"`
	Content json.RawMessage `json:"content"`
	blocks  []block
}

type block struct {
	Type      string          `json:"type"`
	Text      *string         `json:"text"`
	ID        string          `json:"id"`
	Name      string          `json:"name"`
	Input     json.RawMessage `json:"input"`
	ToolUseID string          `json:"tool_use_id"`
	Content   json.RawMessage `json:"content"`
	IsError   bool            `json:"is_error"`
}

type tool struct {
	Name        string          `json:"name"`
	Description string          `json:"description"`
	InputSchema json.RawMessage `json:"input_schema"`
}

type toolChoice struct {
	Type string `json:"type"`
	Name string `json:"name"`
}

// allowed are the top-level fields API version 2026-10-21 accepts; anything else, the
// removed sampling parameters included, is "Extra inputs are not permitted".
var allowed = map[string]bool{
	"model": true, "max_tokens": true, "messages": true, "system": true, "tools": true,
	"tool_choice": true, "stream": true, "output_config": true, "metadata": true,
	"stop_sequences": true, "thinking": true, "service_tier": true, "container": true,
	"speed": true, "cache_control": true, "diagnostics": true, "inference_geo": true,
}

// decode reads and checks the request, returning the API's message for a 400.
func decode(body []byte, req *request) string {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(body, &fields); err != nil {
		return "There was an issue with your request body: " + err.Error()
	}
	for k := range fields {
		if !allowed[k] {
			return k + ": Extra inputs are not permitted"
		}
	}
	if err := json.Unmarshal(body, req); err != nil {
		return "There was an issue with your request body: " + err.Error()
	}
	if req.Model == "" {
		return "model: Field required"
	}
	if req.MaxTokens == nil {
		return "max_tokens: Field required"
	}
	if *req.MaxTokens < 1 {
		return "max_tokens: Input should be greater than or equal to 1"
	}
	if len(req.Messages) == 0 {
		return "messages: at least one message is required"
	}
	for i := range req.Messages {
		m := &req.Messages[i]
		if m.Role != "user" && m.Role != "assistant" {
			return fmt.Sprintf("messages.%d.role: Input should be 'user' or 'assistant'", i)
		}
		bs, msg := blocks(m.Content, fmt.Sprintf("messages.%d", i))
		if msg != "" {
			return msg
		}
		m.blocks = bs
		final := i == len(req.Messages)-1 && m.Role == "assistant"
		for j, b := range bs {
			switch b.Type {
			case "text":
				if *b.Text == "" && !final {
					return fmt.Sprintf("messages.%d.content.%d.text: text content blocks must be non-empty", i, j)
				}
			case "tool_use":
				if m.Role != "assistant" || b.ID == "" || b.Name == "" {
					return fmt.Sprintf("messages.%d.content.%d: tool_use blocks need an id and a name and belong to assistant messages", i, j)
				}
				var in map[string]any
				if json.Unmarshal(b.Input, &in) != nil {
					return fmt.Sprintf("messages.%d.content.%d.input: Input should be a valid dictionary", i, j)
				}
			case "tool_result":
				if m.Role != "user" {
					return fmt.Sprintf("messages.%d.content.%d: tool_result blocks belong to user messages", i, j)
				}
			default:
				return fmt.Sprintf("messages.%d.content.%d.type: unsupported block type %q", i, j, b.Type)
			}
		}
		if final {
			text := textOf(bs)
			if strings.TrimRightFunc(text, isSpace) != text {
				return "messages: final assistant content cannot end with trailing whitespace"
			}
		}
	}
	// Every tool_use is answered by a tool_result in the very next message, and every
	// tool_result answers a tool_use of the message before.
	for i, m := range req.Messages {
		var uses []string
		for _, b := range m.blocks {
			if b.Type == "tool_use" {
				uses = append(uses, b.ID)
			}
		}
		var results []string
		if i+1 < len(req.Messages) {
			for _, b := range req.Messages[i+1].blocks {
				if b.Type == "tool_result" {
					results = append(results, b.ToolUseID)
				}
			}
		}
		if missing := without(uses, results); len(uses) > 0 && len(missing) > 0 {
			return fmt.Sprintf("messages.%d: `tool_use` ids were found without `tool_result` blocks immediately after: %s. Each `tool_use` block must have a corresponding `tool_result` block in the next message.", i, strings.Join(missing, ", "))
		}
		if i+1 < len(req.Messages) {
			if extra := without(results, uses); len(extra) > 0 {
				return fmt.Sprintf("messages.%d.content: unexpected `tool_use_id` found in `tool_result` blocks: %s. Each `tool_result` block must have a corresponding `tool_use` block in the previous message.", i+1, strings.Join(extra, ", "))
			}
		}
	}
	if i := slices.IndexFunc(req.Messages[0].blocks, func(b block) bool { return b.Type == "tool_result" }); i >= 0 {
		return "messages.0.content: unexpected `tool_use_id` found in `tool_result` blocks: the first message answers no tool_use"
	}
	for i, t := range req.Tools {
		if t.Name == "" {
			return fmt.Sprintf("tools.%d.name: Field required", i)
		}
		var sc struct {
			Type string `json:"type"`
		}
		if json.Unmarshal(t.InputSchema, &sc) != nil || sc.Type != "object" {
			return fmt.Sprintf("tools.%d.input_schema: input_schema must be a JSON schema of type object", i)
		}
	}
	if tc := req.ToolChoice; tc != nil {
		switch tc.Type {
		case "auto", "any", "none":
		case "tool":
			if !slices.ContainsFunc(req.Tools, func(t tool) bool { return t.Name == tc.Name }) {
				return fmt.Sprintf("tool_choice: tool %q is not among the tools", tc.Name)
			}
		default:
			return fmt.Sprintf("tool_choice.type: unknown type %q", tc.Type)
		}
		if tc.Type != "none" && len(req.Tools) == 0 {
			return "tool_choice may only be specified while providing tools"
		}
	}
	if oc := req.OutputConfig; oc != nil && oc.Format != nil {
		if oc.Format.Type != "json_schema" || len(oc.Format.Schema) == 0 {
			return "output_config.format: a json_schema format needs a schema"
		}
	}
	return ""
}

func isSpace(r rune) bool { return r == ' ' || r == '\n' || r == '\t' || r == '\r' }

// blocks reads content given as a string or as an array of blocks.
func blocks(raw json.RawMessage, path string) ([]block, string) {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return []block{{Type: "text", Text: &s}}, ""
	}
	var bs []block
	if err := json.Unmarshal(raw, &bs); err != nil {
		return nil, path + ".content: Input should be a valid string or list of content blocks"
	}
	for j := range bs {
		if bs[j].Type == "text" && bs[j].Text == nil {
			return nil, fmt.Sprintf("%s.content.%d.text: Field required", path, j)
		}
	}
	return bs, ""
}

func textOf(bs []block) string {
	var sb strings.Builder
	for _, b := range bs {
		if b.Type == "text" {
			sb.WriteString(*b.Text)
		}
	}
	return sb.String()
}

func without(a, b []string) []string {
	var out []string
	for _, x := range a {
		if !slices.Contains(b, x) {
			out = append(out, x)
		}
	}
	return out
}

// systemText reads the system prompt given as a string or as text blocks.
func systemText(raw json.RawMessage) string {
	if len(raw) == 0 {
		return ""
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	var bs []block
	_ = json.Unmarshal(raw, &bs)
	return textOf(bs)
}

// outBlock is one content block of the answer, as the pieces it streams in.
type outBlock struct {
	kind     string // text or tool_use
	id, name string
	pieces   []string
}

type plan struct {
	blocks []outBlock
	stop   string
	input  int // prompt tokens not served from the cache
	cached int
}

func (p *plan) tokens() int {
	n := 0
	for _, b := range p.blocks {
		n += len(b.pieces)
	}
	return n
}

func (p *plan) usage(output int) map[string]any {
	return map[string]any{
		"input_tokens": p.input, "output_tokens": output,
		"cache_creation_input_tokens": 0, "cache_read_input_tokens": p.cached,
	}
}

// plan decides the whole answer up front; the handlers only pace and format it.
func (s *Server) plan(req *request) (*plan, string) {
	msgs := req.Messages
	prefix := ""
	if last := msgs[len(msgs)-1]; last.Role == "assistant" {
		if s.opts.RejectPrefill {
			return nil, "This model does not support assistant message prefill. The conversation must end with a user message."
		}
		prefix = textOf(last.blocks)
		msgs = msgs[:len(msgs)-1]
	}

	h := fakegen.NewHasher()
	h.Add("system", systemText(req.System))
	hashes := make([]uint64, len(msgs))
	counts := make([]int, len(msgs))
	total := len(strings.Fields(systemText(req.System)))
	for i, m := range msgs {
		total += 4
		h.Add(m.Role)
		for _, b := range m.blocks {
			switch b.Type {
			case "text":
				h.Add("text", *b.Text)
				total += len(strings.Fields(*b.Text))
			case "tool_use":
				h.Add("tool_use", b.ID, b.Name, string(compact(b.Input)))
				total += 4 + len(strings.Fields(string(b.Input)))
			case "tool_result":
				h.Add("tool_result", b.ToolUseID, resultText(b.Content))
				total += 4 + len(strings.Fields(resultText(b.Content)))
			}
		}
		hashes[i], counts[i] = h.Sum(), total
	}
	seed := h.Sum()
	p := &plan{input: total}
	if hit := s.prefixes.Cached(hashes); hit >= 0 {
		p.cached = counts[hit]
		p.input = total - p.cached
	}
	if prefix != "" {
		// The prefill is prompt too.
		p.input += len(strings.Fields(prefix))
	}

	limit := *req.MaxTokens
	if t := s.chooseTool(req); t != nil {
		args, err := json.Marshal(fakeopenai.Fill(t.InputSchema, seed))
		if err != nil {
			return nil, err.Error()
		}
		if req.ToolChoice == nil || req.ToolChoice.Type == "auto" {
			p.blocks = append(p.blocks, outBlock{kind: "text", pieces: tokens(seed, 0, 3)})
		}
		p.blocks = append(p.blocks, outBlock{kind: "tool_use", id: fmt.Sprintf("toolu_%016x", seed), name: t.Name,
			pieces: fakeopenai.Split(string(args), 8)})
		p.stop = "tool_use"
		return p, ""
	}
	if oc := req.OutputConfig; oc != nil && oc.Format != nil {
		b, err := json.Marshal(fakeopenai.Fill(oc.Format.Schema, seed))
		if err != nil {
			return nil, err.Error()
		}
		p.blocks = []outBlock{{kind: "text", pieces: fakeopenai.Split(string(b), 8)}}
		p.stop = "end_turn"
		return p, ""
	}
	start := fakegen.Continues(prefix)
	n, stop := max(s.opts.DefaultTokens-start, 0), "end_turn"
	if limit < n {
		n, stop = limit, "max_tokens"
	}
	p.blocks = []outBlock{{kind: "text", pieces: tokens(seed, start, start+n)}}
	p.stop = stop
	return p, ""
}

func tokens(seed uint64, from, to int) []string {
	out := make([]string, 0, to-from)
	for i := from; i < to; i++ {
		out = append(out, fakegen.Token(seed, i))
	}
	return out
}

// chooseTool applies tool_choice as Claude does: any and a named tool force a call,
// none forbids one, auto calls only when AutoToolCall is set and the conversation does
// not end with tool results.
func (s *Server) chooseTool(req *request) *tool {
	if len(req.Tools) == 0 {
		return nil
	}
	mode := "auto"
	if req.ToolChoice != nil {
		mode = req.ToolChoice.Type
	}
	switch mode {
	case "any":
		return &req.Tools[0]
	case "tool":
		i := slices.IndexFunc(req.Tools, func(t tool) bool { return t.Name == req.ToolChoice.Name })
		return &req.Tools[i]
	case "auto":
		last := req.Messages[len(req.Messages)-1]
		answered := slices.ContainsFunc(last.blocks, func(b block) bool { return b.Type == "tool_result" })
		if s.opts.AutoToolCall && !answered {
			return &req.Tools[0]
		}
	}
	return nil
}

// resultText is a tool_result's content, given as a string or as text blocks.
func resultText(raw json.RawMessage) string {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	var bs []block
	_ = json.Unmarshal(raw, &bs)
	return textOf(bs)
}

func compact(raw json.RawMessage) []byte {
	var v any
	if json.Unmarshal(raw, &v) != nil {
		return raw
	}
	b, _ := json.Marshal(v)
	return b
}
