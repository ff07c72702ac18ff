package sim

import "errors"

// Errors a request can end with, besides the caller's context error. They are wrapped
// with details; test with errors.Is.
var (
	// ErrOutOfMemory: the request's KV cache does not fit. In naive mode that is whenever
	// prompt + max_tokens exceeds the memory not yet reserved; in vllm mode only when the
	// request alone needs more than the whole cache. The HTTP server answers 503.
	ErrOutOfMemory = errors.New("sim: out of KV cache memory")
	// ErrInvalidRequest: the request can never run as given (empty prompt, longer than
	// max_model_len, bad parameters). The HTTP server answers 400.
	ErrInvalidRequest = errors.New("sim: invalid request")
	// ErrClosed: the Live engine was closed before the request finished.
	ErrClosed = errors.New("sim: engine closed")
)
