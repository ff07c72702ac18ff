package sim

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"github.com/openai/openai-go/v3/packages/param"
)

// The official OpenAI Go client reads the server's JSON and SSE as it reads OpenAI's.
func TestOfficialOpenAIClient(t *testing.T) {
	_, ts := newTestServer(t, fast)
	client := openai.NewClient(option.WithBaseURL(ts.URL+"/v1"), option.WithAPIKey("unused"), option.WithMaxRetries(0))
	ctx := context.Background()
	params := openai.ChatCompletionNewParams{
		Model:     "sim-test",
		Messages:  []openai.ChatCompletionMessageParamUnion{openai.SystemMessage("Be brief."), openai.UserMessage("Hello")},
		MaxTokens: openai.Int(30),
	}
	resp, err := client.Chat.Completions.New(ctx, params)
	if err != nil {
		t.Fatal(err)
	}
	text := resp.Choices[0].Message.Content
	if len(strings.Fields(text)) != int(resp.Usage.CompletionTokens) || resp.Usage.PromptTokens == 0 {
		t.Errorf("response %q with usage %+v", text, resp.Usage)
	}

	params.StreamOptions = openai.ChatCompletionStreamOptionsParam{IncludeUsage: param.NewOpt(true)}
	stream := client.Chat.Completions.NewStreaming(ctx, params)
	var acc openai.ChatCompletionAccumulator
	for stream.Next() {
		acc.AddChunk(stream.Current())
	}
	if err := stream.Err(); err != nil {
		t.Fatal(err)
	}
	if got := acc.Choices[0].Message.Content; got != text {
		t.Errorf("streamed %q, non-streamed %q", got, text)
	}
	if acc.Usage.CompletionTokens != resp.Usage.CompletionTokens || acc.Usage.PromptTokensDetails.CachedTokens == 0 {
		t.Errorf("streamed usage %+v", acc.Usage)
	}

	tool := openai.ChatCompletionFunctionTool(openai.FunctionDefinitionParam{
		Name:       "lookup",
		Parameters: openai.FunctionParameters{"type": "object", "properties": map[string]any{"key": map[string]any{"type": "string"}}},
	})
	params.Tools = []openai.ChatCompletionToolUnionParam{tool}
	params.ToolChoice = openai.ToolChoiceOptionFunctionToolChoice(openai.ChatCompletionNamedToolChoiceFunctionParam{Name: "lookup"})
	stream = client.Chat.Completions.NewStreaming(ctx, params)
	acc = openai.ChatCompletionAccumulator{}
	for stream.Next() {
		acc.AddChunk(stream.Current())
	}
	if err := stream.Err(); err != nil {
		t.Fatal(err)
	}
	calls := acc.Choices[0].Message.ToolCalls
	if len(calls) != 1 || calls[0].Function.Name != "lookup" || !strings.HasPrefix(calls[0].Function.Arguments, `{"key": "`) {
		t.Errorf("streamed tool calls %+v", calls)
	}

	_, err = client.Chat.Completions.New(ctx, openai.ChatCompletionNewParams{Model: "other", Messages: params.Messages})
	var apiErr *openai.Error
	if !errors.As(err, &apiErr) || apiErr.StatusCode != 404 {
		t.Errorf("unknown model: %v", err)
	}
}
