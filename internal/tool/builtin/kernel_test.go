package builtin

import (
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/aios-go/aios/api"
	"github.com/aios-go/aios/internal/tool"
)

// fakeKernel records the syscalls the tools make and answers with what the test set.
type fakeKernel struct {
	mu     sync.Mutex
	calls  []syscall
	answer any
	err    error
}

type syscall struct {
	module, agent, op string
	storage           *api.StorageParams
	memory            *api.MemoryParams
}

func (k *fakeKernel) Storage(_ context.Context, agent, op string, p *api.StorageParams) (any, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.calls = append(k.calls, syscall{module: "storage", agent: agent, op: op, storage: p})
	return k.answer, k.err
}

func (k *fakeKernel) Memory(_ context.Context, agent, op string, p *api.MemoryParams) (any, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.calls = append(k.calls, syscall{module: "memory", agent: agent, op: op, memory: p})
	return k.answer, k.err
}

func (k *fakeKernel) last(t *testing.T) syscall {
	t.Helper()
	k.mu.Lock()
	defer k.mu.Unlock()
	if len(k.calls) == 0 {
		t.Fatal("no syscall")
	}
	return k.calls[len(k.calls)-1]
}

func str(s string) *string { return &s }

func flex(n int) *api.FlexInt { v := api.FlexInt(n); return &v }

func TestKernelToolsMapping(t *testing.T) {
	k := &fakeKernel{answer: map[string]any{"ok": true}}
	m := newManager(t, KernelTools(k, true, true)...)
	cases := []struct {
		tool, args string
		want       syscall
	}{
		{"storage_write", `{"path":"notes/a.md","content":"hi"}`, syscall{module: "storage", op: api.StorageWrite, storage: &api.StorageParams{FilePath: "notes/a.md", Content: str("hi")}}},
		{"storage_write", `{"path":"empty.txt","content":""}`, syscall{module: "storage", op: api.StorageWrite, storage: &api.StorageParams{FilePath: "empty.txt", Content: str("")}}},
		{"storage_read", `{"path":"notes/a.md"}`, syscall{module: "storage", op: api.StorageRead, storage: &api.StorageParams{FilePath: "notes/a.md"}}},
		{"storage_list", `{}`, syscall{module: "storage", op: api.StorageList, storage: &api.StorageParams{}}},
		{"storage_list", `{"path":"notes"}`, syscall{module: "storage", op: api.StorageList, storage: &api.StorageParams{DirPath: "notes"}}},
		{"storage_retrieve", `{"query":"plans","n":3,"keywords":["q3"]}`, syscall{module: "storage", op: api.StorageRetrieve, storage: &api.StorageParams{QueryText: "plans", N: flex(3), Keywords: api.Strings{"q3"}}}},
		{"storage_retrieve", `{"query":"plans"}`, syscall{module: "storage", op: api.StorageRetrieve, storage: &api.StorageParams{QueryText: "plans"}}},
		{"memory_add", `{"content":"likes tea"}`, syscall{module: "memory", op: api.MemoryAdd, memory: &api.MemoryParams{Content: str("likes tea")}}},
		{"memory_add", `{"content":"likes tea","tags":["drinks"],"category":"preference"}`, syscall{module: "memory", op: api.MemoryAdd, memory: &api.MemoryParams{Content: str("likes tea"), Metadata: map[string]any{"tags": []string{"drinks"}, "category": "preference"}}}},
		{"memory_search", `{"query":"tea","k":2}`, syscall{module: "memory", op: api.MemoryRetrieve, memory: &api.MemoryParams{Content: str("tea"), K: flex(2)}}},
		{"memory_get", `{"memory_id":"m-1"}`, syscall{module: "memory", op: api.MemoryGet, memory: &api.MemoryParams{MemoryID: "m-1"}}},
	}
	for _, c := range cases {
		t.Run(c.tool, func(t *testing.T) {
			res, err := m.Run(context.Background(), c.tool, tool.Input{Agent: "alice", Args: json.RawMessage(c.args)})
			if err != nil || res.IsError {
				t.Fatalf("%+v, %v", res, err)
			}
			if res.Content != `{"ok":true}` || string(res.Structured) != `{"ok":true}` {
				t.Errorf("result %+v", res)
			}
			c.want.agent = "alice"
			if got := k.last(t); !reflect.DeepEqual(got, c.want) {
				t.Errorf("syscall %+v %+v %+v, want %+v %+v %+v", got, got.storage, got.memory, c.want, c.want.storage, c.want.memory)
			}
		})
	}
}

func TestKernelToolsErrors(t *testing.T) {
	k := &fakeKernel{}
	m := newManager(t, KernelTools(k, true, true)...)
	read := func() (tool.Result, error) {
		return m.Run(context.Background(), "storage_read", tool.Input{Agent: "bob", Args: json.RawMessage(`{"path":"nope.txt"}`)})
	}
	// The model's own mistake comes back for it to read.
	k.err = api.Wrap(api.CallerNotFound, errors.New("no row"), "no file nope.txt")
	res, err := read()
	if err != nil || !res.IsError || res.Content != "no file nope.txt: no row" {
		t.Fatalf("caller error: %+v, %v", res, err)
	}
	// The kernel's failures are errors, typed as the kernel typed them.
	k.err = api.Errorf(api.BackendUnavailable, "storage backend down")
	if _, err := read(); api.KindOf(err) != api.BackendUnavailable {
		t.Fatalf("backend error: %v", err)
	}
	k.err = errors.New("disk on fire")
	if _, err := read(); err == nil || !strings.Contains(err.Error(), "disk on fire") {
		t.Fatalf("plain error: %v", err)
	}
	// Arguments the schema refuses never reach the kernel.
	before := len(k.calls)
	for _, c := range []struct{ tool, args string }{
		{"storage_write", `{"path":"a"}`},
		{"storage_read", `{"path":""}`},
		{"memory_search", `{"query":"x","k":0}`},
		{"memory_get", `{"id":"m-1"}`},
	} {
		_, err := m.Run(context.Background(), c.tool, tool.Input{Agent: "bob", Args: json.RawMessage(c.args)})
		if api.KindOf(err) != api.CallerBadRequest {
			t.Errorf("%s %s: %v", c.tool, c.args, err)
		}
	}
	if len(k.calls) != before {
		t.Errorf("refused arguments reached the kernel")
	}
}

func TestKernelToolsSetsAndAnnotations(t *testing.T) {
	names := func(ts []tool.Tool) string {
		var n []string
		for _, tl := range ts {
			n = append(n, tl.Spec().Name)
		}
		return strings.Join(n, ",")
	}
	k := &fakeKernel{}
	if got := names(KernelTools(k, true, false)); got != "storage_write,storage_read,storage_list,storage_retrieve" {
		t.Errorf("storage only: %s", got)
	}
	if got := names(KernelTools(k, false, true)); got != "memory_add,memory_search,memory_get" {
		t.Errorf("memory only: %s", got)
	}
	if got := KernelTools(k, false, false); len(got) != 0 {
		t.Errorf("neither: %d tools", len(got))
	}
	type hints struct{ readOnly, destructive, idempotent *bool }
	yes, no := true, false
	want := map[string]hints{
		"storage_write":    {&no, &yes, &no},
		"storage_read":     {&yes, nil, nil},
		"storage_list":     {&yes, nil, nil},
		"storage_retrieve": {&yes, nil, nil},
		"memory_add":       {&no, &no, &no},
		"memory_search":    {&yes, nil, nil},
		"memory_get":       {&yes, nil, nil},
	}
	for _, tl := range KernelTools(k, true, true) {
		s := tl.Spec()
		a, w := s.Annotations, want[s.Name]
		if !reflect.DeepEqual(hints{a.ReadOnlyHint, a.DestructiveHint, a.IdempotentHint}, w) {
			t.Errorf("%s: hints %v %v %v", s.Name, a.ReadOnlyHint, a.DestructiveHint, a.IdempotentHint)
		}
		if s.Source != Source || a.Title == "" || s.Description == "" {
			t.Errorf("%s: %+v", s.Name, s)
		}
	}
}

// Every built-in tool's schema is an object with described properties, required ones
// declared, and no other properties.
func TestSchemas(t *testing.T) {
	f, err := HTTPFetch([]string{"example.com"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	all := append(KernelTools(&fakeKernel{}, true, true), Calculator(), CurrentTime(nil), f)
	newManager(t, all...) // every schema compiles
	for _, tl := range all {
		var s struct {
			Type       string
			Properties map[string]struct{ Description string }
			Required   []string
			Additional *bool `json:"additionalProperties"`
		}
		spec := tl.Spec()
		if err := json.Unmarshal(spec.InputSchema, &s); err != nil {
			t.Fatalf("%s: %v", spec.Name, err)
		}
		if s.Type != "object" || s.Additional == nil || *s.Additional || len(s.Properties) == 0 {
			t.Errorf("%s: schema %s", spec.Name, spec.InputSchema)
		}
		for n, p := range s.Properties {
			if p.Description == "" {
				t.Errorf("%s.%s has no description", spec.Name, n)
			}
		}
		for _, r := range s.Required {
			if _, ok := s.Properties[r]; !ok {
				t.Errorf("%s requires undeclared %s", spec.Name, r)
			}
		}
	}
}

func TestDefault(t *testing.T) {
	names := func(ts []tool.Tool) string {
		var n []string
		for _, tl := range ts {
			n = append(n, tl.Spec().Name)
		}
		return strings.Join(n, ",")
	}
	if got := names(Default(nil, nil)); got != "calculator,current_time" {
		t.Errorf("no allowlist: %s", got)
	}
	if got := names(Default(nil, []string{"example.com"})); got != "calculator,current_time,http_fetch" {
		t.Errorf("with allowlist: %s", got)
	}
	defer func() {
		if r := recover(); r == nil || !strings.Contains(r.(string), `"http://x"`) {
			t.Errorf("malformed rule: %v", r)
		}
	}()
	Default(nil, []string{"http://x"})
}
