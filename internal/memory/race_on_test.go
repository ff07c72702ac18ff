//go:build race

package memory

// RaceEnabled lets the measurement tests shrink under the race detector, which slows
// the float loops they exercise about tenfold: the race run checks behaviour, the plain
// run gives the figures.
const RaceEnabled = true
