package httptool

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/aios-go/aios/api"
	"github.com/aios-go/aios/internal/testleak"
	"github.com/aios-go/aios/internal/tool"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m, testleak.Ignore()...) }

// seen is what the test server received.
type seen struct {
	method, path, rawPath, query, body, contentType, auth, custom string
}

// recorder is an endpoint that records each request and answers with its handler.
type recorder struct {
	mu     sync.Mutex
	last   seen
	answer func(w http.ResponseWriter)
}

func (r *recorder) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	b, _ := io.ReadAll(req.Body)
	r.mu.Lock()
	r.last = seen{req.Method, req.URL.Path, req.URL.RawPath, req.URL.RawQuery, string(b), req.Header.Get("Content-Type"), req.Header.Get("Authorization"), req.Header.Get("X-Custom")}
	answer := r.answer
	r.mu.Unlock()
	if answer == nil {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"ok":true}`)
		return
	}
	answer(w)
}

func (r *recorder) got() seen {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.last
}

const issueSchema = `{
	"type": "object",
	"properties": {
		"owner": {"type": "string"},
		"repo": {"type": "string"},
		"labels": {"type": "array", "items": {"type": "string"}},
		"number": {"type": "integer"},
		"title": {"type": "string"}
	},
	"required": ["owner", "repo"]
}`

// run registers the tool in a real manager and calls it there, as the kernel will.
func run(t *testing.T, c Config, client *http.Client, args string) (tool.Result, error) {
	t.Helper()
	tl, err := New(c, client)
	if err != nil {
		t.Fatal(err)
	}
	m, err := tool.New(tool.Config{})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Register(tl); err != nil {
		t.Fatal(err)
	}
	return m.Run(context.Background(), c.Name, tool.Input{Args: json.RawMessage(args)})
}

func TestRequests(t *testing.T) {
	rec := &recorder{}
	srv := httptest.NewServer(rec)
	defer srv.Close()
	t.Setenv("AIOS_TEST_TOKEN", "s3cret")
	cases := []struct {
		name   string
		cfg    Config
		args   string
		want   seen
		result string
	}{
		{
			"GET: placeholders in the path, the rest as query",
			Config{Method: "get", URL: srv.URL + "/repos/{owner}/{repo}/issues?state=open", Parameters: json.RawMessage(issueSchema)},
			`{"owner":"a b/c","repo":"r?x#y","labels":["bug","help wanted"],"number":12345678901234567890}`,
			seen{method: "GET", path: "/repos/a b/c/r?x#y/issues", rawPath: "/repos/a%20b%2Fc/r%3Fx%23y/issues", query: "labels=bug&labels=help+wanted&number=12345678901234567890&state=open"},
			`{"ok":true}`,
		},
		{
			"GET: a placeholder in the query",
			Config{Method: "GET", URL: srv.URL + "/search?q={title}&owner={owner}", Parameters: json.RawMessage(issueSchema)},
			`{"owner":"me&you","repo":"r","title":"a=b c"}`,
			seen{method: "GET", path: "/search", query: "owner=me%26you&q=a%3Db+c&repo=r"},
			`{"ok":true}`,
		},
		{
			"POST (the default): the rest as a JSON body, headers from the environment",
			Config{URL: srv.URL + "/repos/{owner}/{repo}/issues", Parameters: json.RawMessage(issueSchema), Headers: map[string]string{"Authorization": "Bearer ${AIOS_TEST_TOKEN}", "X-Custom": "plain"}},
			`{"owner":"o","repo":"r","title":"Crash","number":12345678901234567890}`,
			seen{method: "POST", path: "/repos/o/r/issues", body: `{"number":12345678901234567890,"title":"Crash"}`, contentType: "application/json", auth: "Bearer s3cret", custom: "plain"},
			`{"ok":true}`,
		},
		{
			"PUT with only placeholders: an empty object",
			Config{Method: "PUT", URL: srv.URL + "/repos/{owner}/{repo}/star", Parameters: json.RawMessage(issueSchema)},
			`{"owner":"o","repo":"r"}`,
			seen{method: "PUT", path: "/repos/o/r/star", body: `{}`, contentType: "application/json"},
			`{"ok":true}`,
		},
		{
			"DELETE: query",
			Config{Method: "DELETE", URL: srv.URL + "/repos/{owner}/{repo}", Parameters: json.RawMessage(issueSchema)},
			`{"owner":"o","repo":"r","title":"x"}`,
			seen{method: "DELETE", path: "/repos/o/r", query: "title=x"},
			`{"ok":true}`,
		},
		{
			"no parameters",
			Config{Method: "GET", URL: srv.URL + "/ping"},
			``,
			seen{method: "GET", path: "/ping"},
			`{"ok":true}`,
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			c.cfg.Name = "api"
			res, err := run(t, c.cfg, srv.Client(), c.args)
			if err != nil || res.IsError || res.Content != c.result {
				t.Fatalf("%+v, %v", res, err)
			}
			if string(res.Structured) != `{"ok":true}` {
				t.Errorf("structured %s", res.Structured)
			}
			if got := rec.got(); got != c.want {
				t.Errorf("request\n got %+v\nwant %+v", got, c.want)
			}
		})
	}
}

func TestDotSegmentsRefused(t *testing.T) {
	rec := &recorder{}
	srv := httptest.NewServer(rec)
	defer srv.Close()
	for _, v := range []string{"..", ".", ""} {
		res, err := run(t, Config{Name: "api", Method: "GET", URL: srv.URL + "/repos/{owner}/{repo}", Parameters: json.RawMessage(issueSchema)}, srv.Client(), `{"owner":"o","repo":"`+v+`"}`)
		if err != nil || !res.IsError || !strings.Contains(res.Content, `argument "repo" may not be`) {
			t.Errorf("repo %q: %+v, %v", v, res, err)
		}
	}
	// A placeholder the schema leaves optional, left out.
	res, err := run(t, Config{Name: "api", Method: "GET", URL: srv.URL + "/search?q={title}", Parameters: json.RawMessage(issueSchema)}, srv.Client(), `{"owner":"o","repo":"r"}`)
	if err != nil || !res.IsError || !strings.Contains(res.Content, `argument "title" is required: the URL needs it`) {
		t.Errorf("missing placeholder: %+v, %v", res, err)
	}
	if got := rec.got(); got.method != "" {
		t.Errorf("a request was sent: %+v", got)
	}
}

func TestResponses(t *testing.T) {
	rec := &recorder{}
	srv := httptest.NewServer(rec)
	defer srv.Close()
	answer := func(status int, header map[string]string, body string) func(http.ResponseWriter) {
		return func(w http.ResponseWriter) {
			for k, v := range header {
				w.Header().Set(k, v)
			}
			w.WriteHeader(status)
			fmt.Fprint(w, body)
		}
	}
	cases := []struct {
		name       string
		answer     func(http.ResponseWriter)
		isError    bool
		content    string
		kind       api.Kind
		msg        string
		retryAfter time.Duration
	}{
		{"text", answer(200, map[string]string{"Content-Type": "text/plain"}, "plain words"), false, "plain words", "", "", 0},
		{"created", answer(201, nil, "made"), false, "made", "", "", 0},
		{"not found", answer(404, nil, "no such\n repo"), true, "HTTP 404 Not Found: no such repo", "", "", 0},
		{"unprocessable", answer(422, nil, strings.Repeat("x", 3000)), true, "HTTP 422 Unprocessable Entity: " + strings.Repeat("x", 1024) + " …", "", "", 0},
		{"rate limited", answer(429, map[string]string{"Retry-After": "7"}, "slow down"), false, "", api.BackendRateLimited, "rate limiting (HTTP 429): slow down", 7 * time.Second},
		{"server error", answer(500, nil, "boom"), false, "", api.BackendUnavailable, "the endpoint failed (HTTP 500 Internal Server Error): boom", 0},
		{"unavailable with a wait", answer(503, map[string]string{"Retry-After": "2"}, ""), false, "", api.BackendUnavailable, "(empty body)", 2 * time.Second},
		{"binary", answer(200, map[string]string{"Content-Type": "application/octet-stream"}, "\xff\xfe\x00"), false, "[binary body (application/octet-stream), not shown]", "", "", 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rec.mu.Lock()
			rec.answer = c.answer
			rec.mu.Unlock()
			res, err := run(t, Config{Name: "api", Method: "GET", URL: srv.URL + "/x"}, srv.Client(), `{}`)
			if c.kind != "" {
				var e *api.Error
				if !errors.As(err, &e) || e.Kind != c.kind || !strings.Contains(e.Message, c.msg) || e.RetryAfter != c.retryAfter {
					t.Fatalf("error %v, want %s %q retry after %v", err, c.kind, c.msg, c.retryAfter)
				}
				return
			}
			if err != nil || res.IsError != c.isError || res.Content != c.content {
				t.Fatalf("%+v, %v; want %q (error %v)", res, err, c.content, c.isError)
			}
		})
	}
}

func TestTransportFailures(t *testing.T) {
	closed := httptest.NewServer(http.NotFoundHandler())
	closedURL := closed.URL
	closed.Close()
	_, err := run(t, Config{Name: "api", URL: closedURL + "/x"}, nil, `{}`)
	if api.KindOf(err) != api.BackendUnavailable {
		t.Errorf("refused connection: %v", err)
	}

	release := make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer slow.Close()
	defer close(release)
	_, err = run(t, Config{Name: "api", URL: slow.URL, Timeout: 100 * time.Millisecond}, slow.Client(), `{}`)
	if api.KindOf(err) != api.BackendTimeout {
		t.Errorf("client timeout: %v", err)
	}
}

func TestNewRefuses(t *testing.T) {
	t.Setenv("AIOS_TEST_SET", "x")
	schema := json.RawMessage(`{"type":"object","properties":{"id":{"type":"string"}}}`)
	cases := []struct {
		name string
		cfg  Config
		want string
	}{
		{"no name", Config{URL: "https://api.example.com"}, "a name is required"},
		{"method", Config{Name: "t", Method: "TRACE", URL: "https://api.example.com"}, `method "TRACE"`},
		{"scheme", Config{Name: "t", URL: "ftp://api.example.com"}, "scheme must be http or https"},
		{"no scheme", Config{Name: "t", URL: "api.example.com/x"}, "scheme must be http or https"},
		{"no host", Config{Name: "t", URL: "https:///x"}, "has no host"},
		{"host placeholder", Config{Name: "t", URL: "https://{id}.example.com/x", Parameters: schema}, "not the host"},
		{"port placeholder", Config{Name: "t", URL: "https://example.com:{id}/x", Parameters: schema}, "not the host"},
		{"fragment placeholder", Config{Name: "t", URL: "https://example.com/x#{id}", Parameters: schema}, "fragment"},
		{"undeclared placeholder", Config{Name: "t", URL: "https://example.com/{user}", Parameters: schema}, "{user} is not a property"},
		{"placeholder without parameters", Config{Name: "t", URL: "https://example.com/{id}"}, "{id} is not a property"},
		{"empty placeholder", Config{Name: "t", URL: "https://example.com/{}", Parameters: schema}, "empty placeholder"},
		{"parameters not an object", Config{Name: "t", URL: "https://example.com", Parameters: json.RawMessage(`[1]`)}, "parameters must be a JSON Schema object"},
		{"missing variable", Config{Name: "t", URL: "https://example.com", Headers: map[string]string{"Authorization": "Bearer ${AIOS_TEST_UNSET_VAR}"}}, "header Authorization: environment variable AIOS_TEST_UNSET_VAR is not set"},
		{"bad variable name", Config{Name: "t", URL: "https://example.com", Headers: map[string]string{"X": "${A-B}"}}, `"A-B" is not an environment variable's name`},
		{"negative timeout", Config{Name: "t", URL: "https://example.com", Timeout: -1}, "timeout"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := New(c.cfg, nil)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("New: %v, want %q", err, c.want)
			}
		})
	}
	tl, err := New(Config{Name: "t", URL: "https://example.com/{id}?v=1", Parameters: schema, Headers: map[string]string{"X": "${AIOS_TEST_SET}"}, Annotations: tool.Annotations{Title: "T"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if s := tl.Spec(); s.Source != Source || s.Annotations.Title != "T" || string(s.InputSchema) != string(schema) {
		t.Errorf("spec %+v", s)
	}
}
