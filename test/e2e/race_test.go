//go:build race

package e2e

// raceEnabled: the tests run under the race detector, so the kernel they start is built
// with it too, and its own data races fail the run.
const raceEnabled = true
