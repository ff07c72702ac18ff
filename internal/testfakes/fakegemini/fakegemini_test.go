package fakegemini

import (
	"bufio"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func post(t *testing.T, s *Server, path, body string) (int, string) {
	t.Helper()
	res, err := http.Post(s.URL()+path, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

func TestRefusesWhatTheAPIRefuses(t *testing.T) {
	s := New(Options{RequireThoughtSignatures: true})
	defer s.Close()
	const gen = "/v1beta/models/m:generateContent"
	cases := []struct{ body, msg string }{
		{`{"contents":[]}`, "contents is not specified"},
		{`{"contents":[{"role":"assistant","parts":[{"text":"x"}]}]}`, "valid role"},
		{`{"contents":[{"role":"user","parts":[]}]}`, "must not be empty"},
		{`{"contents":[{"role":"user","parts":[{}]}]}`, "oneof field 'data'"},
		{`{"contents":[{"role":"user","parts":[{"text":"x"}]},{"role":"model","parts":[{"functionCall":{"name":"f","args":{}}}]},{"role":"user","parts":[{"functionResponse":{"name":"f","response":{}}}]}]}`, "missing a thought_signature"},
		{`{"contents":[{"role":"user","parts":[{"text":"x"}]},{"role":"model","parts":[{"functionCall":{"name":"f","args":{}},"thoughtSignature":"Zm9v"}]},{"role":"user","parts":[{"functionResponse":{"name":"f","response":{}}}]}]}`, "Corrupted thought signature"},
		{`{"contents":[{"role":"user","parts":[{"text":"x"}]},{"role":"model","parts":[{"functionCall":{"name":"f","args":{}},"thoughtSignature":"c2tpcF90aG91Z2h0X3NpZ25hdHVyZV92YWxpZGF0b3I="},{"functionCall":{"name":"f","args":{}},"thoughtSignature":"c2tpcF90aG91Z2h0X3NpZ25hdHVyZV92YWxpZGF0b3I="}]},{"role":"user","parts":[{"functionResponse":{"name":"f","response":{}}}]}]}`, "number of function response parts"},
	}
	for _, tc := range cases {
		status, body := post(t, s, gen, tc.body)
		var e struct {
			Error struct {
				Code   int    `json:"code"`
				Status string `json:"status"`
				Msg    string `json:"message"`
			} `json:"error"`
		}
		if status != 400 || json.Unmarshal([]byte(body), &e) != nil || e.Error.Code != 400 || e.Error.Status != "INVALID_ARGUMENT" || !strings.Contains(e.Error.Msg, tc.msg) {
			t.Errorf("%s\n -> %d %s; want 400 %q", tc.body, status, body, tc.msg)
		}
	}
}

func TestStreamIsSSEWithFinishAndUsage(t *testing.T) {
	s := New(Options{DefaultTokens: 3})
	defer s.Close()
	res, err := http.Post(s.URL()+"/v1beta/models/m:streamGenerateContent?alt=sse", "application/json",
		strings.NewReader(`{"contents":[{"role":"user","parts":[{"text":"hi"}]}]}`))
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var chunks []map[string]any
	sc := bufio.NewScanner(res.Body)
	for sc.Scan() {
		line := strings.TrimSuffix(sc.Text(), "\r")
		if data, ok := strings.CutPrefix(line, "data: "); ok {
			var m map[string]any
			if err := json.Unmarshal([]byte(data), &m); err != nil {
				t.Fatal(err)
			}
			chunks = append(chunks, m)
		}
	}
	if len(chunks) != 3 {
		t.Fatalf("%d chunks", len(chunks))
	}
	last := chunks[2]["candidates"].([]any)[0].(map[string]any)
	usage := chunks[2]["usageMetadata"].(map[string]any)
	if last["finishReason"] != "STOP" || usage["candidatesTokenCount"] != 3.0 {
		t.Fatalf("last chunk %v", chunks[2])
	}
}

func TestWrongKey(t *testing.T) {
	s := New(Options{APIKey: "k"})
	defer s.Close()
	status, body := post(t, s, "/v1beta/models/m:generateContent?key=bad", `{"contents":[{"role":"user","parts":[{"text":"x"}]}]}`)
	if status != 400 || !strings.Contains(body, "API_KEY_INVALID") {
		t.Fatalf("%d %s", status, body)
	}
	if status, _ := post(t, s, "/v1beta/models/m:generateContent?key=k", `{"contents":[{"role":"user","parts":[{"text":"x"}]}]}`); status != 200 {
		t.Fatalf("right key: %d", status)
	}
}
