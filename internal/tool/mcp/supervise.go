package mcp

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// supervise watches the live connection and replaces it when it is lost, until Close.
// It alone calls the registrar after Start, so registrations arrive in order.
func (s *Server) supervise(c *conn) {
	defer close(s.done)
	backoff := s.cfg.RestartBackoff
	for {
		since := time.Now()
		err := s.watch(c)
		if err == nil { // closing
			s.setConn(nil)
			c.close()
			return
		}
		s.down(c, err)
		// A server that dies soon after each start keeps its backoff growing, so a crash
		// loop settles at MaxBackoff instead of restarting it twice a second forever.
		if time.Since(since) > s.cfg.MaxBackoff {
			backoff = s.cfg.RestartBackoff
		}
		if c, backoff = s.restart(backoff); c == nil {
			return
		}
	}
}

// watch returns why c was lost, or nil when the server is closing.
func (s *Server) watch(c *conn) error {
	ended := make(chan error, 1)
	go func() { ended <- c.sess.Wait() }()
	for {
		select {
		case <-s.ctx.Done():
			return nil
		case err := <-ended:
			return s.lost(c, err)
		case <-s.relist:
			s.refresh(c)
		case <-c.check:
			if err := s.probe(c); err != nil {
				return s.lost(c, err)
			}
		}
	}
}

// lost says why a connection ended in words an operator can act on: for a subprocess,
// how it exited and the last lines it wrote to stderr.
func (s *Server) lost(c *conn, err error) error {
	if c.proc != nil {
		// The session can end before the process has been reaped (stdout closed first);
		// waiting briefly lets the error carry the exit status.
		c.proc.waitExit(pipeWaitDelay)
		if err != nil {
			return fmt.Errorf("session ended: %v; %s", err, c.proc.describe())
		}
		return fmt.Errorf("session ended: %s", c.proc.describe())
	}
	if err == nil {
		err = errors.New("the server closed the session")
	}
	return fmt.Errorf("connection to %s lost: %w", s.cfg.URL, err)
}

// probe decides whether a failed call means a dead server. Over HTTP a request that
// could not be sent does not end the SDK's session, so without this a server that went
// away would stay "connected" until the next call found out again.
func (s *Server) probe(c *conn) error {
	ctx, cancel := context.WithTimeout(s.ctx, min(probeTimeout, s.cfg.StartTimeout))
	defer cancel()
	err := c.sess.Ping(ctx, nil)
	if err == nil || s.ctx.Err() != nil {
		return nil
	}
	return fmt.Errorf("ping: %w", err)
}

// down takes the connection out of service: calls fail fast from here on.
func (s *Server) down(c *conn, err error) {
	s.mu.Lock()
	s.conn, s.lastErr = nil, err
	s.mu.Unlock()
	s.log.Warn("MCP server lost; restarting", "err", err, "pid", c.pid())
	s.reg.SetSourceDown(s.source, err)
	c.close()
}

// restart reconnects with exponential backoff and jitter, first waiting about backoff,
// until it succeeds or the server is closed (nil). It returns the wait for next time.
func (s *Server) restart(backoff time.Duration) (*conn, time.Duration) {
	s.mu.Lock()
	gate := s.restartGate
	s.mu.Unlock()
	if gate != nil {
		select {
		case <-gate:
		case <-s.ctx.Done():
			return nil, backoff
		}
	}
	for attempt := 1; ; attempt++ {
		t := time.NewTimer(jitter(backoff))
		select {
		case <-s.ctx.Done():
			t.Stop()
			return nil, backoff
		case <-t.C:
		}
		backoff = min(2*backoff, s.cfg.MaxBackoff)
		c, tools, err := s.connect(s.ctx)
		if err == nil {
			if err = s.reg.SetSource(s.source, tools); err == nil {
				s.up(c, len(tools))
				return c, backoff
			}
			c.close()
			err = fmt.Errorf("registering its tools: %w", err)
		}
		if s.ctx.Err() != nil {
			return nil, backoff
		}
		s.mu.Lock()
		s.lastErr = err
		s.mu.Unlock()
		s.log.Warn("MCP server restart failed", "attempt", attempt, "err", err, "next_in", backoff)
		s.reg.SetSourceDown(s.source, err)
	}
}

// up puts c in service before telling the registrar, so a call the registrar lets
// through finds the session there.
func (s *Server) up(c *conn, tools int) {
	s.mu.Lock()
	s.conn, s.tools = c, tools
	s.restarts++
	n := s.restarts
	s.mu.Unlock()
	s.reg.SetSourceDown(s.source, nil)
	s.log.Info("MCP server restarted", "restarts", n, "tools", tools, "pid", c.pid(), "protocol", c.protocol())
}

// refresh re-registers the tools after tools/list_changed. A failed listing keeps the
// tools registered before; if the connection itself failed, watch finds out.
func (s *Server) refresh(c *conn) {
	ctx, cancel := context.WithTimeout(s.ctx, s.cfg.StartTimeout)
	defer cancel()
	tools, err := s.list(ctx, c)
	if err != nil {
		if s.ctx.Err() == nil {
			s.log.Warn("MCP server tools/list after list_changed failed", "err", err)
			c.suspect()
		}
		return
	}
	if err := s.reg.SetSource(s.source, tools); err != nil {
		s.log.Warn("MCP server changed its tools; registering them failed, the previous ones stay", "err", err)
		return
	}
	s.mu.Lock()
	s.tools = len(tools)
	s.mu.Unlock()
	s.log.Info("MCP server tools changed", "tools", len(tools))
}

func (s *Server) setConn(c *conn) {
	s.mu.Lock()
	s.conn = c
	s.mu.Unlock()
}
