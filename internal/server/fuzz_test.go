package server

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/aios-go/aios/internal/kernel"
)

// fuzzServer builds a kernel whose sim core answers instantly, so each input costs
// microseconds.
func fuzzServer(f *testing.F) *Server {
	k, err := kernel.New(kernel.Options{Timeout: 5 * time.Second}, []kernel.CoreConfig{{
		Model: "sim-test", Backend: "sim", Core: fastSim(f, 64),
	}})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { _ = k.Shutdown(context.Background()) })
	return New(k, Options{MaxBodyBytes: 1 << 16})
}

// checkResponse holds for any input: no 5xx (untrusted input is the caller's fault or
// valid) and a JSON body (or an event stream).
func checkResponse(t *testing.T, rec *httptest.ResponseRecorder) {
	if rec.Code >= 500 && rec.Code != http.StatusNotImplemented {
		t.Fatalf("status %d for untrusted input: %s", rec.Code, rec.Body.String())
	}
	body := rec.Body.Bytes()
	if strings.HasPrefix(rec.Header().Get("Content-Type"), "text/event-stream") {
		return
	}
	if !json.Valid(body) {
		t.Fatalf("response is not JSON: %q", body)
	}
}

func FuzzQuery(f *testing.F) {
	for _, s := range []string{
		`{"agent_name":"a","query_type":"llm","query_data":{"messages":[{"role":"user","content":"hi"}],"max_new_tokens":3}}`,
		`{"agent_name":"a","query_type":"llm","query_data":{"messages":[{"role":"user","content":[{"type":"text","text":"hi"}]}],"action_type":"call_tool","tools":[{"type":"function","function":{"name":"x/y"}}],"max_new_tokens":2}}`,
		`{"agent_name":"a","query_type":"memory","query_data":{}}`,
		`{"agent_name":"a","query_type":"llm","query_data":null}`,
		`{"agent_name":"a","query_type":"llm","query_data":{"messages":[{"role":"user","content":null}],"max_new_tokens":1,"llms":[]}}`,
		`{"agent_name":"a","query_type":"llm","query_data":{"messages":[{"role":"user","content":"x"}],"max_new_tokens":100000000}}`,
		`{`, `null`, `"str"`, `{"agent_name":["a"]}`,
	} {
		f.Add(s)
	}
	s := fuzzServer(f)
	f.Fuzz(func(t *testing.T, body string) {
		rec := httptest.NewRecorder()
		s.Handler().ServeHTTP(rec, httptest.NewRequest("POST", "/query", strings.NewReader(body)))
		checkResponse(t, rec)
	})
}

func FuzzChatCompletions(f *testing.F) {
	for _, s := range []string{
		`{"model":"sim-test","messages":[{"role":"user","content":"hi"}],"max_tokens":3}`,
		`{"model":"sim-test","messages":[{"role":"user","content":"hi"}],"max_tokens":3,"stream":true,"stream_options":{"include_usage":true}}`,
		`{"messages":[{"role":"user","content":"hi"}],"max_tokens":2,"tools":[{"type":"function","function":{"name":"f"}}],"tool_choice":"required"}`,
		`{"messages":[{"role":"user","content":"hi"}],"max_tokens":2,"tool_choice":{"function":{"name":"zz"}}}`,
		`{"messages":[],"max_tokens":-4}`, `{"model":1}`, `[]`, ``,
	} {
		f.Add(s)
	}
	s := fuzzServer(f)
	f.Fuzz(func(t *testing.T, body string) {
		rec := httptest.NewRecorder()
		s.Handler().ServeHTTP(rec, httptest.NewRequest("POST", "/v1/chat/completions", strings.NewReader(body)))
		checkResponse(t, rec)
	})
}
