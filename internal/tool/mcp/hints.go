package mcp

import (
	"bytes"
	"context"
	"encoding/json"
	"sync"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"

	"github.com/aios-go/aios/internal/tool"
)

// hintTap keeps the tool annotations exactly as the server sent them. The SDK decodes
// readOnlyHint and idempotentHint into plain bools, so "false" and "not said" look the
// same there; the access manager must be able to tell them apart (an unknown hint is
// not a promise), so the raw tools/list results are read on the way in.
type hintTap struct {
	mu    sync.Mutex
	hints map[string]tool.Annotations
}

func newHintTap() *hintTap { return &hintTap{hints: map[string]tool.Annotations{}} }

// result records the annotations of a JSON-RPC result if it is a tools/list page. Only
// tools/list results carry "tools" at their top level, so no request IDs need matching.
func (h *hintTap) result(raw json.RawMessage) {
	if !bytes.Contains(raw, []byte(`"tools"`)) {
		return
	}
	var page struct {
		Tools []struct {
			Name        string           `json:"name"`
			Annotations tool.Annotations `json:"annotations"`
		} `json:"tools"`
	}
	if json.Unmarshal(raw, &page) != nil {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, t := range page.Tools {
		h.hints[t.Name] = t.Annotations
	}
}

// message records from one undecoded JSON-RPC message (a line of an SSE stream or an
// HTTP body).
func (h *hintTap) message(raw []byte) {
	if !bytes.Contains(raw, []byte(`"tools"`)) {
		return
	}
	var resp struct {
		Result json.RawMessage `json:"result"`
	}
	if json.Unmarshal(raw, &resp) == nil && len(resp.Result) > 0 {
		h.result(resp.Result)
	}
}

// annotations are t's hints as sent when the tap saw them, else what the SDK kept: then
// a false bool may have been "not said", so only true is reported.
func (h *hintTap) annotations(t *sdk.Tool) tool.Annotations {
	h.mu.Lock()
	a, ok := h.hints[t.Name]
	h.mu.Unlock()
	if !ok && t.Annotations != nil {
		sa := t.Annotations
		a = tool.Annotations{Title: sa.Title, DestructiveHint: sa.DestructiveHint, OpenWorldHint: sa.OpenWorldHint}
		if sa.ReadOnlyHint {
			a.ReadOnlyHint = &sa.ReadOnlyHint
		}
		if sa.IdempotentHint {
			a.IdempotentHint = &sa.IdempotentHint
		}
	}
	// Since protocol 2025-06-18 the display title lives on the tool itself.
	if a.Title == "" {
		a.Title = t.Title
	}
	return a
}

// tappedConn lets the tap see every decoded response of a stdio connection before the
// SDK does, so the hints are recorded by the time ListTools returns.
type tappedConn struct {
	sdk.Connection
	tap *hintTap
}

func (c tappedConn) Read(ctx context.Context) (jsonrpc.Message, error) {
	msg, err := c.Connection.Read(ctx)
	if r, ok := msg.(*jsonrpc.Response); ok && r.Error == nil {
		c.tap.result(r.Result)
	}
	return msg, err
}
