package sim

import "encoding/json"

// Message is one chat message as the engine's chat template sees it.
type Message struct {
	Role      string
	Content   string
	ToolCalls []ToolCall // an assistant turn's calls
}

// ToolCall is a function call the model made.
type ToolCall struct {
	ID        string
	Name      string
	Arguments string // JSON object
}

// Tool is a function the model may call.
type Tool struct {
	Name        string
	Description string
	Parameters  json.RawMessage // JSON schema; its properties shape generated arguments
}

// encodeChat renders messages through a Llama-3-shaped chat template straight to token
// ids:
//
//	<|begin_of_text|> [system turn] [tools turn] turns... <|start_header_id|>assistant<|end_header_id|> [prefix]
//
// where a turn is <|start_header_id|>role<|end_header_id|> content [<|python_tag|> name
// args]... <|eot_id|>. As in Llama 3.1, tool definitions come after the system prompt,
// so agents sharing a system prompt share a cached prefix whatever their tools. The
// generation prompt is the same header a finished assistant turn starts with, so a
// response and the next request that repeats it share every token up to its end.
//
// It returns the ids and base, the length before the open assistant turn: the part that
// determines the output, shared by a generation and its continuations.
func encodeChat(msgs []Message, tools []Tool, prefix string, genPrompt bool) (ids []uint32, base int) {
	ids = make([]uint32, 0, 64)
	ids = append(ids, tokBOS)
	i := 0
	if len(msgs) > 0 && msgs[0].Role == "system" {
		ids = appendTurn(ids, msgs[0])
		i = 1
	}
	if len(tools) > 0 {
		ids = appendHeader(ids, "tools")
		for _, t := range tools {
			ids = AppendTokens(ids, t.Name)
			ids = AppendTokens(ids, t.Description)
			ids = AppendTokens(ids, string(t.Parameters))
		}
		ids = append(ids, tokEOT)
	}
	for ; i < len(msgs); i++ {
		ids = appendTurn(ids, msgs[i])
	}
	base = len(ids)
	if genPrompt || prefix != "" {
		ids = appendHeader(ids, "assistant")
		ids = AppendTokens(ids, prefix)
	}
	return ids, base
}

func appendHeader(ids []uint32, role string) []uint32 {
	ids = append(ids, tokStartHeader)
	ids = AppendTokens(ids, role)
	return append(ids, tokEndHeader)
}

func appendTurn(ids []uint32, m Message) []uint32 {
	ids = appendHeader(ids, m.Role)
	ids = AppendTokens(ids, m.Content)
	for _, c := range m.ToolCalls {
		ids = append(ids, tokToolCall)
		ids = AppendTokens(ids, c.Name)
		ids = AppendTokens(ids, c.Arguments)
	}
	return append(ids, tokEOT)
}

// encodeCompletion is a raw prompt after the beginning-of-text token, as vLLM tokenizes
// /v1/completions prompts.
func encodeCompletion(prompt string) []uint32 {
	ids := make([]uint32, 0, 1+len(prompt)/4)
	ids = append(ids, tokBOS)
	return AppendTokens(ids, prompt)
}

// outputSeed names a request's output sequence: a hash of everything before the open
// assistant turn, the caller's seed and the session. Identical requests give identical
// output (like greedy decoding), and a continuation, whose prompt differs only after
// base, continues the very sequence it was cut from.
func outputSeed(ids []uint32, seed uint64, session string) uint64 {
	h := hashRoot
	for _, t := range ids {
		h = (h ^ uint64(t)) * 0x100000001b3
	}
	for i := 0; i < len(session); i++ {
		h = (h ^ uint64(session[i])) * 0x100000001b3
	}
	return mix64(h ^ mix64(seed))
}
