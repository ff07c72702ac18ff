package builtin

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/aios-go/aios/internal/tool"
)

func TestCurrentTime(t *testing.T) {
	at := time.Date(2025, 3, 9, 23, 30, 0, 0, time.UTC) // a Sunday in UTC, Monday in Tokyo
	m := newManager(t, CurrentTime(func() time.Time { return at }))
	cases := []struct {
		args    string
		content string
		isError bool
	}{
		{`{}`, "2025-03-09T23:30:00Z (Sunday, UTC); unix time 1741563000", false},
		{``, "2025-03-09T23:30:00Z (Sunday, UTC); unix time 1741563000", false},
		{`{"timezone":"Asia/Tokyo"}`, "2025-03-10T08:30:00+09:00 (Monday, Asia/Tokyo); unix time 1741563000", false},
		{`{"timezone":"America/New_York"}`, "2025-03-09T19:30:00-04:00 (Sunday, America/New_York)", false},
		{`{"timezone":"Mars/Olympus"}`, `unknown time zone "Mars/Olympus"`, true},
		{`{"timezone":"Local"}`, `unknown time zone "Local"`, true},
		{`{"timezone":"../../etc/passwd"}`, `unknown time zone`, true},
	}
	for _, c := range cases {
		res, err := m.Run(context.Background(), "current_time", tool.Input{Args: json.RawMessage(c.args)})
		if err != nil {
			t.Fatalf("%s: %v", c.args, err)
		}
		if res.IsError != c.isError || !strings.Contains(res.Content, c.content) {
			t.Errorf("%s: %+v, want %q (error %v)", c.args, res, c.content, c.isError)
		}
	}
	res, _ := m.Run(context.Background(), "current_time", tool.Input{Args: json.RawMessage(`{"timezone":"Asia/Tokyo"}`)})
	var s struct {
		Time, Weekday, Timezone string
		Unix                    int64
	}
	if err := json.Unmarshal(res.Structured, &s); err != nil || s.Weekday != "Monday" || s.Unix != at.Unix() || s.Time != "2025-03-10T08:30:00+09:00" {
		t.Errorf("structured %s (%v)", res.Structured, err)
	}
}
