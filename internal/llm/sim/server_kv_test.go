package sim

import (
	"io"
	"net/http"
	"strings"
	"testing"
)

func hintOK(t *testing.T, url, body string) sessionHintResponse {
	t.Helper()
	resp := post(t, url, body)
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("POST %s %s: status %d: %s", url, body, resp.StatusCode, b)
	}
	var h sessionHintResponse
	decodeJSON(t, resp.Body, &h)
	return h
}

// A client that sends kv_session with its requests can swap that session's context
// through the CPU tier and end it over HTTP, as an in-process caller does with Live.
func TestSessionHintsOverHTTP(t *testing.T) {
	cfg := fast
	cfg.KVOffloadGiB = 1
	s, ts := newTestServer(t, cfg)
	bs := s.Live().eng.bs
	sys := strings.Repeat("rules ", 3*bs)
	body := `{"max_tokens":4,"seed":7,"kv_session":"prog/1","messages":[{"role":"system","content":"` + sys +
		`"},{"role":"user","content":"` + strings.Repeat("task ", 4*bs) + `"}]}`
	var first chatCompletion
	decodeJSON(t, post(t, ts.URL+"/v1/chat/completions", body).Body, &first)
	prompt := first.Usage.PromptTokens
	shared := sharedPrefix([]Message{{Role: "system", Content: sys}}, nil)

	// The session names the context; it does not vary the output as vLLM's does not.
	var anon chatCompletion
	decodeJSON(t, post(t, ts.URL+"/v1/chat/completions", strings.Replace(body, `"kv_session":"prog/1",`, "", 1)).Body, &anon)
	if *anon.Choices[0].Message.Content != *first.Choices[0].Message.Content {
		t.Errorf("kv_session changed the output: %q, without it %q", *first.Choices[0].Message.Content, *anon.Choices[0].Message.Content)
	}

	base := ts.URL + "/v1/kv/sessions/prog%2F1/" // a slash in a session travels escaped
	stored := s.Live().Stats().OffloadStoredBlocks
	out := hintOK(t, base+"swap", `{"direction":"out"}`)
	if want := prompt / bs; !out.Known || out.Blocks != want || out.Session != "prog/1" || out.Direction != "out" || out.Object != "kv.session.swap" {
		t.Errorf("swap out: %+v, want %d blocks of a known session", out, want)
	}
	if got := s.Live().Stats().OffloadStoredBlocks; got != stored+int64(out.Blocks) {
		t.Errorf("the tier stored %d blocks in all, %d before the swap of %d", got, stored, out.Blocks)
	}
	if in := hintOK(t, base+"swap", `{"direction":"in"}`); !in.Known || in.Blocks != 0 {
		t.Errorf("swap in of a context still on the GPU: %+v, want nothing copied", in)
	}

	end := hintOK(t, base+"end", "")
	if want := prompt/bs - shared/bs; !end.Known || end.Blocks != want || end.Object != "kv.session.end" {
		t.Errorf("end: %+v, want %d blocks past the %d shared tokens", end, want, shared)
	}
	if got := s.Live().Stats().ForgottenBlocks; got != int64(end.Blocks) {
		t.Errorf("the engine forgot %d blocks, the response says %d", got, end.Blocks)
	}
	if got := scrape(t, ts.URL)["sim:kv_forgotten_blocks_total"]; got != float64(end.Blocks) {
		t.Errorf("sim:kv_forgotten_blocks_total %v, want %d", got, end.Blocks)
	}
	// Ended once: the engine no longer knows it, which is no error.
	if again := hintOK(t, base+"end", "{}"); again.Known || again.Blocks != 0 {
		t.Errorf("second end: %+v", again)
	}
	if h := hintOK(t, ts.URL+"/v1/kv/sessions/never/swap", `{"direction":"out"}`); h.Known || h.Blocks != 0 {
		t.Errorf("swap of a session never seen: %+v", h)
	}
}

func TestSessionHintErrors(t *testing.T) {
	cfg := fast
	cfg.KVOffloadGiB = 1
	_, ts := newTestServer(t, cfg)
	_, tierless := newTestServer(t, fast)
	kv := ts.URL + "/v1/kv/sessions/"
	chat := func(extra string) string {
		return `{` + extra + `,"max_tokens":1,"messages":[{"role":"user","content":"x"}]}`
	}
	cases := []struct {
		name, method, url, body string
		status                  int
		typ                     string
	}{
		{"get", "GET", kv + "a/end", "", 405, "MethodNotAllowedError"},
		{"delete", "DELETE", kv + "a/swap", "", 405, "MethodNotAllowedError"},
		{"unknown hint", "POST", kv + "a/pin", "", 404, "NotFoundError"},
		{"swap without body", "POST", kv + "a/swap", "", 400, "BadRequestError"},
		{"swap direction", "POST", kv + "a/swap", `{"direction":"sideways"}`, 400, "BadRequestError"},
		{"swap direction missing", "POST", kv + "a/swap", `{}`, 400, "BadRequestError"},
		{"swap unknown field", "POST", kv + "a/swap", `{"direction":"out","blocks":3}`, 400, "BadRequestError"},
		{"swap malformed", "POST", kv + "a/swap", `{"direction":`, 400, "BadRequestError"},
		{"swap trailing", "POST", kv + "a/swap", `{"direction":"in"} {}`, 400, "BadRequestError"},
		{"end with fields", "POST", kv + "a/end", `{"session":"b"}`, 400, "BadRequestError"},
		{"end not an object", "POST", kv + "a/end", `[]`, 400, "BadRequestError"},
		{"too large", "POST", kv + "a/end", strings.Repeat(" ", maxHintBody+1), 413, "BadRequestError"},
		{"long session", "POST", kv + strings.Repeat("s", maxSessionName+1) + "/end", "", 400, "BadRequestError"},
		{"control character", "POST", kv + "a%0Ab/end", "", 400, "BadRequestError"},
		{"not UTF-8", "POST", kv + "a%FFb/end", "", 400, "BadRequestError"},
		{"no tier", "POST", tierless.URL + "/v1/kv/sessions/a/swap", `{"direction":"out"}`, 409, "ConflictError"},
		{"long kv_session", "POST", ts.URL + "/v1/chat/completions", chat(`"kv_session":"` + strings.Repeat("s", maxSessionName+1) + `"`), 400, "BadRequestError"},
		{"kv_session not a string", "POST", ts.URL + "/v1/completions", `{"prompt":"x","kv_session":7}`, 400, "BadRequestError"},
		{"kv_session control", "POST", ts.URL + "/v1/completions", `{"prompt":"x","kv_session":"a\u0007"}`, 400, "BadRequestError"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			req, err := http.NewRequest(c.method, c.url, strings.NewReader(c.body))
			if err != nil {
				t.Fatal(err)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if resp.StatusCode != c.status {
				b, _ := io.ReadAll(resp.Body)
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, c.status, b)
			}
			if c.status == 405 && resp.Header.Get("Allow") != "POST" {
				t.Errorf("Allow %q", resp.Header.Get("Allow"))
			}
			var e errorBody
			decodeJSON(t, resp.Body, &e)
			if e.Error.Type != c.typ || e.Error.Code != c.status || e.Error.Message == "" {
				t.Errorf("error body %+v", e)
			}
		})
	}
}

// Hints wait for the engine, and fail once it is closed rather than hanging.
func TestSessionHintAfterClose(t *testing.T) {
	l := newTestLive(t, fast)
	l.Close()
	if _, err := l.EndSessionWait(t.Context(), "a"); err != ErrClosed {
		t.Fatalf("end after close: %v, want ErrClosed", err)
	}
}
