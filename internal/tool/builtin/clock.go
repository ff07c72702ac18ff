package builtin

import (
	"context"
	"encoding/json"
	"fmt"
	"time"
	// The zone database inside the binary: the kernel often runs in containers that
	// have no /usr/share/zoneinfo, and a model asking for Europe/Paris should get it.
	_ "time/tzdata"

	"github.com/aios-go/aios/internal/tool"
)

const currentTimeSchema = `{
	"type": "object",
	"properties": {
		"timezone": {
			"type": "string",
			"description": "An IANA time zone such as Europe/Paris or America/New_York; UTC when left out."
		}
	},
	"additionalProperties": false
}`

// CurrentTime is the current_time tool. clock gives the time (time.Now outside tests).
func CurrentTime(clock func() time.Time) tool.Tool {
	if clock == nil {
		clock = time.Now
	}
	return newTool("current_time", "Get the current date and time, in UTC or an IANA time zone.", currentTimeSchema,
		tool.Annotations{Title: "Current time", ReadOnlyHint: hint(true), OpenWorldHint: hint(false)},
		func(_ context.Context, in tool.Input) (tool.Result, error) {
			var a struct {
				Timezone string `json:"timezone"`
			}
			if r := decode(in, &a); r != nil {
				return *r, nil
			}
			zone := a.Timezone
			if zone == "" {
				zone = "UTC"
			}
			loc, err := time.LoadLocation(zone)
			// "Local" would tell the host's zone, which is not the model's business.
			if err != nil || zone == "Local" {
				return failed(fmt.Sprintf("unknown time zone %q: use an IANA name such as Europe/Paris, America/New_York or UTC", a.Timezone)), nil
			}
			now := clock().In(loc)
			structured, _ := json.Marshal(struct {
				Time     string `json:"time"`
				Weekday  string `json:"weekday"`
				Unix     int64  `json:"unix"`
				Timezone string `json:"timezone"`
			}{now.Format(time.RFC3339), now.Weekday().String(), now.Unix(), zone})
			return tool.Result{
				Content:    fmt.Sprintf("%s (%s, %s); unix time %d", now.Format(time.RFC3339), now.Weekday(), zone, now.Unix()),
				Structured: structured,
			}, nil
		})
}
