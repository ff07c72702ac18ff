package fakeanthropic

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

func post(t *testing.T, s *Server, body string) (int, string) {
	t.Helper()
	res, err := http.Post(s.URL()+"/v1/messages", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

// The fake refuses what API version 2026-10-21 refuses, with Anthropic's error shape.
func TestRefusesWhatTheAPIRefuses(t *testing.T) {
	s := New(Options{})
	defer s.Close()
	cases := []struct{ body, msg string }{
		{`{"model":"m","max_tokens":5,"messages":[{"role":"user","content":"x"}],"temperature":1.0}`, "temperature: Extra inputs are not permitted"},
		{`{"model":"m","messages":[{"role":"user","content":"x"}]}`, "max_tokens: Field required"},
		{`{"model":"m","max_tokens":5,"messages":[{"role":"system","content":"x"}]}`, "Input should be 'user' or 'assistant'"},
		{`{"model":"m","max_tokens":5,"messages":[{"role":"user","content":[{"type":"text","text":""}]},{"role":"assistant","content":"a"},{"role":"user","content":"b"}]}`, "text content blocks must be non-empty"},
		{`{"model":"m","max_tokens":5,"messages":[{"role":"user","content":"x"},{"role":"assistant","content":"partial "}]}`, "final assistant content cannot end with trailing whitespace"},
		{`{"model":"m","max_tokens":5,"messages":[{"role":"user","content":"x"},{"role":"assistant","content":[{"type":"tool_use","id":"t1","name":"f","input":{}}]},{"role":"user","content":"y"}]}`, "`tool_use` ids were found without `tool_result` blocks immediately after: t1"},
		{`{"model":"m","max_tokens":5,"messages":[{"role":"user","content":"x"},{"role":"assistant","content":"a"},{"role":"user","content":[{"type":"tool_result","tool_use_id":"t9","content":"r"}]}]}`, "unexpected `tool_use_id`"},
		{`{"model":"m","max_tokens":5,"messages":[{"role":"user","content":"x"}],"tools":[{"name":"f","input_schema":{"type":"string"}}]}`, "input_schema"},
	}
	for _, tc := range cases {
		status, body := post(t, s, tc.body)
		var e struct {
			Type  string `json:"type"`
			Error struct {
				Type    string `json:"type"`
				Message string `json:"message"`
			} `json:"error"`
		}
		if status != 400 || json.Unmarshal([]byte(body), &e) != nil || e.Type != "error" || e.Error.Type != "invalid_request_error" || !strings.Contains(e.Error.Message, tc.msg) {
			t.Errorf("%s\n -> %d %s; want 400 %q", tc.body, status, body, tc.msg)
		}
	}
}

// A stream is the documented event sequence, each event named on its own line.
func TestStreamShape(t *testing.T) {
	s := New(Options{DefaultTokens: 2})
	defer s.Close()
	res, err := http.Post(s.URL()+"/v1/messages", "application/json",
		strings.NewReader(`{"model":"m","max_tokens":5,"stream":true,"messages":[{"role":"user","content":"x"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var names []string
	sc := bufio.NewScanner(res.Body)
	for sc.Scan() {
		if name, ok := strings.CutPrefix(sc.Text(), "event: "); ok {
			names = append(names, name)
		}
	}
	want := "message_start content_block_start ping content_block_delta content_block_delta content_block_stop message_delta message_stop"
	if got := strings.Join(names, " "); got != want {
		t.Fatalf("events %q, want %q", got, want)
	}
	if ct := res.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/event-stream") || res.Header.Get("request-id") == "" {
		t.Fatalf("headers %v", res.Header)
	}
}

func TestNonStreamingMessage(t *testing.T) {
	s := New(Options{DefaultTokens: 3})
	defer s.Close()
	status, body := post(t, s, `{"model":"m","max_tokens":5,"messages":[{"role":"user","content":"x"}]}`)
	var m struct {
		Type    string `json:"type"`
		Content []struct {
			Type string `json:"type"`
			Text string `json:"text"`
		} `json:"content"`
		StopReason string `json:"stop_reason"`
		Usage      struct {
			OutputTokens int `json:"output_tokens"`
		} `json:"usage"`
	}
	if status != 200 || json.Unmarshal([]byte(body), &m) != nil || m.Type != "message" || len(strings.Fields(m.Content[0].Text)) != 3 || m.StopReason != "end_turn" || m.Usage.OutputTokens != 3 {
		t.Fatalf("%d %s", status, body)
	}
}
