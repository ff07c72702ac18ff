package sdk

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/aios-go/aios/api"
)

// MemoryResult is the answer of a memory query: AIOS's MemoryResponse.
type MemoryResult struct {
	api.MemoryResponse
	Timings
}

// Memory runs one memory query, as AIOS's SDK does: operation_type op with params p. A
// failure reported inside the response (success false, status_code not 2xx) is returned
// as an *Error along with the result.
func (c *Client) Memory(ctx context.Context, op string, p api.MemoryParams) (*MemoryResult, error) {
	b, err := json.Marshal(api.MemoryQuery{QueryClass: api.QueryMemory, OperationType: op, Params: p})
	if err != nil {
		return nil, fmt.Errorf("sdk: encode memory query: %w", err)
	}
	res := &MemoryResult{}
	qr, err := c.query(ctx, api.QueryRequest{QueryType: api.QueryMemory, QueryData: b}, &res.MemoryResponse)
	if err != nil {
		return nil, err
	}
	res.Timings = timingsOf(qr)
	if sc := res.StatusCode; !res.Success || (sc != 0 && (sc < 200 || sc > 299)) {
		detail := "memory call failed"
		if res.Error != nil && *res.Error != "" {
			detail = *res.Error
		}
		if sc == 0 {
			sc = 500
		}
		return res, &Error{Status: sc, Kind: kindForStatus(sc), Detail: detail}
	}
	return res, nil
}

// AddMemory stores a note (metadata: tags, keywords, category, context, links and any
// other keys) and returns its id.
func (c *Client) AddMemory(ctx context.Context, content string, metadata map[string]any) (string, error) {
	return c.addMemory(ctx, api.MemoryAdd, content, metadata)
}

// AddAgenticMemory stores a note the A-MEM way: the kernel's LLM extracts its keywords,
// context and tags, links it to related notes and updates them.
func (c *Client) AddAgenticMemory(ctx context.Context, content string, metadata map[string]any) (string, error) {
	return c.addMemory(ctx, api.MemoryAddAgentic, content, metadata)
}

func (c *Client) addMemory(ctx context.Context, op, content string, metadata map[string]any) (string, error) {
	res, err := c.Memory(ctx, op, api.MemoryParams{Content: &content, Metadata: metadata})
	if err != nil {
		return "", err
	}
	if res.MemoryID == nil {
		return "", fmt.Errorf("sdk: %s answered without a memory_id", op)
	}
	return *res.MemoryID, nil
}

// GetMemory returns a note's content and metadata.
func (c *Client) GetMemory(ctx context.Context, id string) (*MemoryResult, error) {
	return c.Memory(ctx, api.MemoryGet, api.MemoryParams{MemoryID: id})
}

// UpdateMemory changes a note: content nil keeps it; only the metadata keys given change.
func (c *Client) UpdateMemory(ctx context.Context, id string, content *string, metadata map[string]any) error {
	_, err := c.Memory(ctx, api.MemoryUpdate, api.MemoryParams{MemoryID: id, Content: content, Metadata: metadata})
	return err
}

// RemoveMemory deletes a note.
func (c *Client) RemoveMemory(ctx context.Context, id string) error {
	_, err := c.Memory(ctx, api.MemoryRemove, api.MemoryParams{MemoryID: id})
	return err
}

// RetrieveMemory returns the k notes that best match query, each with memory_id,
// content, score and metadata. Filters (tags, category, since, until, min_score) may be
// set in p; its content and k are overwritten.
func (c *Client) RetrieveMemory(ctx context.Context, query string, k int, p api.MemoryParams) ([]map[string]any, error) {
	kk := api.FlexInt(k)
	p.Content, p.K = &query, &kk
	res, err := c.Memory(ctx, api.MemoryRetrieve, p)
	if err != nil {
		return nil, err
	}
	return res.SearchResults, nil
}
