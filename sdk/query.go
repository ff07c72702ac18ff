package sdk

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"github.com/aios-go/aios/api"
)

// Timings are the per-syscall timings AIOS returns with every /query response, in
// seconds: when the call started and ended on its module, how long it waited in the
// queue (across all its slices when it was preempted), and its turnaround.
type Timings struct {
	StartTimes      []float64
	EndTimes        []float64
	WaitingTimes    []float64
	TurnaroundTimes []float64
}

func timingsOf(q *api.QueryResponse) Timings {
	return Timings{
		StartTimes:      q.StartTimes,
		EndTimes:        q.EndTimes,
		WaitingTimes:    q.WaitingTimes,
		TurnaroundTimes: q.TurnaroundTimes,
	}
}

// QueryResult is the answer of a generic /query: the response object as sent, to be
// decoded into api.LLMResponse, api.MemoryResponse or api.ModuleResponse by its class.
type QueryResult struct {
	Response json.RawMessage
	Timings
}

// Decode unmarshals the response object into v.
func (r *QueryResult) Decode(v any) error { return json.Unmarshal(r.Response, v) }

// LLMResult is the answer of an llm query.
type LLMResult struct {
	api.LLMResponse
	Timings
}

// Text is the response message, or "" when the model answered only with tool calls.
func (r *LLMResult) Text() string {
	if r == nil || r.ResponseMessage == nil {
		return ""
	}
	return *r.ResponseMessage
}

// LLMOptions are the optional parts of an llm query. The zero value lets the kernel
// choose everything.
type LLMOptions struct {
	// LLMs picks the model (and backend); the kernel's default model when empty.
	LLMs []api.LLMRef
	// Temperature and MaxNewTokens default to AIOS's 1.0 and 1000 when nil.
	Temperature  *float64
	MaxNewTokens *int
	// ResponseFormat constrains output; LLMChatWithJSONOutput asks for a JSON object
	// when it is nil.
	ResponseFormat *api.ResponseFormat
	// Priority is this kernel's extension (larger runs first under the priority policy).
	Priority *int
}

// Query sends any AIOS query and returns the response object undecoded. Unlike the LLM
// methods it does not turn an error inside the response into a Go error, since the
// response classes report failure differently (status_code, success). AgentName defaults
// to the client's agent.
func (c *Client) Query(ctx context.Context, q api.QueryRequest) (*QueryResult, error) {
	var raw json.RawMessage
	qr, err := c.query(ctx, q, &raw)
	if err != nil {
		return nil, err
	}
	return &QueryResult{Response: raw, Timings: timingsOf(qr)}, nil
}

// query posts q and decodes the response object into resp, a pointer.
func (c *Client) query(ctx context.Context, q api.QueryRequest, resp any) (*api.QueryResponse, error) {
	if q.AgentName == "" {
		q.AgentName = c.agent
	}
	if q.AgentName == "" {
		return nil, errNoAgent
	}
	// A non-nil pointer inside the interface makes encoding/json decode the response
	// object straight into the caller's type, with no second pass over a map.
	qr := api.QueryResponse{Response: resp}
	if err := c.do(ctx, http.MethodPost, "/query", q, &qr); err != nil {
		return nil, err
	}
	if qr.Response == nil {
		return nil, errors.New("sdk: /query answered without a response object")
	}
	return &qr, nil
}

// llm runs one llm query of the given action type.
func (c *Client) llm(ctx context.Context, action string, msgs []api.Message, tools []api.Tool, returnType string, opts LLMOptions) (*LLMResult, error) {
	data := api.LLMQuery{
		QueryClass:        api.QueryLLM,
		LLMs:              opts.LLMs,
		Messages:          msgs,
		Tools:             tools,
		ActionType:        action,
		Temperature:       opts.Temperature,
		MaxNewTokens:      opts.MaxNewTokens,
		MessageReturnType: returnType,
		ResponseFormat:    opts.ResponseFormat,
		Priority:          opts.Priority,
		Session:           c.session,
	}
	if data.Messages == nil {
		// AIOS requires the list; null would be a 4xx.
		data.Messages = []api.Message{}
	}
	b, err := json.Marshal(data)
	if err != nil {
		return nil, fmt.Errorf("sdk: encode llm query: %w", err)
	}
	res := &LLMResult{}
	qr, err := c.query(ctx, api.QueryRequest{QueryType: api.QueryLLM, QueryData: b}, &res.LLMResponse)
	if err != nil {
		return nil, err
	}
	res.Timings = timingsOf(qr)
	// AIOS reports backend failures inside an HTTP 200; surface them as errors so a
	// caller checking err alone cannot mistake a failed call for an empty answer.
	if sc := res.StatusCode; sc != 0 && (sc < 200 || sc > 299) {
		detail := "LLM call failed"
		if res.Error != nil && *res.Error != "" {
			detail = *res.Error
		}
		return res, &Error{Status: sc, Kind: kindForStatus(sc), Detail: detail}
	}
	return res, nil
}

// LLMChat is AIOS's llm_chat: a plain chat completion.
func (c *Client) LLMChat(ctx context.Context, msgs []api.Message, opts LLMOptions) (*LLMResult, error) {
	return c.llm(ctx, api.ActionChat, msgs, nil, "text", opts)
}

// LLMChatWithJSONOutput is AIOS's llm_chat_with_json_output: the answer is a JSON
// document, as text in ResponseMessage. opts.ResponseFormat may carry a json_schema.
func (c *Client) LLMChatWithJSONOutput(ctx context.Context, msgs []api.Message, opts LLMOptions) (*LLMResult, error) {
	if opts.ResponseFormat == nil {
		opts.ResponseFormat = &api.ResponseFormat{Type: "json_object"}
	}
	return c.llm(ctx, api.ActionChatJSON, msgs, nil, "json", opts)
}

// LLMChatWithToolCallOutput is AIOS's llm_chat_with_tool_call_output: the model may
// answer with calls of tools, returned in ToolCalls and not run.
func (c *Client) LLMChatWithToolCallOutput(ctx context.Context, msgs []api.Message, tools []api.Tool, opts LLMOptions) (*LLMResult, error) {
	return c.llm(ctx, api.ActionChatToolCall, msgs, tools, "text", opts)
}

// LLMCallTool is AIOS's llm_call_tool: the model picks tools and the kernel runs them.
func (c *Client) LLMCallTool(ctx context.Context, msgs []api.Message, tools []api.Tool, opts LLMOptions) (*LLMResult, error) {
	return c.llm(ctx, api.ActionCallTool, msgs, tools, "text", opts)
}

// LLMOperateFile is AIOS's llm_operate_file: the model operates on the agent's files
// through the storage manager.
func (c *Client) LLMOperateFile(ctx context.Context, msgs []api.Message, tools []api.Tool, opts LLMOptions) (*LLMResult, error) {
	return c.llm(ctx, api.ActionOperateFile, msgs, tools, "text", opts)
}
