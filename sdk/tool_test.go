package sdk

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/aios-go/aios/api"
)

// toolKernel answers tool queries with the bodies the kernel writes, spelled out, and
// records what it was sent.
func toolKernel(t *testing.T, status int, body string) (*httptest.Server, *[]map[string]any, *[]http.Header) {
	t.Helper()
	var got []map[string]any
	var headers []http.Header
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != "POST" || r.URL.Path != "/query" {
			http.NotFound(w, r)
			return
		}
		b, _ := io.ReadAll(r.Body)
		var q map[string]any
		_ = json.Unmarshal(b, &q)
		got = append(got, q)
		headers = append(headers, r.Header.Clone())
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		io.WriteString(w, body)
	}))
	t.Cleanup(srv.Close)
	return srv, &got, &headers
}

func TestCallTool(t *testing.T) {
	srv, got, headers := toolKernel(t, 200, `{"response": {"response_class": "tool", "response_message": "[calculator]\n14\n[current_time]\n2026-01-01T00:00:00Z", "finished": true, "error": null, "status_code": 200,
		"tool_results": [{"name": "calculator", "content": "14", "status_code": 200, "duration_ms": 0.2},
		                 {"name": "current_time", "content": "2026-01-01T00:00:00Z", "status_code": 200, "duration_ms": 0.1}]},
		"start_times": [1.0, 1.0], "end_times": [1.1, 1.1], "waiting_times": [0.0, 0.0], "turnaround_times": [0.1, 0.1]}`)
	c := New(srv.URL, WithAgent("go-agent"), WithSession("run-7-abc"))
	res, err := c.CallTool(context.Background(), []api.ToolCallRequest{
		{Name: "calculator", Parameters: json.RawMessage(`{"expression": "2+3*4"}`)},
		{Name: "current_time"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.ToolResults) != 2 || *res.ToolResults[0].Content != "14" || res.StatusCode != 200 || !res.Finished {
		t.Errorf("response %+v", res)
	}
	q := (*got)[0]
	data := q["query_data"].(map[string]any)
	calls := data["tool_calls"].([]any)
	if q["agent_name"] != "go-agent" || q["query_type"] != "tool" || data["query_class"] != "tool" || data["session"] != "run-7-abc" ||
		len(calls) != 2 || calls[0].(map[string]any)["parameters"].(map[string]any)["expression"] != "2+3*4" {
		t.Errorf("query sent: %v", q)
	}
	if _, has := calls[1].(map[string]any)["parameters"]; has {
		t.Errorf("a call without parameters sent some: %v", calls[1])
	}
	if h := (*headers)[0]; h.Get(api.HeaderSession) != "run-7-abc" || h.Get(api.HeaderAgent) != "go-agent" {
		t.Errorf("headers %v", h)
	}
}

// TestCallToolFailures: a call the kernel could not run comes back as an *Error with the
// response; a malformed query is an HTTP error; no calls is the caller's mistake.
func TestCallToolFailures(t *testing.T) {
	srv, _, _ := toolKernel(t, 200, `{"response": {"response_class": "tool", "response_message": null, "finished": false,
		"error": "nosuch: no tool named nosuch", "status_code": 404, "kind": "caller_not_found",
		"tool_results": [{"name": "nosuch", "content": null, "error": "no tool named nosuch", "kind": "caller_not_found", "status_code": 404, "duration_ms": 0}]},
		"start_times": [], "end_times": [], "waiting_times": [], "turnaround_times": []}`)
	res, err := New(srv.URL, WithAgent("a")).CallTool(context.Background(), []api.ToolCallRequest{{Name: "nosuch"}})
	var e *Error
	if !errors.As(err, &e) || e.Status != 404 || e.Kind != api.CallerNotFound || e.Detail != "nosuch: no tool named nosuch" {
		t.Errorf("error %v", err)
	}
	if res == nil || len(res.ToolResults) != 1 || res.ToolResults[0].Kind != api.CallerNotFound {
		t.Errorf("response %+v", res)
	}

	bad, _, _ := toolKernel(t, 400, `{"detail": "query_data: tool_calls is required", "kind": "caller_bad_request"}`)
	if _, err := New(bad.URL, WithAgent("a")).CallTool(context.Background(), []api.ToolCallRequest{{Name: "x"}}); !errors.As(err, &e) || e.Status != 400 || e.Kind != api.CallerBadRequest {
		t.Errorf("HTTP 400: %v", err)
	}
	if _, err := New(bad.URL, WithAgent("a")).CallTool(context.Background(), nil); err == nil {
		t.Error("no calls: no error")
	}
	if _, err := New(bad.URL).CallTool(context.Background(), []api.ToolCallRequest{{Name: "x"}}); !errors.Is(err, errNoAgent) {
		t.Errorf("no agent: %v", err)
	}
}
