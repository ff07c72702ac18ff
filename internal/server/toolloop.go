package server

import (
	"context"
	"encoding/json"
	"net/http"
	"path"
	"strings"

	"github.com/aios-go/aios/api"
	"github.com/aios-go/aios/internal/kernel"
	"github.com/aios-go/aios/internal/llm"
	"github.com/aios-go/aios/internal/tool"
)

// The kernel's tool loop on /v1: a client asks for some of the kernel's tools (the
// kernel_tools field, or the X-AIOS-Tools header: names or patterns such as
// "everything__*", "*" for all). They are offered to the model beside the client's own
// tools; when the model calls only kernel tools, the kernel runs them as tool syscalls
// of the same program, appends the results and asks the model again, up to MaxTurns
// model calls, the last of which may not call tools. A turn that calls a client tool
// ends the loop: the response goes back to the client as usual. A tool_choice that
// forces a call applies to the first turn only.

// DefaultToolTurns bounds the model calls of one request's tool loop.
const DefaultToolTurns = 8

// toolOffer is what one request was offered of the kernel's tools.
type toolOffer struct {
	names    map[string]bool // kernel tools offered, by the name the model sees
	maxTurns int
	ran      []string // tools the kernel ran, in order
}

// offerTools resolves a request's ask for kernel tools and adds their declarations to
// req. A name the client declares itself stays the client's. nil when nothing was asked.
func (s *Server) offerTools(r *http.Request, asked []string, req *llm.Request) (*toolOffer, error) {
	if h := r.Header.Get(api.HeaderTools); h != "" {
		for _, p := range strings.Split(h, ",") {
			if p = strings.TrimSpace(p); p != "" {
				asked = append(asked, p)
			}
		}
	}
	if len(asked) == 0 {
		return nil, nil
	}
	if s.opts.Tools == nil {
		return nil, api.Errorf(api.PolicyNotEnabled, "kernel tools were asked for, but the tool module is not enabled in this kernel")
	}
	own := map[string]bool{}
	for _, t := range req.Tools {
		own[t.Function.Name] = true
	}
	offer := &toolOffer{names: map[string]bool{}, maxTurns: s.opts.ToolTurns}
	if offer.maxTurns <= 0 {
		offer.maxTurns = DefaultToolTurns
	}
	specs := s.opts.Tools.List()
	for _, pattern := range asked {
		pattern = tool.Canonical(pattern)
		matched := false
		for _, sp := range specs {
			if ok, _ := path.Match(pattern, sp.Name); !ok {
				continue
			}
			matched = true
			if own[sp.Name] || offer.names[sp.Name] {
				continue
			}
			offer.names[sp.Name] = true
			req.Tools = append(req.Tools, sp.APITool())
		}
		if !matched {
			return nil, api.Errorf(api.CallerNotFound, "no kernel tool matches %q (GET /v1/tools lists them)", pattern)
		}
	}
	return offer, nil
}

// owns reports whether every call is of a kernel tool, so the kernel can run them all.
func (o *toolOffer) owns(calls []api.ToolCall) bool {
	for _, c := range calls {
		if !o.names[c.Function.Name] {
			return false
		}
	}
	return len(calls) > 0
}

// turn is one model call of the loop.
type turn func(ctx context.Context, call kernel.LLMCall) (*llm.Result, *kernel.Syscall, error)

// loopTools runs call, and while the model calls only offered kernel tools, runs them
// and calls the model again. The result's usage covers every turn.
func (s *Server) loopTools(ctx context.Context, call kernel.LLMCall, offer *toolOffer, do turn) (*llm.Result, *kernel.Syscall, error) {
	var total api.Usage
	for n := 1; ; n++ {
		if offer != nil && n == offer.maxTurns {
			call.Request.ToolChoice = json.RawMessage(`"none"`)
		}
		res, sc, err := do(ctx, call)
		if err != nil {
			return nil, sc, err
		}
		total = addUsage(total, res.Usage)
		if offer == nil || !offer.owns(res.ToolCalls) || n >= offer.maxTurns {
			res.Usage = total
			return res, sc, nil
		}
		reqs := make([]api.ToolCallRequest, len(res.ToolCalls))
		for i, c := range res.ToolCalls {
			reqs[i] = api.ToolCallRequest{Name: c.Function.Name, Parameters: json.RawMessage(c.Function.Arguments), ID: c.ID}
			if strings.TrimSpace(c.Function.Arguments) == "" {
				reqs[i].Parameters = nil
			} else if !json.Valid(reqs[i].Parameters) {
				// Not JSON at all: give it to the tool as a string, whose validation then
				// tells the model what was wrong.
				reqs[i].Parameters, _ = json.Marshal(c.Function.Arguments)
			}
		}
		runs := s.runTools(ctx, call.Agent, call.Program, reqs)
		calls := make([]api.ToolCall, len(res.ToolCalls))
		copy(calls, res.ToolCalls)
		for i := range calls {
			calls[i].Index = nil
			if calls[i].Type == "" {
				calls[i].Type = "function"
			}
		}
		msgs := append(call.Request.Messages[:len(call.Request.Messages):len(call.Request.Messages)],
			api.Message{Role: "assistant", Content: api.Content(res.Text), ToolCalls: calls})
		for _, r := range runs {
			msgs = append(msgs, api.Message{Role: "tool", ToolCallID: r.id, Content: api.Content(message([]toolRun{r}))})
			offer.ran = append(offer.ran, r.name)
		}
		call.Request.Messages = msgs
		// A choice that forces a tool call would force one every turn; once the kernel
		// has run tools the model chooses freely, as OpenAI's agent runtimes do.
		if forcesTool(call.Request.ToolChoice) {
			call.Request.ToolChoice = json.RawMessage(`"auto"`)
		}
	}
}

func forcesTool(choice json.RawMessage) bool {
	c := strings.TrimSpace(string(choice))
	return c == `"required"` || strings.HasPrefix(c, "{")
}

func addUsage(a, b api.Usage) api.Usage {
	a.PromptTokens += b.PromptTokens
	a.CompletionTokens += b.CompletionTokens
	a.TotalTokens += b.TotalTokens
	if b.PromptTokensDetails != nil {
		if a.PromptTokensDetails == nil {
			a.PromptTokensDetails = &api.PromptTokensDetails{}
		}
		a.PromptTokensDetails.CachedTokens += b.PromptTokensDetails.CachedTokens
	}
	return a
}

// toolHeaders tell the client which kernel tools ran for its answer.
func (o *toolOffer) headers(w http.ResponseWriter) {
	if o != nil && len(o.ran) > 0 {
		w.Header().Set(api.HeaderToolsRan, strings.Join(o.ran, ","))
	}
}
