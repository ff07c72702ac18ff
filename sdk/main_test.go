package sdk

import (
	"testing"

	"go.uber.org/goleak"
)

// Streams hold connections and timers; a leaked goroutine here means a Stream or
// response body that was not released.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
