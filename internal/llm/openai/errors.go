package openai

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/aios-go/aios/api"
	"github.com/aios-go/aios/internal/llm/upstream"
	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/packages/ssestream"
)

// classify turns any failure of an upstream call into an *api.Error. ctx is the
// caller's context and rctx the request's (which also ends on the idle watchdog and on
// Close); upstream.ContextError decides whose fault an ended context is. f, when not
// nil, holds the error response as it came off the wire: the SDK parses error bodies
// only in OpenAI's shape and returns a bare decoding error for others (Ollama's
// {"error":"..."}, a proxy's HTML), losing the status.
func (c *Core) classify(ctx, rctx context.Context, f *upstream.Failure, err error) *api.Error {
	if e := upstream.ContextError(ctx, rctx, c.target()); e != nil {
		return e
	}
	if status, h, body := f.Response(); status != 0 {
		return c.statusError(status, h, upstream.ErrorMessage(body))
	}
	var apiErr *openai.Error
	if errors.As(err, &apiErr) {
		var h http.Header
		if apiErr.Response != nil {
			h = apiErr.Response.Header
		}
		return c.statusError(apiErr.StatusCode, h, apiErr.Message)
	}
	var se *ssestream.StreamError
	if errors.As(err, &se) {
		return c.streamError(se)
	}
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	if errors.As(err, &syn) || errors.As(err, &typ) {
		return api.Wrap(api.BackendBadResponse, err, "upstream %s sent malformed JSON", c.base)
	}
	return upstream.TransportError(err, c.base, "is the server running there?")
}

// statusError maps an HTTP error status to a kind: rate limits and overload are worth
// retrying (after Retry-After), other server errors call for failover, and client errors
// will fail again anywhere.
func (c *Core) statusError(status int, h http.Header, msg string) *api.Error {
	detail := fmt.Sprintf("upstream %s answered HTTP %d", c.base, status)
	if msg != "" {
		detail += ": " + msg
	}
	e := api.Errorf(upstream.StatusKind(status), "%s", detail)
	if status == http.StatusUnauthorized || status == http.StatusForbidden {
		e.Message += fmt.Sprintf(" (the upstream refused the API key: check api_key for backend %q)", c.cfg.Name)
	}
	e.RetryAfter = upstream.OpenAIRetryAfter(h, time.Now())
	return e
}

// streamError handles an error event inside a 200 stream, which vLLM sends when the
// engine fails after the response started; its code, when numeric, is an HTTP status.
func (c *Core) streamError(se *ssestream.StreamError) *api.Error {
	var ev struct {
		Error struct {
			Message string          `json:"message"`
			Code    json.RawMessage `json:"code"`
		} `json:"error"`
	}
	_ = json.Unmarshal(se.Event.Data, &ev)
	msg := ev.Error.Message
	if msg == "" {
		msg = strings.TrimSpace(string(se.Event.Data))
	}
	if code, err := strconv.Atoi(strings.Trim(string(ev.Error.Code), `"`)); err == nil && code >= 400 && code < 600 {
		return c.statusError(code, nil, "error in stream: "+msg)
	}
	if strings.Contains(string(ev.Error.Code), "rate_limit") {
		return c.statusError(http.StatusTooManyRequests, nil, "error in stream: "+msg)
	}
	return api.Errorf(api.BackendUnavailable, "upstream %s failed mid-stream: %s", c.base, msg)
}

// target names this core's upstream for upstream.ContextError.
func (c *Core) target() upstream.Target {
	return upstream.Target{Provider: "openai", Name: c.cfg.Name, Base: c.base, Idle: c.cfg.IdleTimeout}
}
