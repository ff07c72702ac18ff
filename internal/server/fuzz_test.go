package server

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/aios-go/aios/internal/boot"
	"github.com/aios-go/aios/internal/config"
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

// FuzzServiceQuery sends storage, memory and tool queries to the kernel as `aios serve`
// builds it, with real stores and the built-in tools: besides the checks of every input, no module may answer with a
// kernel error (status_code 500) for anything a caller sends.
func FuzzServiceQuery(f *testing.F) {
	for _, s := range []string{
		`{"agent_name":"a","query_type":"storage","query_data":{"operation_type":"write","params":{"file_path":"x/y.txt","content":"hello"}}}`,
		`{"agent_name":"a","query_type":"storage","query_data":{"operation_type":"rollback","params":{"file_path":"x/y.txt","n":"1"}}}`,
		`{"agent_name":"a","query_type":"storage","query_data":{"operation_type":"retrieve","params":{"query_text":"hello","k":3,"keywords":"a, b"}}}`,
		`{"agent_name":"a","query_type":"storage","query_data":{"operation_type":"mount","params":{"root_dir":"../../etc"}}}`,
		`{"agent_name":"a","query_type":"storage","query_data":{"operation_type":"share","params":{"file_path":"x/y.txt","expires_in":-1}}}`,
		`{"agent_name":"a","query_type":"storage","query_data":{"operation_type":"read","params":{"file_path":"x\u0000y"}}}`,
		`{"agent_name":"a","query_type":"memory","query_data":{"operation_type":"add_memory","params":{"content":"note","metadata":{"tags":"a,b","category":3}}}}`,
		`{"agent_name":"a","query_type":"memory","query_data":{"operation_type":"retrieve_memory","params":{"content":"note","k":"2","since":"yesterday"}}}`,
		`{"agent_name":"a","query_type":"memory","query_data":{"operation_type":"update_memory","params":{"memory_id":"zz","content":null}}}`,
		`{"agent_name":"a","query_type":"memory","query_data":{"operation_type":"save_conversation","params":{"session":"s","messages":[{"role":"user","content":"hi"}]}}}`,
		`{"agent_name":"","query_type":"storage","query_data":{}}`,
		`{"agent_name":"a","query_type":"tool","query_data":{"tool_calls":[{"name":"calculator","parameters":{"expression":"(1+2)^3/sqrt(4)"}},{"name":"x/y","parameters":{}}]}}`,
		`{"agent_name":"a","query_type":"tool","query_data":{"tool_calls":[{"name":"calculator","parameters":"{\"expression\": 7}"}]}}`,
		`{"agent_name":"a","query_type":"tool","query_data":{"tool_calls":[{"name":"storage_write","parameters":{"path":"../../etc/passwd","content":"x"}}]}}`,
		`{"agent_name":"a","query_type":"tool","query_data":{"tool_calls":[{"name":"memory_search","parameters":{"query":"","k":-3}},{"name":"current_time","parameters":{"timezone":"Local"}}]}}`,
		`{"agent_name":"a","query_type":"tool","query_data":{"tool_calls":[{"name":"calculator","parameters":[1,2]}],"session":7}}`,
	} {
		f.Add(s)
	}
	cfg := config.Defaults()
	cfg.DataDir = f.TempDir()
	cfg.LLMs.Models = []config.Model{{Name: "sim-test", Backend: "sim", Cores: 1, Speed: 200}}
	sys, err := boot.Build(cfg, nil)
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { _ = sys.Kernel.Shutdown(context.Background()) })
	s := New(sys.Kernel, Options{MaxBodyBytes: 1 << 16, Shared: sys.Storage, Tools: sys.Tools})
	f.Fuzz(func(t *testing.T, body string) {
		rec := httptest.NewRecorder()
		s.Handler().ServeHTTP(rec, httptest.NewRequest("POST", "/query", strings.NewReader(body)))
		checkResponse(t, rec)
		var out struct {
			Response struct {
				StatusCode  int `json:"status_code"`
				ToolResults []struct {
					StatusCode int `json:"status_code"`
				} `json:"tool_results"`
			} `json:"response"`
		}
		if json.Unmarshal(rec.Body.Bytes(), &out) != nil {
			return
		}
		codes := []int{out.Response.StatusCode}
		for _, r := range out.Response.ToolResults {
			codes = append(codes, r.StatusCode)
		}
		for _, c := range codes {
			if c >= 500 && c != http.StatusNotImplemented {
				t.Fatalf("module answered %d for %s: %s", c, body, rec.Body.String())
			}
		}
	})
}
