package boot

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"path/filepath"

	"github.com/aios-go/aios/api"
	"github.com/aios-go/aios/internal/config"
	"github.com/aios-go/aios/internal/kernel"
	"github.com/aios-go/aios/internal/llm"
	"github.com/aios-go/aios/internal/memory"
	"github.com/aios-go/aios/internal/sched"
)

// memoryService runs memory syscalls on the memory manager. add_agentic_memory's LLM
// steps are LLM syscalls of the same kernel, made through k once it exists.
// gated is as storageService's.
type memoryService struct {
	m     *memory.Manager
	k     **kernel.Kernel
	gated bool
}

func (s memoryService) Admit(r kernel.Request) error {
	p, _ := r.Args.(*api.MemoryParams)
	if p == nil {
		return nil
	}
	return checkOwner(sched.Memory, r, p.Owner, s.gated)
}

func (s memoryService) Run(ctx context.Context, r kernel.Request) (any, error) {
	p, _ := r.Args.(*api.MemoryParams)
	agent := r.Agent
	if p != nil {
		var err error
		if agent, ctx, err = namespaceFor(ctx, sched.Memory, r, p.Owner, s.gated); err != nil {
			return nil, err
		}
	}
	return s.m.Syscall(ctx, agent, r.Op, p, s.callTool)
}

func (s memoryService) Close() error { return s.m.Close() }

// callTool is an LLM syscall that must answer by calling tool; its arguments come back.
func (s memoryService) callTool(ctx context.Context, agent string, msgs []api.Message, tool api.Tool) (json.RawMessage, error) {
	k := *s.k
	choice, _ := json.Marshal(map[string]any{"type": "function", "function": map[string]string{"name": tool.Function.Name}})
	res, _, err := k.CallLLM(ctx, kernel.LLMCall{
		Agent: agent, Program: agent + "/memory", Op: "memory.agentic",
		Request: llm.Request{Messages: msgs, Tools: []api.Tool{tool}, ToolChoice: choice, MaxTokens: 512},
	})
	if err != nil {
		return nil, err
	}
	for _, c := range res.ToolCalls {
		if c.Function.Name == tool.Function.Name {
			return json.RawMessage(c.Function.Arguments), nil
		}
	}
	return nil, api.Errorf(api.BackendBadResponse, "the model was asked to call %s and did not", tool.Function.Name)
}

func openMemory(cfg config.Config, log *slog.Logger) (*memory.Manager, error) {
	e, err := embedder(cfg)
	if err != nil {
		return nil, err
	}
	path := cfg.Memory.Path
	if path == "" {
		path = filepath.Join(cfg.DataDir, "memory.db")
	}
	backend := cfg.Memory.Backend
	if backend == "" {
		backend = cfg.Storage.Backend
	}
	m, err := memory.Open(context.Background(), memory.Config{
		Backend: backend, Path: path, DSN: cfg.Memory.DSN,
		Embedder: e, HotBytes: cfg.Memory.HotBytes, K: cfg.Memory.K,
		Logger: log,
	})
	if err != nil {
		return nil, fmt.Errorf("memory (%s): %w", backend, err)
	}
	return m, nil
}
