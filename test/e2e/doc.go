// Package e2e holds end-to-end tests: the real aios binary, started on its embedded
// simulated core, driven over HTTP by real clients (the official openai npm SDK, and
// this module's Go SDK). The package has no code of its own besides its tests.
package e2e
