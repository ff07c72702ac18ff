package sdk

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/aios-go/aios/api"
)

// StorageResult is the answer of a storage query: AIOS's StorageResponse, whose
// response_message carries the result (a file's content for Read, the link for Share).
type StorageResult struct {
	api.ModuleResponse
	Timings
}

// Message is the response message ("" when there is none).
func (r *StorageResult) Message() string {
	if r == nil || r.ResponseMessage == nil {
		return ""
	}
	return *r.ResponseMessage
}

// Storage runs one storage query, as AIOS's SDK does: operation_type op with params p.
// A failure reported inside the response (status_code not 2xx) is returned as an *Error
// along with the result.
func (c *Client) Storage(ctx context.Context, op string, p api.StorageParams) (*StorageResult, error) {
	b, err := json.Marshal(api.StorageQuery{QueryClass: api.QueryStorage, OperationType: op, Params: p})
	if err != nil {
		return nil, fmt.Errorf("sdk: encode storage query: %w", err)
	}
	res := &StorageResult{}
	qr, err := c.query(ctx, api.QueryRequest{QueryType: api.QueryStorage, QueryData: b}, &res.ModuleResponse)
	if err != nil {
		return nil, err
	}
	res.Timings = timingsOf(qr)
	return res, moduleError(res.ModuleResponse, "storage call failed")
}

// moduleError turns a failure inside a StorageResponse or ToolResponse into an *Error.
func moduleError(r api.ModuleResponse, fallback string) error {
	sc := r.StatusCode
	if sc == 0 || (sc >= 200 && sc <= 299) {
		return nil
	}
	detail := fallback
	if r.Error != nil && *r.Error != "" {
		detail = *r.Error
	}
	kind := r.Kind
	if kind == "" {
		kind = kindForStatus(sc)
	}
	return &Error{Status: sc, Kind: kind, Detail: detail}
}

// message runs op and returns its response message.
func (c *Client) message(ctx context.Context, op string, p api.StorageParams) (string, error) {
	res, err := c.Storage(ctx, op, p)
	if err != nil {
		return "", err
	}
	return res.Message(), nil
}

// Mount makes root the agent's root: "" its own namespace, a relative folder inside
// it, or a host folder the operator allowed.
func (c *Client) Mount(ctx context.Context, root string) error {
	_, err := c.Storage(ctx, api.StorageMount, api.StorageParams{RootDir: root})
	return err
}

// CreateFile creates an empty file (and its folders); an existing file is left as it is.
func (c *Client) CreateFile(ctx context.Context, path string) error {
	_, err := c.Storage(ctx, api.StorageCreateFile, api.StorageParams{FilePath: path})
	return err
}

// CreateDir creates a folder and its parents.
func (c *Client) CreateDir(ctx context.Context, path string) error {
	_, err := c.Storage(ctx, api.StorageCreateDir, api.StorageParams{DirPath: path})
	return err
}

// WriteFile replaces a file's content, keeping the old one as a version.
func (c *Client) WriteFile(ctx context.Context, path, content string) error {
	_, err := c.Storage(ctx, api.StorageWrite, api.StorageParams{FilePath: path, Content: &content})
	return err
}

// ReadFile returns a file's content.
func (c *Client) ReadFile(ctx context.Context, path string) (string, error) {
	return c.message(ctx, api.StorageRead, api.StorageParams{FilePath: path})
}

// Delete removes a file, or a folder with everything in it.
func (c *Client) Delete(ctx context.Context, path string) error {
	_, err := c.Storage(ctx, api.StorageDelete, api.StorageParams{FilePath: path})
	return err
}

// Rollback restores the version n versions back (1: the previous one) as a new version.
func (c *Client) Rollback(ctx context.Context, path string, n int) error {
	v := api.FlexInt(n)
	_, err := c.Storage(ctx, api.StorageRollback, api.StorageParams{FilePath: path, N: &v})
	return err
}

// RollbackTo restores the version that was current at t, as a new version.
func (c *Client) RollbackTo(ctx context.Context, path string, t time.Time) error {
	_, err := c.Storage(ctx, api.StorageRollback, api.StorageParams{FilePath: path, Time: t.UTC().Format(time.RFC3339Nano)})
	return err
}

// Share returns a link that reads the file, without credentials, until it expires (ttl
// rounded to seconds; 0 means a day) or is revoked with Unshare.
func (c *Client) Share(ctx context.Context, path string, ttl time.Duration) (*api.StorageLink, error) {
	var link api.StorageLink
	err := c.do(ctx, http.MethodPost, "/v1/storage/shares/"+escapePath(path), api.StorageShareRequest{ExpiresIn: int(ttl.Seconds())}, &link)
	if err != nil {
		return nil, err
	}
	return &link, nil
}

// Unshare revokes a share link by its token.
func (c *Client) Unshare(ctx context.Context, token string) error {
	return c.doNoContent(ctx, http.MethodDelete, "/v1/storage/shares/"+url.PathEscape(token))
}

// Retrieve ranks the agent's files against text (keywords, when given, must all occur).
func (c *Client) Retrieve(ctx context.Context, text string, k int, keywords ...string) ([]api.StorageHit, error) {
	var out api.StorageResults
	if err := c.do(ctx, http.MethodPost, "/v1/storage/retrieve", api.StorageRetrieveRequest{QueryText: text, K: k, Keywords: keywords}, &out); err != nil {
		return nil, err
	}
	return out.Hits, nil
}

// List returns a folder's entries ("" or "/" for the root).
func (c *Client) List(ctx context.Context, path string) ([]api.StorageFile, error) {
	var out api.StorageListing
	if err := c.do(ctx, http.MethodGet, "/v1/storage/list/"+escapePath(path), nil, &out); err != nil {
		return nil, err
	}
	return out.Files, nil
}

// Versions returns a file's history, newest first.
func (c *Client) Versions(ctx context.Context, path string) ([]api.StorageVersion, error) {
	var out api.StorageHistory
	if err := c.do(ctx, http.MethodGet, "/v1/storage/versions/"+escapePath(path), nil, &out); err != nil {
		return nil, err
	}
	return out.Versions, nil
}

// Upload writes a file from r, streamed to the kernel, and returns the new version.
func (c *Client) Upload(ctx context.Context, path string, r io.Reader) (*api.StorageVersion, error) {
	req, err := c.newRequest(ctx, http.MethodPut, "/v1/storage/files/"+escapePath(path), nil)
	if err != nil {
		return nil, err
	}
	req.Body = io.NopCloser(r)
	req.Header.Set("Content-Type", "application/octet-stream")
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("sdk: PUT %s: %w", path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
		return nil, errorFromBody(resp, b)
	}
	var v api.StorageVersion
	if err := json.NewDecoder(resp.Body).Decode(&v); err != nil {
		return nil, fmt.Errorf("sdk: PUT %s: decode response: %w", path, err)
	}
	return &v, nil
}

// Download streams a file's content; the caller closes it.
func (c *Client) Download(ctx context.Context, path string) (io.ReadCloser, error) {
	req, err := c.newRequest(ctx, http.MethodGet, "/v1/storage/files/"+escapePath(path), nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("sdk: GET %s: %w", path, err)
	}
	if resp.StatusCode != http.StatusOK {
		defer resp.Body.Close()
		b, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
		return nil, errorFromBody(resp, b)
	}
	return resp.Body, nil
}

// doNoContent sends a request with no body whose success has none either.
func (c *Client) doNoContent(ctx context.Context, method, path string) error {
	req, err := c.newRequest(ctx, method, path, nil)
	if err != nil {
		return err
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return fmt.Errorf("sdk: %s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
		return errorFromBody(resp, b)
	}
	return nil
}

// escapePath escapes each segment of a storage path for a URL.
func escapePath(p string) string {
	segs := strings.Split(strings.Trim(p, "/"), "/")
	for i, s := range segs {
		segs[i] = url.PathEscape(s)
	}
	return strings.Join(segs, "/")
}
