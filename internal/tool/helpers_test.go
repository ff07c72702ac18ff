package tool

import (
	"context"
	"encoding/json"
	"errors"
	"testing"

	"go.uber.org/goleak"

	"github.com/aios-go/aios/api"
	"github.com/aios-go/aios/internal/testleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m, testleak.Ignore()...) }

// funcTool is a tool whose call is a function of the test.
type funcTool struct {
	spec Spec
	fn   func(ctx context.Context, in Input) (Result, error)
}

func (f *funcTool) Spec() Spec { return f.spec }

func (f *funcTool) Call(ctx context.Context, in Input) (Result, error) {
	if f.fn == nil {
		return Result{Content: "ok"}, nil
	}
	return f.fn(ctx, in)
}

func newTool(name, source, schema string, fn func(context.Context, Input) (Result, error)) *funcTool {
	return &funcTool{spec: Spec{Name: name, Source: source, InputSchema: json.RawMessage(schema)}, fn: fn}
}

// echo is a real little tool: it answers its "text" argument.
func echo(name, source string) *funcTool {
	return newTool(name, source, `{"type":"object","properties":{"text":{"type":"string"}},"required":["text"],"additionalProperties":false}`,
		func(_ context.Context, in Input) (Result, error) {
			var a struct{ Text string }
			if err := json.Unmarshal(in.Args, &a); err != nil {
				return Result{}, err
			}
			return Result{Content: a.Text}, nil
		})
}

func newManager(t testing.TB, cfg Config, tools ...Tool) *Manager {
	t.Helper()
	m, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, tl := range tools {
		if err := m.Register(tl); err != nil {
			t.Fatal(err)
		}
	}
	return m
}

// apiErr asserts err is an *api.Error of kind k and returns it.
func apiErr(t testing.TB, err error, k api.Kind) *api.Error {
	t.Helper()
	var e *api.Error
	if !errors.As(err, &e) {
		t.Fatalf("error %v (%T) is not an *api.Error", err, err)
	}
	if e.Kind != k {
		t.Fatalf("error %v: kind %s, want %s", err, e.Kind, k)
	}
	return e
}

func statsOf(t testing.TB, m *Manager, name string) Stats {
	t.Helper()
	for _, s := range m.Stats() {
		if s.Name == name {
			return s
		}
	}
	t.Fatalf("no stats for %s", name)
	return Stats{}
}
