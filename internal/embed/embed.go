// Package embed turns text into vectors for the kernel's retrieval (storage and memory).
// The default needs no model; a configured OpenAI-compatible /v1/embeddings endpoint
// (vLLM, Ollama, OpenAI, or the simulated engine) can replace it.
package embed

import "context"

// Embedder maps texts to vectors of one fixed dimension. Vectors are L2-normalised, so
// a dot product is their cosine similarity.
type Embedder interface {
	// Name identifies the embedding space (model and dimension): vectors from two
	// embedders with different names are not comparable, and stores re-embed when the
	// name they recorded changes.
	Name() string
	Embed(ctx context.Context, texts []string) ([][]float32, error)
}
