//go:build !race

package memory

// RaceEnabled: see race_on_test.go.
const RaceEnabled = false
