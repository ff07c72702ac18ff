package builtin

import (
	"context"
	"encoding/json"
	"errors"
	"strings"

	"github.com/aios-go/aios/api"
	"github.com/aios-go/aios/internal/tool"
)

// Kernel reaches the kernel's own storage and memory modules as syscalls of the calling agent.
type Kernel interface {
	Storage(ctx context.Context, agent, op string, p *api.StorageParams) (any, error)
	Memory(ctx context.Context, agent, op string, p *api.MemoryParams) (any, error)
}

// KernelTools returns the tools over the calling agent's storage (storage_write,
// storage_read, storage_list, storage_retrieve) and memory (memory_add, memory_search,
// memory_get), each set when asked for. Every call acts as in.Agent, in its namespace.
func KernelTools(k Kernel, storage, memory bool) []tool.Tool {
	var out []tool.Tool
	if storage {
		out = append(out, storageTools(k)...)
	}
	if memory {
		out = append(out, memoryTools(k)...)
	}
	return out
}

// Annotations of the kernel tools. They reach only the agent's own data: a closed world.
var (
	reads     = tool.Annotations{ReadOnlyHint: hint(true), OpenWorldHint: hint(false)}
	adds      = tool.Annotations{ReadOnlyHint: hint(false), DestructiveHint: hint(false), IdempotentHint: hint(false), OpenWorldHint: hint(false)}
	overwrite = tool.Annotations{ReadOnlyHint: hint(false), DestructiveHint: hint(true), IdempotentHint: hint(false), OpenWorldHint: hint(false)}
)

func titled(a tool.Annotations, title string) tool.Annotations {
	a.Title = title
	return a
}

func storageTools(k Kernel) []tool.Tool {
	syscall := func(op string, params func(in tool.Input) (*api.StorageParams, *tool.Result)) func(context.Context, tool.Input) (tool.Result, error) {
		return func(ctx context.Context, in tool.Input) (tool.Result, error) {
			p, bad := params(in)
			if bad != nil {
				return *bad, nil
			}
			v, err := k.Storage(ctx, in.Agent, op, p)
			return render(v, err)
		}
	}
	return []tool.Tool{
		newTool("storage_write", "Write a text file in your storage, replacing its content (earlier versions are kept).", `{
	"type": "object",
	"properties": {
		"path": {"type": "string", "minLength": 1, "description": "The file's path, such as notes/plan.md."},
		"content": {"type": "string", "description": "The file's whole new content."}
	},
	"required": ["path", "content"],
	"additionalProperties": false
}`, titled(overwrite, "Write a file"), syscall(api.StorageWrite, func(in tool.Input) (*api.StorageParams, *tool.Result) {
			var a struct{ Path, Content string }
			if r := decode(in, &a); r != nil {
				return nil, r
			}
			return &api.StorageParams{FilePath: a.Path, Content: &a.Content}, nil
		})),
		newTool("storage_read", "Read a text file from your storage.", `{
	"type": "object",
	"properties": {
		"path": {"type": "string", "minLength": 1, "description": "The file's path."}
	},
	"required": ["path"],
	"additionalProperties": false
}`, titled(reads, "Read a file"), syscall(api.StorageRead, func(in tool.Input) (*api.StorageParams, *tool.Result) {
			var a struct{ Path string }
			if r := decode(in, &a); r != nil {
				return nil, r
			}
			return &api.StorageParams{FilePath: a.Path}, nil
		})),
		newTool("storage_list", "List the files and folders in a folder of your storage.", `{
	"type": "object",
	"properties": {
		"path": {"type": "string", "description": "The folder; the root when left out."}
	},
	"additionalProperties": false
}`, titled(reads, "List files"), syscall(api.StorageList, func(in tool.Input) (*api.StorageParams, *tool.Result) {
			var a struct{ Path string }
			if r := decode(in, &a); r != nil {
				return nil, r
			}
			return &api.StorageParams{DirPath: a.Path}, nil
		})),
		newTool("storage_retrieve", "Search the files of your storage by meaning and keywords; returns the best matching files with snippets.", `{
	"type": "object",
	"properties": {
		"query": {"type": "string", "minLength": 1, "description": "What to look for, in words."},
		"n": {"type": "integer", "minimum": 1, "maximum": 100, "description": "How many files to return."},
		"keywords": {"type": "array", "items": {"type": "string"}, "description": "Words the files must contain."}
	},
	"required": ["query"],
	"additionalProperties": false
}`, titled(reads, "Search files"), syscall(api.StorageRetrieve, func(in tool.Input) (*api.StorageParams, *tool.Result) {
			var a struct {
				Query    string
				N        *api.FlexInt
				Keywords []string
			}
			if r := decode(in, &a); r != nil {
				return nil, r
			}
			return &api.StorageParams{QueryText: a.Query, N: a.N, Keywords: a.Keywords}, nil
		})),
	}
}

func memoryTools(k Kernel) []tool.Tool {
	syscall := func(op string, params func(in tool.Input) (*api.MemoryParams, *tool.Result)) func(context.Context, tool.Input) (tool.Result, error) {
		return func(ctx context.Context, in tool.Input) (tool.Result, error) {
			p, bad := params(in)
			if bad != nil {
				return *bad, nil
			}
			v, err := k.Memory(ctx, in.Agent, op, p)
			return render(v, err)
		}
	}
	return []tool.Tool{
		newTool("memory_add", "Remember a note for later: it can be found again with memory_search.", `{
	"type": "object",
	"properties": {
		"content": {"type": "string", "minLength": 1, "description": "The text to remember."},
		"tags": {"type": "array", "items": {"type": "string"}, "description": "Tags to find it by."},
		"category": {"type": "string", "description": "A category, such as preference or fact."}
	},
	"required": ["content"],
	"additionalProperties": false
}`, titled(adds, "Remember a note"), syscall(api.MemoryAdd, func(in tool.Input) (*api.MemoryParams, *tool.Result) {
			var a struct {
				Content  string
				Tags     []string
				Category string
			}
			if r := decode(in, &a); r != nil {
				return nil, r
			}
			// The memory module reads a new note's tags and category from its metadata,
			// as AIOS's SDK sends them.
			meta := map[string]any{}
			if len(a.Tags) > 0 {
				meta["tags"] = a.Tags
			}
			if a.Category != "" {
				meta["category"] = a.Category
			}
			if len(meta) == 0 {
				meta = nil
			}
			return &api.MemoryParams{Content: &a.Content, Metadata: meta}, nil
		})),
		newTool("memory_search", "Search your remembered notes by meaning; returns the best matches with their memory_id.", `{
	"type": "object",
	"properties": {
		"query": {"type": "string", "minLength": 1, "description": "What to recall, in words."},
		"k": {"type": "integer", "minimum": 1, "maximum": 100, "description": "How many notes to return."}
	},
	"required": ["query"],
	"additionalProperties": false
}`, titled(reads, "Search notes"), syscall(api.MemoryRetrieve, func(in tool.Input) (*api.MemoryParams, *tool.Result) {
			var a struct {
				Query string
				K     *api.FlexInt
			}
			if r := decode(in, &a); r != nil {
				return nil, r
			}
			return &api.MemoryParams{Content: &a.Query, K: a.K}, nil
		})),
		newTool("memory_get", "Get one remembered note by its memory_id.", `{
	"type": "object",
	"properties": {
		"memory_id": {"type": "string", "minLength": 1, "description": "The note's id, as memory_add or memory_search gave it."}
	},
	"required": ["memory_id"],
	"additionalProperties": false
}`, titled(reads, "Get a note"), syscall(api.MemoryGet, func(in tool.Input) (*api.MemoryParams, *tool.Result) {
			var a struct {
				MemoryID string `json:"memory_id"`
			}
			if r := decode(in, &a); r != nil {
				return nil, r
			}
			return &api.MemoryParams{MemoryID: a.MemoryID}, nil
		})),
	}
}

// render turns a syscall's answer into a tool result. A caller_* error is the model's
// own mistake (a missing file, an unknown id) and comes back for it to read; any other
// error is the kernel's and is returned as one.
func render(v any, err error) (tool.Result, error) {
	if err != nil {
		var e *api.Error
		if errors.As(err, &e) && strings.HasPrefix(string(e.Kind), "caller_") {
			msg := e.Message
			if e.Err != nil {
				msg += ": " + e.Err.Error()
			}
			return failed(msg), nil
		}
		return tool.Result{}, err
	}
	b, err := json.Marshal(v)
	if err != nil {
		return tool.Result{}, api.Wrap(api.KernelInternal, err, "rendering the kernel's answer")
	}
	return tool.Result{Content: string(b), Structured: b}, nil
}
