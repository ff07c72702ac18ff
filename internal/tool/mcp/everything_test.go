package mcp

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/aios-go/aios/api"
	"github.com/aios-go/aios/internal/tool"
)

// startEverything runs the reference server-everything over stdio. Its launcher picks
// the transport from its first argument (stdio is also the default).
func startEverything(t *testing.T, reg *registrar) *Server {
	t.Helper()
	bin := npmServer(t, "mcp-server-everything")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s, err := Start(ctx, ServerConfig{
		Name:           "everything",
		Command:        bin,
		Args:           []string{"stdio"},
		RestartBackoff: 20 * time.Millisecond,
		MaxBackoff:     200 * time.Millisecond,
	}, reg, testLog(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func call(t *testing.T, tl tool.Tool, args string) tool.Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res, err := tl.Call(ctx, tool.Input{Agent: "test", Args: json.RawMessage(args)})
	if err != nil {
		t.Fatalf("%s(%s): %v", tl.Spec().Name, args, err)
	}
	return res
}

func TestEverythingStdio(t *testing.T) {
	reg := newRegistrar()
	s := startEverything(t, reg)

	st := s.Status()
	if !st.Connected || st.Transport != "stdio" || st.PID == 0 || st.Tools == 0 || st.Protocol == "" || st.Restarts != 0 {
		t.Fatalf("status after start: %+v", st)
	}
	if reg.source != "mcp:everything" {
		t.Fatalf("source %q", reg.source)
	}

	echo := reg.tool(t, "everything__echo")
	spec := echo.Spec()
	if spec.Source != "mcp:everything" || !strings.Contains(spec.Description, "Echo") {
		t.Fatalf("echo spec: %+v", spec)
	}
	var schema struct {
		Type       string                     `json:"type"`
		Properties map[string]json.RawMessage `json:"properties"`
	}
	if err := json.Unmarshal(spec.InputSchema, &schema); err != nil || schema.Type != "object" || schema.Properties["message"] == nil {
		t.Fatalf("echo input schema %s (%v)", spec.InputSchema, err)
	}
	// echo says all four hints, and its title on the tool itself.
	a := spec.Annotations
	if a.ReadOnlyHint == nil || !*a.ReadOnlyHint || a.DestructiveHint == nil || *a.DestructiveHint ||
		a.IdempotentHint == nil || !*a.IdempotentHint || a.OpenWorldHint == nil || *a.OpenWorldHint || a.Title != "Echo Tool" {
		t.Fatalf("echo annotations: %s", mustJSON(a))
	}

	if res := call(t, echo, `{"message":"hello from aios"}`); res.Content != "Echo: hello from aios" || res.IsError {
		t.Fatalf("echo: %+v", res)
	}
	if res := call(t, reg.tool(t, "everything__get-sum"), `{"a":2,"b":40}`); !strings.Contains(res.Content, "is 42") || res.IsError {
		t.Fatalf("get-sum: %+v", res)
	}

	res := call(t, reg.tool(t, "everything__get-structured-content"), `{"location":"Chicago"}`)
	var weather struct {
		Temperature float64 `json:"temperature"`
		Conditions  string  `json:"conditions"`
	}
	if err := json.Unmarshal(res.Structured, &weather); err != nil || weather.Temperature != 36 || weather.Conditions == "" {
		t.Fatalf("structured content %s (%v)", res.Structured, err)
	}

	img := call(t, reg.tool(t, "everything__get-tiny-image"), `{}`)
	if !strings.Contains(img.Content, "[image image/png, ") || strings.Contains(img.Content, "iVBOR") {
		t.Fatalf("tiny image should be a placeholder, not base64: %q", img.Content)
	}

	// The server validates arguments itself; a bad one must come back as a result the
	// model reads or a typed rejection, never as a broken connection.
	bad, err := echo.Call(context.Background(), tool.Input{Args: json.RawMessage(`{"message":3}`)})
	if err != nil {
		if k := api.KindOf(err); k != api.BackendRejected && k != api.BackendBadResponse {
			t.Fatalf("bad argument: %v (kind %s)", err, k)
		}
	} else if !bad.IsError {
		t.Fatalf("bad argument accepted: %+v", bad)
	}
	t.Logf("echo with a number: result %+v, error %v", bad, err)
	if !s.Status().Connected {
		t.Fatal("disconnected after a bad argument")
	}
}

func mustJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}
