package server

// routesResponses serves OpenAI's Responses API (/v1/responses).
func (s *Server) routesResponses() {}
