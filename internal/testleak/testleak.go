// Package testleak names the goroutines that libraries start once for the life of the
// process, so goleak checks in tests flag only goroutines our code leaves behind.
package testleak

import "go.uber.org/goleak"

// Ignore returns goleak options for every package-level goroutine a dependency starts:
//   - go.opencensus.io's stats worker, started in its init; genai imports it through
//     cloud.google.com/go/auth, so every binary with the Gemini backend runs it.
func Ignore() []goleak.Option {
	return []goleak.Option{
		goleak.IgnoreTopFunction("go.opencensus.io/stats/view.(*worker).start"),
	}
}
