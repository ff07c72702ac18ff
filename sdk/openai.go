package sdk

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aios-go/aios/api"
)

// ChatCompletion is POST /v1/chat/completions without streaming. req.Stream is ignored.
func (c *Client) ChatCompletion(ctx context.Context, req api.ChatCompletionRequest) (*api.ChatCompletion, error) {
	req.Stream = false
	req.StreamOptions = nil
	var out api.ChatCompletion
	if err := c.do(ctx, http.MethodPost, "/v1/chat/completions", req, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// ListModels is GET /v1/models.
func (c *Client) ListModels(ctx context.Context) (*api.ModelList, error) {
	var out api.ModelList
	if err := c.do(ctx, http.MethodGet, "/v1/models", nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// ChatCompletionStream is POST /v1/chat/completions with stream: true. It returns once
// the kernel has answered with headers; an error status comes back here as an *Error.
// Set req.StreamOptions to get a final usage chunk. The caller must Close the stream.
func (c *Client) ChatCompletionStream(ctx context.Context, req api.ChatCompletionRequest) (*Stream, error) {
	req.Stream = true
	// The stream lives until Close; its context must outlive this call, and the client's
	// timeout must stop applying once the headers are in.
	ctx, cancel := context.WithCancel(ctx)
	hreq, err := c.newRequest(ctx, http.MethodPost, "/v1/chat/completions", req)
	if err != nil {
		cancel()
		return nil, err
	}
	hreq.Header.Set("Accept", "text/event-stream")
	var timer *time.Timer
	if c.timeout > 0 {
		timer = time.AfterFunc(c.timeout, cancel)
	}
	resp, err := c.hc.Do(hreq)
	if timer != nil && !timer.Stop() {
		// The timer fired (or is firing) before the headers were in: whatever Do
		// returned, the request's context is gone, and the cause is the timeout.
		if resp != nil {
			resp.Body.Close()
		}
		cancel()
		return nil, fmt.Errorf("sdk: POST /v1/chat/completions: no response within %v: %w", c.timeout, context.DeadlineExceeded)
	}
	if err != nil {
		cancel()
		return nil, fmt.Errorf("sdk: POST /v1/chat/completions: %w", err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
		resp.Body.Close()
		cancel()
		return nil, errorFromBody(resp, b)
	}
	return &Stream{body: resp.Body, cancel: cancel, dec: newSSEDecoder(resp.Body)}, nil
}

// Stream is a streaming chat completion. Use it like bufio.Scanner:
//
//	for s.Next() { chunk := s.Chunk(); ... }
//	if err := s.Err(); err != nil { ... }
//
// A stream that ends without OpenAI's "data: [DONE]" was cut off, and Err says so.
type Stream struct {
	body   io.ReadCloser
	cancel context.CancelFunc
	dec    *sseDecoder
	chunk  api.ChatCompletionChunk
	err    error
	done   bool

	// closed is set by Close, which may run on another goroutine to abort a Next that
	// is blocked reading.
	closed    atomic.Bool
	closeOnce sync.Once
}

// Next reads the next chunk. It returns false at the end of the stream or on an error.
func (s *Stream) Next() bool {
	if s.done || s.closed.Load() {
		return false
	}
	ev, err := s.dec.Next()
	if err != nil {
		s.done = true
		switch {
		case s.closed.Load():
			// The caller stopped the stream; the read failing is what it asked for.
		case errors.Is(err, io.EOF):
			s.err = fmt.Errorf("sdk: event stream ended before [DONE]: %w", io.ErrUnexpectedEOF)
		default:
			s.err = fmt.Errorf("sdk: read event stream: %w", err)
		}
		return false
	}
	if ev.Data == "[DONE]" {
		s.done = true
		return false
	}
	if e := streamError(ev); e != nil {
		s.done, s.err = true, e
		return false
	}
	var ch api.ChatCompletionChunk
	if err := json.Unmarshal([]byte(ev.Data), &ch); err != nil {
		s.done = true
		s.err = fmt.Errorf("sdk: decode stream chunk: %w", err)
		return false
	}
	s.chunk = ch
	return true
}

// streamError recognises an error sent inside the stream after a 200: OpenAI and vLLM
// send {"error": {...}} as a data event when generation fails part-way; some servers
// also name the event "error".
func streamError(ev sseEvent) *Error {
	data := []byte(ev.Data)
	named := ev.Event == "error"
	if !named && !bytes.Contains(data, []byte(`"error"`)) {
		return nil
	}
	var oe api.OpenAIError
	var eb api.ErrorBody
	// A named error event need not be JSON; then its text is the detail.
	_ = json.Unmarshal(data, &oe)
	_ = json.Unmarshal(data, &eb)
	if !named && oe.Error == (api.OpenAIErrorDetail{}) {
		return nil
	}
	e := &Error{Kind: eb.Kind, Detail: eb.Detail}
	if e.Detail == "" {
		e.Detail = oe.Error.Message
	}
	if e.Detail == "" {
		e.Detail = ev.Data
	}
	if e.Kind == "" {
		if k, ok := knownKind(oe.Error.Code); ok {
			e.Kind = k
		} else if k, ok := knownKind(oe.Error.Type); ok {
			e.Kind = k
		} else {
			// The kernel accepted the stream, so the fault lies behind it, in the backend.
			e.Kind = api.BackendBadResponse
		}
	}
	e.Status = e.Kind.HTTPStatus()
	return e
}

// Chunk is the chunk the last successful Next read.
func (s *Stream) Chunk() api.ChatCompletionChunk { return s.chunk }

// Err is the error that ended the stream, or nil if it ended with [DONE], was closed by
// the caller, or is still going.
func (s *Stream) Err() error { return s.err }

// Close stops reading and releases the connection; the kernel sees the disconnect and
// cancels the generation. It is safe to call more than once, and from another goroutine
// to abort a Next that is waiting for the kernel.
func (s *Stream) Close() error {
	var err error
	s.closeOnce.Do(func() {
		s.closed.Store(true)
		s.cancel()
		err = s.body.Close()
	})
	return err
}
