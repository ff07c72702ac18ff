package boot

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"

	"github.com/aios-go/aios/api"
	"github.com/aios-go/aios/internal/access"
	"github.com/aios-go/aios/internal/config"
	"github.com/aios-go/aios/internal/kernel"
	"github.com/aios-go/aios/internal/llm"
	"github.com/aios-go/aios/internal/sched"
	"github.com/aios-go/aios/internal/storage"
	"github.com/aios-go/aios/internal/tool"
)

// openAccess opens the access manager (docs/security.md) and starts its background
// work (policy reloads, quota counters); the returned stop ends it and closes the store.
func openAccess(cfg config.Config, log *slog.Logger) (*access.Manager, func() error, error) {
	sc := access.StoreConfig{Backend: cfg.Access.Backend, Path: cfg.Access.Path, DSN: cfg.Access.DSN}
	if sc.Backend == "" { // config.Load defaults these; a config built in code may not
		sc.Backend, sc.DSN = cfg.Storage.Backend, cfg.Storage.DSN
	}
	if sc.Path == "" {
		sc.Path = filepath.Join(cfg.DataDir, "access.db")
	}
	m, err := access.Open(context.Background(), access.Options{
		Store:           sc,
		PolicyDir:       cfg.Access.PolicyDir,
		ApprovalTimeout: cfg.Access.ApprovalTimeout,
		Logger:          log.With("module", "access"),
	})
	if err != nil {
		return nil, nil, fmt.Errorf("access (%s): %w", sc.Backend, err)
	}
	if err := applyQuotas(context.Background(), m, cfg.Access.Quotas, log); err != nil {
		_ = m.Close()
		return nil, nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := m.Run(ctx); err != nil && ctx.Err() == nil {
			log.Error("access: background work stopped", "err", err)
		}
	}()
	stop := func() error {
		cancel()
		<-done
		return m.Close()
	}
	return m, stop, nil
}

// accessGate is the kernel's Gate over the access manager: it maps each call to the
// action and resource the policies name, with the principal the server put in ctx (or,
// for calls made inside the kernel without one, the call's agent on its word).
type accessGate struct {
	m          *access.Manager
	storage    **storage.Manager
	tools      **tool.Manager
	defaultLLM string
	// destructive are the tools the operator marks destructive (tools.destructive):
	// names and "server__*" patterns.
	destructive []string
}

// markedDestructive says whether the operator's list names tool, by its name or a
// pattern ending in "*" ("author/tool" is read as "author__tool").
func markedDestructive(list []string, name string) bool {
	name = tool.Canonical(name)
	for _, d := range list {
		d = tool.Canonical(d)
		if prefix, ok := strings.CutSuffix(d, "*"); ok && strings.HasPrefix(name, prefix) || d == name {
			return true
		}
	}
	return false
}

func (g accessGate) gate(ctx context.Context, c *kernel.Call) (func(int64), error) {
	p, ok := access.PrincipalFrom(ctx)
	if !ok {
		var err error
		if p, err = g.m.Local(ctx, c.Agent); err != nil {
			return nil, err
		}
	}
	act, res, actx := g.classify(ctx, c)
	d, err := g.m.Check(ctx, p, act, res, actx)
	if err != nil {
		return nil, err
	}
	return d.Release, nil
}

// classify maps a call to its action, resource and context.
func (g accessGate) classify(ctx context.Context, c *kernel.Call) (access.Action, access.Resource, access.Context) {
	switch c.Module {
	case sched.LLM:
		var actx access.Context
		model := g.defaultLLM
		if c.LLM != nil {
			if c.LLM.Model != "" {
				model = c.LLM.Model
			}
			actx.InputTokens = int64(llm.EstimateTokens(c.LLM.Messages, c.LLM.Tools))
			actx.OutputTokens = int64(max(c.LLM.MaxTokens, 0))
		}
		return access.LLMGenerate, access.Model(model), actx
	case sched.Memory:
		act := access.MemoryWrite
		switch c.Op {
		case api.MemoryGet, api.MemoryRetrieve, api.MemoryRetrieveRaw, api.MemoryGetConversation:
			act = access.MemoryRead
		}
		return act, access.Namespace(ownerOf(c)), access.Context{}
	case sched.Storage:
		p, _ := c.Args.(*api.StorageParams)
		var path string
		if p != nil {
			path = p.Target()
		}
		actx := access.Context{Path: path}
		act := access.StorageWrite
		switch c.Op {
		case api.StorageRead, api.StorageList, api.StorageRetrieve, storage.OpOpen, storage.OpVersions:
			act = access.StorageRead
		case api.StorageDelete:
			act = access.StorageDelete
		case api.StorageRollback:
			act = access.StorageRollback
		case api.StorageShare, storage.OpUnshare:
			act = access.StorageShare
		case api.StorageWrite:
			if sm := *g.storage; sm != nil && path != "" {
				vs, err := sm.Versions(ctx, ownerOf(c), path)
				actx.Exists = err == nil && len(vs) > 0
			}
		}
		return act, access.Namespace(ownerOf(c)), actx
	case sched.Tool:
		info := access.ToolInfo{}
		if tm := *g.tools; tm != nil {
			if spec, ok := tm.Lookup(c.Resource); ok {
				a := spec.Annotations
				info.Source = spec.Source
				info.Hints = access.Hints{ReadOnly: a.ReadOnlyHint, Destructive: a.DestructiveHint,
					Idempotent: a.IdempotentHint, OpenWorld: a.OpenWorldHint}
			}
		}
		if markedDestructive(g.destructive, c.Resource) {
			yes := true
			info.Destructive = &yes // the operator's word beats the server's hints
		}
		return access.ToolCall, access.Tool(c.Resource), access.Context{Tool: info}
	}
	// A module the gate does not know: the strictest reading, a write to the agent's
	// own namespace.
	return access.StorageWrite, access.Namespace(c.Agent), access.Context{}
}
