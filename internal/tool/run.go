package tool

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"runtime/debug"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/aios-go/aios/api"
)

// Run runs one call. The caller holds a slot of the tool (TryAcquire). In order: the
// arguments are validated, a down source or an open breaker fails the call at once, the
// tool runs under the tool's Timeout, its output is capped and its outcome recorded.
// Tools must honour ctx: Run waits for Call to return. Every call is entered in the
// calling agent's log (Calls).
func (m *Manager) Run(ctx context.Context, name string, in Input) (Result, error) {
	start := time.Now()
	res, err := m.run(ctx, name, in)
	m.calls.add(in, Canonical(name), start, time.Since(start), res, err)
	return res, err
}

func (m *Manager) run(ctx context.Context, name string, in Input) (Result, error) {
	name = Canonical(name)
	m.mu.Lock()
	e, ok := m.tools[name]
	if !ok {
		err := m.notFoundLocked(name)
		m.mu.Unlock()
		return Result{}, err
	}
	e.stats.calls++
	m.mu.Unlock()

	if len(bytes.TrimSpace(in.Args)) == 0 {
		in.Args = json.RawMessage("{}")
	}
	if err := e.schema.validate(name, in.Args); err != nil {
		m.mu.Lock()
		e.stats.rejected++
		m.mu.Unlock()
		return Result{}, err
	}

	m.mu.Lock()
	probe, err := m.admitLocked(e, time.Now())
	if err != nil {
		e.stats.errors++
		m.mu.Unlock()
		return Result{}, err
	}
	m.mu.Unlock()

	callCtx, cancel := context.WithTimeout(ctx, e.limits.Timeout)
	defer cancel()
	start := time.Now()
	res, err := m.call(callCtx, e, in)
	took := time.Since(start)
	err, o := m.classify(ctx, callCtx, e, err)
	if err == nil {
		res = capOutput(res, e.limits.MaxOutput)
	} else {
		res = Result{}
	}

	m.mu.Lock()
	c := e.stats
	c.ran++
	c.busy += took
	if err != nil {
		c.errors++
		if api.KindOf(err) == api.BackendTimeout {
			c.timeouts++
		}
	}
	before := e.br.state
	e.br.record(time.Now(), probe, o)
	after, cooldown := e.br.state, e.br.cooldown
	m.mu.Unlock()

	if before != after {
		switch after {
		case BreakerOpen:
			m.log.Warn("tool breaker open: calls fail fast until a probe succeeds", "tool", name, "cooldown", cooldown, "err", err)
		case BreakerClosed:
			m.log.Info("tool breaker closed: the probe succeeded", "tool", name)
		}
	}
	return res, err
}

// admitLocked fails a call at once when the tool's source is down or its breaker
// open; otherwise it lets the call through, as the probe if the breaker is half open.
func (m *Manager) admitLocked(e *entry, now time.Time) (probe bool, err error) {
	if cause, down := m.down[e.spec.Source]; down {
		server := strings.TrimPrefix(e.spec.Source, "mcp:")
		return false, api.Wrap(api.BackendUnavailable, cause, "tool %s is unavailable: its server %s is down", e.spec.Name, server)
	}
	ok, probe, wait := e.br.allow(now)
	switch {
	case ok:
		return probe, nil
	case wait > 0:
		return false, &api.Error{
			Kind:       api.BackendUnavailable,
			Message:    fmt.Sprintf("tool %s is paused after repeated failures; try again in %s", e.spec.Name, wait.Round(time.Millisecond)),
			RetryAfter: wait,
		}
	}
	return false, api.Errorf(api.BackendUnavailable, "tool %s is paused after repeated failures while one trial call runs; try again shortly", e.spec.Name)
}

// call runs the tool, turning a panic into an error: one broken tool must not take the
// kernel down with it.
func (m *Manager) call(ctx context.Context, e *entry, in Input) (res Result, err error) {
	defer func() {
		if r := recover(); r != nil {
			m.log.Error("tool panicked", "tool", e.spec.Name, "panic", r, "stack", string(debug.Stack()))
			err = api.Errorf(api.KernelInternal, "tool %s crashed: %v", e.spec.Name, r)
		}
	}()
	return e.tool.Call(ctx, in)
}

// classify types a tool's error and says how it bears on the breaker. ctx is the
// caller's context, callCtx the one the tool ran under.
func (m *Manager) classify(ctx, callCtx context.Context, e *entry, err error) (error, outcome) {
	if err == nil {
		return nil, succeeded
	}
	name := e.spec.Name
	switch {
	case errors.Is(ctx.Err(), context.Canceled):
		return api.Wrap(api.CallerCancelled, err, "call of tool %s cancelled by the caller", name), neutral
	case ctx.Err() != nil:
		// The caller's deadline came before the tool's own: not the tool's fault.
		return api.Wrap(api.BackendTimeout, err, "tool %s did not finish before the caller's deadline", name), neutral
	case errors.Is(callCtx.Err(), context.DeadlineExceeded):
		return api.Wrap(api.BackendTimeout, err, "tool %s did not finish within %s", name, e.limits.Timeout), failed
	}
	var ae *api.Error
	if !errors.As(err, &ae) {
		return api.Wrap(api.BackendBadResponse, err, "tool %s failed", name), failed
	}
	o := failed
	if strings.HasPrefix(string(ae.Kind), "caller_") {
		// The tool refused the call as the caller's fault: the tool itself is fine.
		o = neutral
	}
	if ae != err {
		// Keep the kind and the wait of an *api.Error wrapped deeper.
		return &api.Error{Kind: ae.Kind, Message: fmt.Sprintf("tool %s failed", name), RetryAfter: ae.RetryAfter, Err: err}, o
	}
	return err, o
}

// capOutput keeps at most max bytes of Content, cut where a UTF-8 character starts, and
// says so at the end so the model knows it saw part. Structured output cannot be cut
// and stay JSON: over the cap it is dropped.
func capOutput(r Result, max int) Result {
	if len(r.Content) > max {
		cut := max
		for back := 0; cut > 0 && back < utf8.UTFMax-1 && !utf8.RuneStart(r.Content[cut]); back++ {
			cut--
		}
		r.Content = r.Content[:cut] + fmt.Sprintf("\n[output truncated: %d of %d bytes shown]", cut, len(r.Content))
		r.Truncated = true
	}
	if len(r.Structured) > max {
		r.Structured = nil
		r.Truncated = true
	}
	return r
}
