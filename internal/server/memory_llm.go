package server

import (
	"context"
	"fmt"
	"net/http"
	"strings"

	"github.com/aios-go/aios/api"
	"github.com/aios-go/aios/internal/kernel"
	"github.com/aios-go/aios/internal/llm"
	"github.com/aios-go/aios/internal/sched"
)

// MemoryOptions configure what the memory module does around LLM calls.
type MemoryOptions struct {
	// InjectAgents have memory injection on for every call; other calls ask for it with
	// X-AIOS-Memory: on (or "memory": true in an AIOS llm query).
	InjectAgents []string
	TopK         int     // memories injected at most (5)
	MinScore     float64 // relative score below which a memory is not injected (0.3)
	Tokens       int     // token budget of the injected system message (512)
	// Managed context (X-AIOS-Context: managed): the session's budget in tokens, the
	// shares of it that trigger a summary and force dropping turns, and the policy.
	ContextTokens  int     // 8192
	ContextWarning float64 // 0.7
	ContextHard    float64 // 0.9
	ContextPolicy  string  // "summarize" (default) or "drop"
}

func (o MemoryOptions) withDefaults() MemoryOptions {
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&o.TopK, 5)
	def(&o.Tokens, 512)
	def(&o.ContextTokens, 8192)
	if o.MinScore <= 0 {
		o.MinScore = 0.3
	}
	if o.ContextWarning <= 0 {
		o.ContextWarning = 0.7
	}
	if o.ContextHard <= 0 {
		o.ContextHard = 0.9
	}
	if o.ContextPolicy == "" {
		o.ContextPolicy = "summarize"
	}
	return o
}

// memoryRun is one LLM call's use of memory: prepared before the call, finished after.
type memoryRun struct {
	s              *Server
	agent, program string
	inject         bool
	managed        bool
	asked          []api.Message // the turn the agent sent
	sent           []api.Message // what went to the model
	use            api.MemoryUse
}

// memoryFor decides whether the call uses memory (the agent is configured for it, or
// the request asked) and prepares it: memories retrieved by a memory syscall go in as a
// system message, and a managed session's history goes in before the new turn. It
// returns nil when the call uses none. Both need the memory module.
func (s *Server) memoryFor(ctx context.Context, r *http.Request, agent, program string, req *llm.Request, injectAsked, managedAsked bool) (*memoryRun, error) {
	o := s.opts.Memory
	inject := injectAsked || strings.EqualFold(r.Header.Get(api.HeaderMemory), "on")
	for _, a := range o.InjectAgents {
		inject = inject || a == agent
	}
	managed := managedAsked || strings.EqualFold(r.Header.Get(api.HeaderContext), "managed")
	if !inject && !managed {
		return nil, nil
	}
	if !s.k.Enabled(sched.Memory) {
		return nil, api.Errorf(api.PolicyNotEnabled, "memory injection and managed context need the memory module, which is not enabled in this kernel")
	}
	if program == "" {
		program = agent
	}
	m := &memoryRun{s: s, agent: agent, program: program, inject: inject, managed: managed, asked: req.Messages}
	msgs := req.Messages
	if managed {
		var err error
		if msgs, err = m.history(ctx, msgs); err != nil {
			return nil, err
		}
	}
	if inject {
		var err error
		if msgs, err = m.injectMemories(ctx, msgs); err != nil {
			return nil, err
		}
	}
	req.Messages = msgs
	m.sent = msgs
	return m, nil
}

// memorySyscall runs one memory syscall for the agent.
func (m *memoryRun) memorySyscall(ctx context.Context, op string, p *api.MemoryParams) (any, error) {
	res, _, err := m.s.k.Do(ctx, kernel.Call{Agent: m.agent, Program: m.program, Module: sched.Memory, Op: op, Args: p})
	return res, err
}

// injectMemories retrieves the notes most relevant to the last user message and puts
// those above the score threshold, within the token budget, in a system message after
// the conversation's own system messages.
func (m *memoryRun) injectMemories(ctx context.Context, msgs []api.Message) ([]api.Message, error) {
	o := m.s.opts.Memory
	query := ""
	for i := len(msgs) - 1; i >= 0; i-- {
		if msgs[i].Role == "user" {
			query = string(msgs[i].Content)
			break
		}
	}
	if strings.TrimSpace(query) == "" {
		return msgs, nil
	}
	k := api.FlexInt(o.TopK)
	res, err := m.memorySyscall(ctx, api.MemoryRetrieveRaw, &api.MemoryParams{Content: &query, K: &k, MinScore: o.MinScore})
	if err != nil {
		return nil, err
	}
	var b strings.Builder
	b.WriteString("Memories of earlier conversations that may be relevant:\n")
	used := llm.EstimateTokens([]api.Message{{Role: "system", Content: api.Content(b.String())}}, nil)
	for _, r := range res.(*api.MemoryResponse).SearchResults {
		line := fmt.Sprintf("- %v\n", r["content"])
		t := llm.EstimateTokens([]api.Message{{Content: api.Content(line)}}, nil)
		if used+t > o.Tokens {
			break
		}
		used += t
		b.WriteString(line)
		m.use.Injected = append(m.use.Injected, fmt.Sprint(r["memory_id"]))
	}
	if len(m.use.Injected) == 0 {
		return msgs, nil
	}
	at := 0
	for at < len(msgs) && msgs[at].Role == "system" {
		at++
	}
	out := make([]api.Message, 0, len(msgs)+1)
	out = append(out, msgs[:at]...)
	out = append(out, api.Message{Role: "system", Content: api.Content(b.String())})
	return append(out, msgs[at:]...), nil
}

// history puts the session's stored conversation before the new turn and keeps it
// within the budget: past the warning watermark the oldest turns are folded into a
// summary by an LLM syscall (MemGPT, Packer et al. 2023), past the hard one (or under
// the drop policy) they are dropped.
func (m *memoryRun) history(ctx context.Context, turn []api.Message) ([]api.Message, error) {
	o := m.s.opts.Memory
	res, err := m.memorySyscall(ctx, api.MemoryGetConversation, &api.MemoryParams{Session: m.program})
	if err != nil {
		return nil, err
	}
	past, _ := res.([]api.Message)
	msgs := append(append([]api.Message(nil), past...), turn...)
	tokens := func() int { return llm.EstimateTokens(msgs, nil) }
	warn, hard := int(o.ContextWarning*float64(o.ContextTokens)), int(o.ContextHard*float64(o.ContextTokens))
	// The oldest turns are those after the leading system messages and before the new
	// turn; the new turn itself is never cut.
	head := 0
	for head < len(msgs) && msgs[head].Role == "system" {
		head++
	}
	tail := len(msgs) - len(turn)
	if tokens() > warn && o.ContextPolicy == "summarize" && tail-head >= 2 {
		n := (tail - head) / 2
		summary, err := m.summarize(ctx, msgs[head:head+n], max(o.ContextTokens/8, 32))
		if err != nil {
			return nil, err
		}
		folded := api.Message{Role: "system", Content: api.Content("Summary of the earlier conversation: " + summary)}
		msgs = append(append(append([]api.Message(nil), msgs[:head]...), folded), msgs[head+n:]...)
		m.use.Summarized = n
		head++
		tail = len(msgs) - len(turn)
	}
	limit := hard
	if o.ContextPolicy == "drop" {
		limit = warn
	}
	for tokens() > limit && head < tail {
		msgs = append(msgs[:head], msgs[head+1:]...)
		tail--
		m.use.Dropped++
	}
	if tokens() > limit && m.use.Summarized > 0 {
		// Even the summary does not fit beside the new turn: it goes too.
		msgs = append(msgs[:head-1], msgs[head:]...)
	}
	m.use.ContextTokens = tokens()
	return msgs, nil
}

// summarize asks the model, in an LLM syscall of the agent's, for a short summary.
func (m *memoryRun) summarize(ctx context.Context, turns []api.Message, maxTokens int) (string, error) {
	var b strings.Builder
	for _, t := range turns {
		fmt.Fprintf(&b, "%s: %s\n", t.Role, t.Content)
	}
	res, _, err := m.s.k.CallLLM(ctx, kernel.LLMCall{
		Agent: m.agent, Program: m.program, Op: "memory.summarize",
		Request: llm.Request{MaxTokens: maxTokens, Messages: []api.Message{
			{Role: "system", Content: "Summarise the conversation below in a few sentences, keeping every fact, name, number and decision."},
			{Role: "user", Content: api.Content(b.String())},
		}},
	})
	if err != nil {
		return "", err
	}
	return res.Text, nil
}

// after records the call's outcome: the exchange as a note when memory is injected, the
// session's history when its context is managed.
func (m *memoryRun) after(ctx context.Context, res *llm.Result) {
	if m == nil || res == nil {
		return
	}
	reply := api.Message{Role: "assistant", Content: api.Content(res.Text), ToolCalls: res.ToolCalls}
	if m.inject {
		var b strings.Builder
		for _, t := range m.asked {
			if t.Role == "user" {
				fmt.Fprintf(&b, "User: %s\n", t.Content)
			}
		}
		fmt.Fprintf(&b, "Assistant: %s", res.Text)
		content := b.String()
		out, err := m.memorySyscall(ctx, api.MemoryAdd, &api.MemoryParams{Content: &content,
			Metadata: map[string]any{"tags": []string{"conversation"}, "session": m.program}})
		if err == nil {
			if mr, ok := out.(*api.MemoryResponse); ok && mr.MemoryID != nil {
				m.use.Stored = *mr.MemoryID
			}
		} else {
			m.s.log.Warn("storing an exchange in memory failed", "agent", m.agent, "error", err)
		}
	}
	if m.managed {
		// What is kept is what the model saw, less injected memories (they are fetched
		// anew each turn), plus its reply.
		var keep []api.Message
		for _, msg := range m.sent {
			if !strings.HasPrefix(string(msg.Content), "Memories of earlier conversations") || msg.Role != "system" {
				keep = append(keep, msg)
			}
		}
		keep = append(keep, reply)
		if _, err := m.memorySyscall(ctx, api.MemorySaveConversation, &api.MemoryParams{Session: m.program, Messages: keep}); err != nil {
			m.s.log.Warn("saving a managed conversation failed", "agent", m.agent, "session", m.program, "error", err)
		}
	}
}

// usage is what the response reports, nil when memory was not used.
func (m *memoryRun) usage() *api.MemoryUse {
	if m == nil {
		return nil
	}
	return &m.use
}
