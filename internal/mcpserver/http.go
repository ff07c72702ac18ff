package mcpserver

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// Handler serves MCP over streamable HTTP at the path it is mounted on (the server mounts
// it at /mcp). agentOf names the calling agent of a request.
//
// The handler is stateless: every POST gets a fresh MCP server holding the kernel's tools
// as they are at that moment and acting only for the request's agent, so tools that
// appear later are listed at once and no session can be replayed as another agent. The
// SDK still answers the initialize handshake of clients older than the 2026-07-28
// protocol; GET and DELETE are 405, which MCP lets clients treat as "no stream".
// Responses are plain JSON: nothing is streamed from server to client.
//
// A request that names no agent gets HTTP 400 with a JSON-RPC error body, as the REST API
// answers a missing X-AIOS-Agent. Not 401: MCP clients read a 401 as "start OAuth" and
// would hide the actual fix behind a failed authorization flow.
func Handler(k Kernel, agentOf func(*http.Request) string, log *slog.Logger) http.Handler {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	sdk := mcp.NewStreamableHTTPHandler(func(r *http.Request) *mcp.Server {
		if b, ok := r.Context().Value(bridgeKey{}).(*bridge); ok {
			return b.srv
		}
		return nil
	}, &mcp.StreamableHTTPOptions{
		Stateless:    true,
		JSONResponse: true,
		Logger:       quiet(log),
	})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		agent := agentOf(r)
		if agent == "" {
			writeError(w, requestID(r), http.StatusBadRequest, jsonrpc.CodeInvalidRequest,
				"caller_bad_request: the request names no agent: send the X-AIOS-Agent header")
			return
		}
		if r.Method != http.MethodPost {
			sdk.ServeHTTP(w, r) // no server needed to say 405
			return
		}
		b := newBridge(k, agent, log, false)
		b.request = r.Context()
		if err := b.sync(r.Context()); err != nil {
			log.Warn("mcp: listing the kernel's tools", "agent", agent, "error", err)
			writeError(w, nil, http.StatusBadGateway, jsonrpc.CodeInternalError, "backend_unavailable: listing the kernel's tools: "+err.Error())
			return
		}
		sdk.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), bridgeKey{}, b)))
	})
}

// bridgeKey carries a request's server to the SDK's getServer, which is called more than
// once per request and must not list the tools each time.
type bridgeKey struct{}

// requestID is the id of the JSON-RPC request in r's body, or nil (null) when there is
// none to read. Clients match an error to their request by id, and the Go SDK's drops an
// error it cannot match, message and all.
func requestID(r *http.Request) json.RawMessage {
	var msg struct {
		ID json.RawMessage `json:"id"`
	}
	if r.Body == nil || json.NewDecoder(io.LimitReader(r.Body, maxPeek)).Decode(&msg) != nil {
		return nil
	}
	return msg.ID
}

// maxPeek bounds what a refused request may make the server read.
const maxPeek = 64 << 10

func writeError(w http.ResponseWriter, id json.RawMessage, status, code int, msg string) {
	if len(id) == 0 {
		id = json.RawMessage("null")
	}
	type rpcError struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	}
	body, _ := json.Marshal(struct {
		JSONRPC string          `json:"jsonrpc"`
		ID      json.RawMessage `json:"id"`
		Error   rpcError        `json:"error"`
	}{"2.0", id, rpcError{code, msg}})
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}
