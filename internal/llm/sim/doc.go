// Package sim is an inference-engine simulator faithful to vLLM's V1 scheduler: continuous
// batching with chunked prefill, a paged KV cache with automatic prefix caching, preemption
// by recompute, optional priority scheduling, and a naive mode that reserves memory per
// request and fails with out-of-memory like an unmanaged HF-transformers server.
//
// The package has three layers, each usable on its own:
//
//   - Engine is a pure state machine driven in virtual time: Submit, Step, Cancel. It has
//     no goroutines and never reads the clock, so simulations are deterministic and run
//     far faster than real time (see BenchmarkVirtualThroughput).
//   - Live runs an Engine in one goroutine against the wall clock scaled by a speed factor
//     and offers Generate, the in-process API the kernel's sim backend wraps.
//   - Server puts vLLM's HTTP API (OpenAI-compatible endpoints plus vLLM-named Prometheus
//     metrics) on top of a Live.
//
// docs/simulator.md describes the model, its parameters and sources, and its known gaps.
package sim
