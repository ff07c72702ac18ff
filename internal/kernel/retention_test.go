package kernel

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/aios-go/aios/api"
	"github.com/aios-go/aios/internal/llm"
	"github.com/aios-go/aios/internal/llm/sim"
	"github.com/aios-go/aios/internal/llm/simcore"
)

// A session whose call ends in a tool call keeps its KV cache pinned on the engine while
// the tool runs, and the kernel learns how long that tool takes.
func TestToolAwareRetention(t *testing.T) {
	core, err := simcore.New(simcore.Config{Config: sim.Config{Model: "sim", Speed: 100}})
	if err != nil {
		t.Fatal(err)
	}
	k := newKernel(t, Options{Retention: true}, CoreConfig{Model: "sim", Backend: "sim", Core: core})
	tools := []api.Tool{{Type: "function", Function: api.FunctionDef{Name: "search", Parameters: json.RawMessage(`{"type":"object"}`)}}}
	msgs := userMsg(strings.Repeat("context words ", 300))
	res, _, err := k.CallLLM(context.Background(), LLMCall{Agent: "a", Program: "s1", Request: llm.Request{
		Messages: msgs, Tools: tools, ToolChoice: json.RawMessage(`"required"`), MaxTokens: 64}})
	if err != nil || len(res.ToolCalls) != 1 {
		t.Fatalf("%v %+v", err, res)
	}
	if pinned := core.Live().Stats().PinnedBlocks; pinned == 0 {
		t.Fatal("the session's KV was not pinned across its tool call")
	}
	time.Sleep(30 * time.Millisecond) // the tool runs
	msgs = append(msgs, api.Message{Role: "assistant", ToolCalls: res.ToolCalls},
		api.Message{Role: "tool", ToolCallID: res.ToolCalls[0].ID, Content: "found it"})
	res, _, err = k.CallLLM(context.Background(), LLMCall{Agent: "a", Program: "s1", Request: llm.Request{Messages: msgs, Tools: tools, MaxTokens: 8}})
	if err != nil {
		t.Fatal(err)
	}
	if res.Usage.PromptTokensDetails == nil || res.Usage.PromptTokensDetails.CachedTokens < 500 {
		t.Fatalf("the session's return did not hit its pinned prefix: %+v", res.Usage)
	}
	k.mu.Lock()
	ttl := k.retain.est.TTL("search", 1000, 1<<20)
	k.mu.Unlock()
	if ttl < 60*time.Millisecond || ttl > time.Second {
		t.Fatalf("after one ~30ms wait the TTL for search is %v, want about twice that", ttl)
	}
}

// With retention hints on, a program's end reaches engines that take the hint: the
// simulated engine puts the session's context first in line for eviction. Without them
// nothing is sent.
func TestEndProgramTellsTheEngine(t *testing.T) {
	for _, retain := range []bool{true, false} {
		core, err := simcore.New(simcore.Config{Config: sim.Config{Model: "sim", Speed: 100}, SessionHints: true})
		if err != nil {
			t.Fatal(err)
		}
		k := newKernel(t, Options{Retention: retain}, CoreConfig{Model: "sim", Backend: "sim", Core: core})
		call := func(program string) {
			t.Helper()
			if _, _, err := k.CallLLM(context.Background(), LLMCall{Agent: "a", Program: program, Request: llm.Request{
				Messages: userMsg(strings.Repeat("context words ", 300)), MaxTokens: 4}}); err != nil {
				t.Fatal(err)
			}
		}
		call("s1")
		k.EndProgram("s1")
		if retain {
			deadline := time.Now().Add(10 * time.Second)
			for core.Live().Stats().ForgottenBlocks == 0 && time.Now().Before(deadline) {
				time.Sleep(time.Millisecond)
			}
			if core.Live().Stats().ForgottenBlocks == 0 {
				t.Fatal("the ended session's context was not demoted")
			}
			continue
		}
		call("s2") // the engine applies what it is sent in order: an end hint would be in by now
		if n := core.Live().Stats().ForgottenBlocks; n != 0 {
			t.Fatalf("without retention hints the engine demoted %d blocks", n)
		}
	}
}
