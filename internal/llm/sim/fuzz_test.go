package sim

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path"
	"strings"
	"testing"
)

// The request decoders take untrusted bytes: whatever arrives, they either produce a
// generation the engine accepts for tokenizing or refuse with a 4xx, and never panic.
func FuzzDecodeRequest(f *testing.F) {
	for _, seed := range []string{
		`{"model":"sim-test","messages":[{"role":"user","content":"hi"}],"max_tokens":5,"stream":true,"stream_options":{"include_usage":true}}`,
		`{"messages":[{"role":"system","content":[{"type":"text","text":"a"},{"type":"text","text":"b"}]},{"role":"assistant","content":null,"tool_calls":[{"id":"1","type":"function","function":{"name":"f","arguments":"{}"}}]},{"role":"tool","content":"r"}]}`,
		`{"messages":[{"role":"user","content":"x"},{"role":"assistant","content":"y"}],"continue_final_message":true,"add_generation_prompt":false}`,
		`{"messages":[{"role":"user","content":"x"}],"tools":[{"type":"function","function":{"name":"f","parameters":{"type":"object","properties":{"a":{"type":["string","null"]}}}}}],"tool_choice":"required"}`,
		`{"messages":[{"role":"user","content":"x"}],"tool_choice":{"type":"function","function":{"name":"f"}},"kv_ttl_ms":1e300,"priority":-1,"seed":-5}`,
		`{"prompt":"Once","max_tokens":3,"ignore_eos":true}`,
		`{"prompt":["a"],"n":1}`,
		`{"prompt":[[1,2]]}`,
		`[]`, `null`, `{"messages":[{}]}`, "\x00", `{"max_tokens":-1}`,
	} {
		f.Add([]byte(seed))
	}
	l, err := NewLive(Config{Profile: "test", Speed: 1000})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { l.Close() })
	s := NewServerFor(l)

	f.Fuzz(func(t *testing.T, body []byte) {
		check := func(g GenRequest, err error) {
			if err != nil {
				rec := httptest.NewRecorder()
				writeError(rec, err)
				if rec.Code < 400 || rec.Code >= 500 {
					t.Fatalf("decoder error %v maps to %d", err, rec.Code)
				}
				return
			}
			if _, err := l.prepare(&g); err != nil {
				t.Fatalf("decoded request fails to prepare: %v", err)
			}
		}
		g, _, err := s.parseChat(bytes.NewReader(body))
		check(g, err)
		g, _, err = s.parseCompletion(bytes.NewReader(body))
		check(g, err)
		if n := CountTokens(string(body)); n != len(AppendTokens(nil, string(body))) {
			t.Fatalf("CountTokens %d disagrees with AppendTokens", n)
		}
	})
}

// The session hint endpoints take an untrusted session name and body: whatever arrives,
// they answer 200 or a 4xx, and never panic.
func FuzzSessionHint(f *testing.F) {
	for _, seed := range []struct{ session, action, body string }{
		{"p", "end", ""}, {"p", "end", "{}"}, {"p", "swap", `{"direction":"out"}`},
		{"p%2Fq", "swap", `{"direction":"in"}`}, {"x", "swap", `{"direction":"sideways"}`},
		{"x", "end", `{"extra":1}`}, {"x", "swap", `[]`}, {"%00", "end", ""}, {"x", "nap", ""},
	} {
		f.Add(seed.session, seed.action, []byte(seed.body))
	}
	l, err := NewLive(Config{Profile: "test", Speed: 1000, KVOffloadGiB: 1})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { l.Close() })
	h := NewServerFor(l).Handler()
	f.Fuzz(func(t *testing.T, session, action string, body []byte) {
		req := httptest.NewRequest("POST", "/v1/kv/sessions/x/end", bytes.NewReader(body))
		req.URL.RawPath = "/v1/kv/sessions/" + url.PathEscape(session) + "/" + url.PathEscape(action)
		req.URL.Path = "/v1/kv/sessions/" + session + "/" + action
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code == http.StatusTemporaryRedirect || rec.Code == http.StatusMovedPermanently {
			// The mux sends non-canonical paths ("." or ".." segments) to their clean form
			// before any handler runs; nothing else may redirect.
			if path.Clean(req.URL.Path) != req.URL.Path || strings.Contains(session+action, "/") {
				return
			}
		}
		if rec.Code != 200 && (rec.Code < 400 || rec.Code >= 500) {
			t.Fatalf("session %q action %q body %q: status %d", session, action, body, rec.Code)
		}
	})
}
