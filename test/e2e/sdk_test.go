package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aios-go/aios/api"
	"github.com/aios-go/aios/sdk"
)

// TestGoSDK drives the real kernel with this module's Go SDK: every /query action type
// and both /v1 calls, so the SDK and the server are checked against each other and not
// only against their own fakes.
func TestGoSDK(t *testing.T) {
	k := startKernel(t)
	// The kernel's idle connections would otherwise still be open when goleak looks.
	hc := &http.Client{}
	t.Cleanup(hc.CloseIdleConnections)
	c := sdk.New(k.URL, sdk.WithAgent("go-e2e"), sdk.WithSession("go-e2e-1"), sdk.WithHTTPClient(hc), sdk.WithTimeout(30*time.Second))
	ctx := context.Background()
	msgs := []api.Message{{Role: "user", Content: "Say hello in five words."}}
	tools := []api.Tool{{Type: "function", Function: api.FunctionDef{
		Name:       "demo_author/get_weather",
		Parameters: json.RawMessage(`{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]}`),
	}}}

	t.Run("status", func(t *testing.T) {
		if _, err := c.Status(ctx); err != nil {
			t.Fatal(err)
		}
		cs, err := c.CoreStatus(ctx)
		if err != nil || len(cs.LLMCores) == 0 {
			t.Fatalf("CoreStatus = %+v, %v", cs, err)
		}
		l, err := c.ListLLMs(ctx)
		if err != nil || len(l.LLMs) == 0 || l.LLMs[0].Name != "sim-llama3-8b" {
			t.Fatalf("ListLLMs = %+v, %v", l, err)
		}
	})
	t.Run("chat", func(t *testing.T) {
		res, err := c.LLMChat(ctx, msgs, sdk.LLMOptions{MaxNewTokens: new(16)})
		if err != nil {
			t.Fatal(err)
		}
		if res.Text() == "" || !res.Finished || len(res.TurnaroundTimes) == 0 {
			t.Errorf("response = %+v, timings %+v", res.LLMResponse, res.Timings)
		}
		if res.Usage == nil || res.Usage.CompletionTokens == 0 || res.Usage.CompletionTokens > 16 {
			t.Errorf("usage = %+v, want 1..16 completion tokens", res.Usage)
		}
	})
	t.Run("json output", func(t *testing.T) {
		// Bounded, so the test does not wait on a 1000-token default at simulated speed.
		res, err := c.LLMChatWithJSONOutput(ctx, msgs, sdk.LLMOptions{MaxNewTokens: new(48)})
		if err != nil {
			t.Fatal(err)
		}
		if !json.Valid([]byte(res.Text())) {
			t.Errorf("response_message is not JSON: %q", res.Text())
		}
	})
	for _, tt := range []struct {
		name string
		call func(context.Context, []api.Message, []api.Tool, sdk.LLMOptions) (*sdk.LLMResult, error)
	}{
		{"tool call output", c.LLMChatWithToolCallOutput},
		{"call tool", c.LLMCallTool},
	} {
		t.Run(tt.name, func(t *testing.T) {
			res, err := tt.call(ctx, msgs, tools, sdk.LLMOptions{})
			if err != nil {
				t.Fatal(err)
			}
			// The kernel sends author/tool to the model as author__tool; the agent must
			// get its own name back.
			if len(res.ToolCalls) == 0 || res.ToolCalls[0].Name != "demo_author/get_weather" {
				t.Errorf("tool calls = %+v, want a call of demo_author/get_weather", res.ToolCalls)
			}
		})
	}
	t.Run("caller error", func(t *testing.T) {
		_, err := c.LLMChat(ctx, msgs, sdk.LLMOptions{MaxNewTokens: new(-1)})
		var e *sdk.Error
		if !errors.As(err, &e) || e.Status != 400 || e.Kind != api.CallerBadRequest || !strings.Contains(e.Detail, "max_new_tokens") {
			t.Fatalf("err = %v, want a 400 caller_bad_request about max_new_tokens", err)
		}
	})
	t.Run("unknown model", func(t *testing.T) {
		_, err := c.ChatCompletion(ctx, api.ChatCompletionRequest{Model: "no-such-model", Messages: msgs})
		var e *sdk.Error
		if !errors.As(err, &e) || e.Status < 400 || e.Status > 499 || e.Detail == "" {
			t.Fatalf("err = %v, want a 4xx *sdk.Error with a detail", err)
		}
	})
	t.Run("chat completion", func(t *testing.T) {
		cc, err := c.ChatCompletion(ctx, api.ChatCompletionRequest{Model: "sim-llama3-8b", Messages: msgs, MaxTokens: new(16)})
		if err != nil {
			t.Fatal(err)
		}
		if len(cc.Choices) != 1 || cc.Choices[0].Message.Content == "" || cc.Usage == nil {
			t.Errorf("completion = %+v", cc)
		}
	})
	t.Run("stream", func(t *testing.T) {
		s, err := c.ChatCompletionStream(ctx, api.ChatCompletionRequest{
			Model: "sim-llama3-8b", Messages: msgs, MaxTokens: new(16),
			StreamOptions: &api.StreamOptions{IncludeUsage: true},
		})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		var text strings.Builder
		var usage *api.Usage
		for s.Next() {
			ch := s.Chunk()
			for _, c := range ch.Choices {
				if c.Delta.Content != nil {
					text.WriteString(*c.Delta.Content)
				}
			}
			if ch.Usage != nil {
				usage = ch.Usage
			}
		}
		if err := s.Err(); err != nil {
			t.Fatal(err)
		}
		if text.Len() == 0 || usage == nil || usage.CompletionTokens == 0 {
			t.Errorf("text %q, usage %+v", text.String(), usage)
		}
	})
	t.Run("stream closed early", func(t *testing.T) {
		s, err := c.ChatCompletionStream(ctx, api.ChatCompletionRequest{Model: "sim-llama3-8b", Messages: msgs, MaxTokens: new(512)})
		if err != nil {
			t.Fatal(err)
		}
		if !s.Next() {
			t.Fatalf("no first chunk: %v", s.Err())
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		// The kernel must have let go of the call: a new one is served normally.
		if _, err := c.LLMChat(ctx, msgs, sdk.LLMOptions{MaxNewTokens: new(4)}); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("storage", func(t *testing.T) {
		if err := c.Mount(ctx, "work"); err != nil {
			t.Fatal(err)
		}
		if err := c.CreateDir(ctx, "docs"); err != nil {
			t.Fatal(err)
		}
		if err := c.CreateFile(ctx, "docs/todo.txt"); err != nil {
			t.Fatal(err)
		}
		for _, content := range []string{"water the plants", "feed the cat"} {
			if err := c.WriteFile(ctx, "docs/todo.txt", content); err != nil {
				t.Fatal(err)
			}
		}
		if err := c.Rollback(ctx, "docs/todo.txt", 1); err != nil {
			t.Fatal(err)
		}
		if got, err := c.ReadFile(ctx, "docs/todo.txt"); err != nil || got != "water the plants" {
			t.Fatalf("ReadFile = %q, %v", got, err)
		}
		vs, err := c.Versions(ctx, "docs/todo.txt")
		if err != nil || len(vs) != 4 || vs[0].Change != "rollback" {
			t.Fatalf("Versions = %+v, %v", vs, err)
		}
		v, err := c.Upload(ctx, "docs/big.bin", strings.NewReader(strings.Repeat("0123456789", 100_000)))
		if err != nil || v.Size != 1_000_000 {
			t.Fatalf("Upload = %+v, %v", v, err)
		}
		rc, err := c.Download(ctx, "docs/big.bin")
		if err != nil {
			t.Fatal(err)
		}
		n, _ := io.Copy(io.Discard, rc)
		rc.Close()
		if n != 1_000_000 {
			t.Fatalf("downloaded %d bytes", n)
		}
		hits, err := c.Retrieve(ctx, "plants", 3)
		if err != nil || len(hits) == 0 || hits[0].Path != "/docs/todo.txt" {
			t.Fatalf("Retrieve = %+v, %v", hits, err)
		}
		files, err := c.List(ctx, "docs")
		if err != nil || len(files) != 2 {
			t.Fatalf("List = %+v, %v", files, err)
		}
		link, err := c.Share(ctx, "docs/todo.txt", time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := hc.Get(link.URL)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(body) != "water the plants" {
			t.Fatalf("shared link read %q", body)
		}
		if err := c.Unshare(ctx, link.Token); err != nil {
			t.Fatal(err)
		}
		if err := c.Delete(ctx, "docs"); err != nil {
			t.Fatal(err)
		}
		_, err = c.ReadFile(ctx, "docs/todo.txt")
		var se *sdk.Error
		if !errors.As(err, &se) || se.Status != 404 || se.Kind != api.CallerNotFound {
			t.Fatalf("read after delete: %v", err)
		}
	})
	t.Run("memory", func(t *testing.T) {
		id, err := c.AddMemory(ctx, "The deploy key rotates every Friday", map[string]any{"tags": []string{"ops"}, "category": "infra"})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.AddMemory(ctx, "Lunch on Thursday was noodles", nil); err != nil {
			t.Fatal(err)
		}
		got, err := c.GetMemory(ctx, id)
		if err != nil || got.Content == nil || *got.Content != "The deploy key rotates every Friday" || got.Metadata["category"] != "infra" {
			t.Fatalf("GetMemory = %+v, %v", got, err)
		}
		if err := c.UpdateMemory(ctx, id, nil, map[string]any{"tags": []string{"ops", "security"}}); err != nil {
			t.Fatal(err)
		}
		hits, err := c.RetrieveMemory(ctx, "when does the deploy key rotate?", 1, api.MemoryParams{Tags: api.Strings{"security"}})
		if err != nil || len(hits) != 1 || hits[0]["memory_id"] != id {
			t.Fatalf("RetrieveMemory = %+v, %v", hits, err)
		}
		agentic, err := c.AddAgenticMemory(ctx, "The deploy key moved to the vault", nil)
		if err != nil || agentic == "" {
			t.Fatalf("AddAgenticMemory = %q, %v", agentic, err)
		}
		if err := c.RemoveMemory(ctx, id); err != nil {
			t.Fatal(err)
		}
		_, err = c.GetMemory(ctx, id)
		var se *sdk.Error
		if !errors.As(err, &se) || se.Status != 404 {
			t.Fatalf("GetMemory after remove: %v", err)
		}
	})
}
