package sim

import (
	"testing"

	"go.uber.org/goleak"
)

// Live runs a goroutine per engine; every test must leave none behind.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
