package server

// routesAnthropic serves Anthropic's Messages API (/v1/messages).
func (s *Server) routesAnthropic() {}
