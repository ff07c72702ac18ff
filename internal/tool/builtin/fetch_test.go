package builtin

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aios-go/aios/api"
	"github.com/aios-go/aios/internal/tool"
)

// hostOf is a test server's "127.0.0.1:port", the allowlist rule that admits it.
func hostOf(s *httptest.Server) string {
	u, _ := url.Parse(s.URL)
	return u.Host
}

func fetch(t *testing.T, m *tool.Manager, args string) tool.Result {
	t.Helper()
	res, err := m.Run(context.Background(), "http_fetch", tool.Input{Args: json.RawMessage(args)})
	if err != nil {
		t.Fatalf("%s: %v", args, err)
	}
	return res
}

func TestHTTPFetch(t *testing.T) {
	var hits atomic.Int32
	var other *httptest.Server
	mux := http.NewServeMux()
	mux.HandleFunc("/page", func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		if r.Method != http.MethodGet {
			t.Errorf("method %s", r.Method)
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprint(w, "hello, world")
	})
	mux.HandleFunc("/big", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		fmt.Fprint(w, strings.Repeat("é", 100)) // 200 bytes
	})
	mux.HandleFunc("/missing", func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "no such page", http.StatusNotFound)
	})
	mux.HandleFunc("/image", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "image/png")
		w.Write([]byte{0x89, 'P', 'N', 'G', 0, 0xff})
	})
	mux.HandleFunc("/hop/{n}", func(w http.ResponseWriter, r *http.Request) {
		var n int
		fmt.Sscan(r.PathValue("n"), &n)
		if n == 0 {
			fmt.Fprint(w, "arrived")
			return
		}
		http.Redirect(w, r, fmt.Sprintf("/hop/%d", n-1), http.StatusFound)
	})
	mux.HandleFunc("/away", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, other.URL+"/secret", http.StatusFound)
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()
	var otherHits atomic.Int32
	other = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		otherHits.Add(1)
		fmt.Fprint(w, "secret")
	}))
	defer other.Close()

	f, err := HTTPFetch([]string{hostOf(srv), "*.example.com"}, srv.Client())
	if err != nil || f == nil {
		t.Fatalf("HTTPFetch: %v, %v", f, err)
	}
	m := newManager(t, f)
	cases := []struct {
		name    string
		args    string
		isError bool
		want    []string
	}{
		{"page", `{"url":"` + srv.URL + `/page"}`, false, []string{"HTTP 200 OK\n", "Content-Type: text/plain; charset=utf-8\n\nhello, world"}},
		{"cut on a character", `{"url":"` + srv.URL + `/big","max_bytes":51}`, false, []string{"\n\n" + strings.Repeat("é", 25) + "\n[body cut at 50 bytes (max_bytes)]"}},
		{"not found", `{"url":"` + srv.URL + `/missing"}`, true, []string{"HTTP 404 Not Found", "no such page"}},
		{"binary", `{"url":"` + srv.URL + `/image"}`, false, []string{"[binary body (image/png), not shown]"}},
		{"five redirects", `{"url":"` + srv.URL + `/hop/5"}`, false, []string{"HTTP 200 OK", "Final URL: " + srv.URL + "/hop/0", "arrived"}},
		{"six redirects", `{"url":"` + srv.URL + `/hop/6"}`, true, []string{"stopped after 5 redirects"}},
		{"redirect off the list", `{"url":"` + srv.URL + `/away"}`, true, []string{"redirected to " + other.URL + "/secret, which is not fetched", "on another port"}},
		{"host off the list", `{"url":"` + other.URL + `/secret"}`, true, []string{`is not fetched: rule "` + hostOf(srv) + `" allows 127.0.0.1 on another port than`, `the allowlist would need "` + hostOf(other) + `"; no request was made`}},
		{"other host", `{"url":"http://example.org/"}`, true, []string{`host example.org is not on the allowlist ("` + hostOf(srv) + `", "*.example.com"); no request was made`}},
		{"wildcard but default port only", `{"url":"http://api.example.com:8080/"}`, true, []string{`rule "*.example.com" allows api.example.com on another port than 8080`}},
		{"apex is not a subdomain", `{"url":"https://example.com/"}`, true, []string{"host example.com is not on the allowlist"}},
		{"scheme", `{"url":"file:///etc/passwd"}`, true, []string{`only http and https URLs are fetched, not "file"`}},
		{"no host", `{"url":"http:///x"}`, true, []string{"no host"}},
		{"not a URL", `{"url":"http://[::1"}`, true, []string{"is not a URL"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			res := fetch(t, m, c.args)
			if res.IsError != c.isError {
				t.Errorf("IsError %v, want %v: %q", res.IsError, c.isError, res.Content)
			}
			for _, w := range c.want {
				if !strings.Contains(res.Content, w) {
					t.Errorf("content %q lacks %q", res.Content, w)
				}
			}
		})
	}
	if otherHits.Load() != 0 {
		t.Errorf("the server off the allowlist got %d requests", otherHits.Load())
	}
	if hits.Load() != 1 {
		t.Errorf("/page got %d requests", hits.Load())
	}
}

func TestHTTPFetchNetworkAndTimeout(t *testing.T) {
	block := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-block:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(block)
	closed := httptest.NewServer(http.NotFoundHandler())
	closedHost := hostOf(closed)
	closed.Close()

	f, err := HTTPFetch([]string{hostOf(srv), closedHost}, srv.Client())
	if err != nil {
		t.Fatal(err)
	}
	m, err := tool.New(tool.Config{PerTool: map[string]tool.Limits{"http_fetch": {Timeout: 200 * time.Millisecond}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Register(f); err != nil {
		t.Fatal(err)
	}
	// A site that is down is for the model to read, not a failure of the tool.
	res := fetch(t, m, `{"url":"http://`+closedHost+`/"}`)
	if !res.IsError || !strings.Contains(res.Content, "failed") || !strings.Contains(res.Content, "refused") {
		t.Errorf("closed port: %+v", res)
	}
	// A hanging site runs into the manager's timeout.
	_, err = m.Run(context.Background(), "http_fetch", tool.Input{Args: json.RawMessage(`{"url":"` + srv.URL + `/"}`)})
	if api.KindOf(err) != api.BackendTimeout {
		t.Errorf("hanging site: %v", err)
	}
}

func TestAllowlistRules(t *testing.T) {
	good := []string{"example.com", "Example.COM.", "*.example.com", "example.com:8443", "*.example.com:8443", "127.0.0.1:8080", "[::1]", "[::1]:8080", " spaced.org "}
	for _, r := range good {
		if err := CheckAllowlist([]string{r}); err != nil {
			t.Errorf("%q: %v", r, err)
		}
	}
	bad := map[string]string{
		"":                     "empty",
		"https://example.com":  "not a URL",
		"example.com/path":     "not a URL",
		"example.com:0":        "1 to 65535",
		"example.com:http":     "1 to 65535",
		"example.com:":         "1 to 65535",
		"::1":                  "brackets",
		"a.*.example.com":      `hold no other "*"`,
		"*":                    `hold no other "*"`,
		"*.":                   `hold no other "*"`,
		"exa mple.com":         `hold no other "*"`,
		"user@example.com":     `hold no other "*"`,
		"*.example.com:99999":  "1 to 65535",
		"[::1]:8080:9":         "",
		"example.com:8080:900": "brackets",
	}
	for r, want := range bad {
		err := CheckAllowlist([]string{"ok.org", r})
		if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), fmt.Sprintf("%q", r)) {
			t.Errorf("%q: %v, want an error naming it and %q", r, err, want)
		}
	}

	list, _ := parseAllowlist([]string{"example.com", "*.docs.org:8443", "[::1]:9000"})
	for raw, allowed := range map[string]bool{
		"http://example.com/":           true,
		"https://EXAMPLE.com./a":        true,
		"https://example.com:443/":      true,
		"http://example.com:443/":       false,
		"https://www.example.com/":      false,
		"https://a.b.docs.org:8443/":    true,
		"https://docs.org:8443/":        false,
		"https://evildocs.org:8443/":    false,
		"https://a.docs.org/":           false,
		"http://[::1]:9000/":            true,
		"http://example.com@evil.com/":  false,
		"http://evil.com#@example.com/": false,
		"ftp://example.com/":            false,
	} {
		u, err := url.Parse(raw)
		if err != nil {
			t.Fatal(err)
		}
		if why := list.check(u); (why == "") != allowed {
			t.Errorf("%s: allowed %v (%s), want %v", raw, why == "", why, allowed)
		}
	}
}

func TestHTTPFetchNotOffered(t *testing.T) {
	if f, err := HTTPFetch(nil, nil); f != nil || err != nil {
		t.Fatalf("empty allowlist: %v, %v", f, err)
	}
	if _, err := HTTPFetch([]string{"http://x"}, nil); err == nil {
		t.Fatal("a malformed rule was accepted")
	}
}
