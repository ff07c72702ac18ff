// Package api holds the wire types shared by the kernel's HTTP server and the Go SDK: AIOS's
// /query shapes, the OpenAI-compatible subset, and the error taxonomy. It imports nothing
// of this module, so a field's JSON name is written exactly once.
package api
