package mcp

import (
	"encoding/json"
	"fmt"
	"strings"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/aios-go/aios/internal/tool"
)

// result turns an MCP tool result into the text a model reads. Binary content is not
// inlined: base64 in a prompt costs tokens and tells a text model nothing, so it is
// named with its type and size instead.
func result(r *sdk.CallToolResult) (tool.Result, error) {
	parts := make([]string, 0, len(r.Content))
	for _, c := range r.Content {
		parts = append(parts, contentText(c))
	}
	out := tool.Result{Content: strings.Join(parts, "\n"), IsError: r.IsError}
	if r.StructuredContent != nil {
		b, err := json.Marshal(r.StructuredContent)
		if err != nil {
			return tool.Result{}, fmt.Errorf("structuredContent: %w", err)
		}
		out.Structured = b
	}
	return out, nil
}

func contentText(c sdk.Content) string {
	switch c := c.(type) {
	case *sdk.TextContent:
		return c.Text
	case *sdk.ImageContent:
		return binary("image", c.MIMEType, c.Data)
	case *sdk.AudioContent:
		return binary("audio", c.MIMEType, c.Data)
	case *sdk.ResourceLink:
		return c.URI
	case *sdk.EmbeddedResource:
		r := c.Resource
		switch {
		case r == nil:
			return "[resource]"
		case r.Text != "":
			return r.Text
		case r.Blob != nil:
			return fmt.Sprintf("[resource %s %s, %d bytes]", r.URI, orUnknown(r.MIMEType), len(r.Blob))
		default:
			return fmt.Sprintf("[resource %s]", r.URI)
		}
	default:
		// Content kinds a tool result should not carry (tool_use, tool_result) or newer
		// ones: the model still learns something was there.
		b, _ := json.Marshal(c)
		return fmt.Sprintf("[content %s]", b)
	}
}

func binary(kind, mimeType string, data []byte) string {
	return fmt.Sprintf("[%s %s, %d bytes]", kind, orUnknown(mimeType), len(data))
}

func orUnknown(s string) string {
	if s == "" {
		return "of unknown type"
	}
	return s
}
