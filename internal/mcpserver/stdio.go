package mcpserver

import (
	"context"
	"errors"
	"io"
	"log/slog"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// ServeStdio runs an MCP server over in and out (newline-delimited JSON-RPC, as MCP's
// stdio transport) for one agent until ctx ends or the client leaves; either is a clean
// end and returns nil. in and out are closed on return when they are Closers, which is
// what tells a client on the other end of a pipe that the server has gone. Warnings go
// to slog's default logger, never to out.
func ServeStdio(ctx context.Context, k Kernel, agent string, in io.Reader, out io.Writer) error {
	if agent == "" {
		return errors.New("mcp: ServeStdio needs the agent the client acts as")
	}
	b := newBridge(k, agent, slog.Default(), true)
	// Tools added before the client connects are not announced to it as a change,
	// which would make it list them twice.
	if err := b.sync(ctx); err != nil {
		return err
	}
	b.srv.AddReceivingMiddleware(b.refresh)
	ss, err := b.srv.Connect(ctx, &mcp.IOTransport{Reader: readCloser(in), Writer: writeCloser(out)}, nil)
	if err != nil {
		return err
	}
	stop := context.AfterFunc(ctx, func() { _ = ss.Close() })
	defer stop()
	err = ss.Wait()
	if ctx.Err() != nil || errors.Is(err, io.EOF) || errors.Is(err, io.ErrClosedPipe) {
		return nil
	}
	return err
}

// refresh re-reads the kernel's tools before each tools/list, and before a call to a
// tool this session has not seen: a stdio session lives as long as the client, while
// MCP servers behind the kernel come and go.
func (b *bridge) refresh(next mcp.MethodHandler) mcp.MethodHandler {
	return func(ctx context.Context, method string, req mcp.Request) (mcp.Result, error) {
		stale := method == "tools/list"
		if p, ok := req.GetParams().(*mcp.CallToolParamsRaw); ok && method == "tools/call" {
			stale = !b.has(p.Name)
		}
		if stale {
			if err := b.sync(ctx); err != nil {
				return nil, &jsonrpc.Error{Code: jsonrpc.CodeInternalError, Message: "backend_unavailable: listing the kernel's tools: " + err.Error()}
			}
		}
		return next(ctx, method, req)
	}
}

func readCloser(r io.Reader) io.ReadCloser {
	if rc, ok := r.(io.ReadCloser); ok {
		return rc
	}
	return io.NopCloser(r)
}

type nopWriteCloser struct{ io.Writer }

func (nopWriteCloser) Close() error { return nil }

func writeCloser(w io.Writer) io.WriteCloser {
	if wc, ok := w.(io.WriteCloser); ok {
		return wc
	}
	return nopWriteCloser{w}
}
