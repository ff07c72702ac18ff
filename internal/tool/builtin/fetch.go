package builtin

import (
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"unicode/utf8"

	"github.com/aios-go/aios/internal/tool"
)

const (
	maxRedirects     = 5
	defaultFetchSize = 64 << 10
	maxFetchSize     = 1 << 20
	errorExcerpt     = 2 << 10 // bytes of a non-2xx body shown
)

const httpFetchSchema = `{
	"type": "object",
	"properties": {
		"url": {"type": "string", "description": "The http or https URL to GET. Only hosts on the kernel's allowlist are fetched."},
		"max_bytes": {"type": "integer", "minimum": 1, "maximum": 1048576, "description": "Most bytes of the body to return (default 65536)."}
	},
	"required": ["url"],
	"additionalProperties": false
}`

// HTTPFetch is the http_fetch tool: GET of a URL whose host is on allow (see allowlist
// for the rules), following at most 5 redirects and only while each lands on the list.
// An empty allow means the tool is not offered: HTTPFetch returns a nil tool and no
// error. client nil means a plain http.Client; the tool uses a copy of it, with its own
// redirect policy.
func HTTPFetch(allow []string, client *http.Client) (tool.Tool, error) {
	if len(allow) == 0 {
		return nil, nil
	}
	list, err := parseAllowlist(allow)
	if err != nil {
		return nil, err
	}
	if client == nil {
		client = &http.Client{}
	}
	c := *client
	c.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if len(via) > maxRedirects {
			return &refusal{fmt.Sprintf("stopped after %d redirects", maxRedirects)}
		}
		if why := list.check(req.URL); why != "" {
			return &refusal{fmt.Sprintf("redirected to %s, which is not fetched: %s", req.URL.Redacted(), why)}
		}
		return nil
	}
	f := &fetcher{list: list, client: &c}
	return newTool("http_fetch", "Fetch a web page or API response with HTTP GET and return its status and text. Only allowlisted hosts can be reached.",
		httpFetchSchema, readOnly("Fetch a URL", true), f.call), nil
}

// refusal is a redirect the tool would not follow, told to the model as such.
type refusal struct{ msg string }

func (r *refusal) Error() string { return r.msg }

type fetcher struct {
	list   allowlist
	client *http.Client
}

func (f *fetcher) call(ctx context.Context, in tool.Input) (tool.Result, error) {
	var a struct {
		URL      string `json:"url"`
		MaxBytes int    `json:"max_bytes"`
	}
	if r := decode(in, &a); r != nil {
		return *r, nil
	}
	limit := a.MaxBytes
	if limit <= 0 || limit > maxFetchSize {
		limit = defaultFetchSize
	}
	u, err := url.Parse(a.URL)
	if err != nil {
		return failed(fmt.Sprintf("%q is not a URL: %v", a.URL, err)), nil
	}
	if why := f.list.check(u); why != "" {
		return failed(fmt.Sprintf("%s is not fetched: %s; no request was made", u.Redacted(), why)), nil
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return failed(fmt.Sprintf("cannot request %s: %v", u.Redacted(), err)), nil
	}
	req.Header.Set("User-Agent", "aios-http_fetch/1")
	resp, err := f.client.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			// The manager's timeout or the caller's cancellation: the manager says which.
			return tool.Result{}, ctx.Err()
		}
		var r *refusal
		if errors.As(err, &r) {
			return failed(r.msg), nil
		}
		// An unreachable site is the page's problem, not the tool's: the model reads it.
		return failed(fmt.Sprintf("fetching %s failed: %v", u.Redacted(), errors.Unwrap(err))), nil
	}
	defer resp.Body.Close()

	ok := resp.StatusCode >= 200 && resp.StatusCode < 300
	if !ok {
		limit = min(limit, errorExcerpt)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, int64(limit)+1))
	if err != nil && ctx.Err() != nil {
		return tool.Result{}, ctx.Err()
	}
	var b strings.Builder
	fmt.Fprintf(&b, "HTTP %s\n", resp.Status)
	if final := resp.Request.URL; final.String() != u.String() {
		fmt.Fprintf(&b, "Final URL: %s\n", final.Redacted())
	}
	ctype := resp.Header.Get("Content-Type")
	if ctype != "" {
		fmt.Fprintf(&b, "Content-Type: %s\n", ctype)
	}
	b.WriteString("\n")
	b.WriteString(bodyText(body, limit, ctype, err))
	if !ok {
		return failed(b.String()), nil
	}
	return tool.Result{Content: b.String()}, nil
}

// bodyText is the body as the model reads it: text up to limit bytes with a note when
// cut, or a line saying the body is binary (a model cannot use the bytes).
func bodyText(body []byte, limit int, ctype string, readErr error) string {
	cut := len(body) > limit
	if cut {
		body = body[:limit]
		// The limit may fall inside a character.
		for i := 0; i < utf8.UTFMax-1 && len(body) > 0 && !utf8.Valid(body); i++ {
			body = body[:len(body)-1]
		}
	}
	mt, _, _ := mime.ParseMediaType(ctype)
	if !utf8.Valid(body) || strings.HasPrefix(mt, "image/") || strings.HasPrefix(mt, "audio/") || strings.HasPrefix(mt, "video/") {
		return fmt.Sprintf("[binary body (%s), not shown]", ctype)
	}
	s := string(body)
	switch {
	case readErr != nil:
		s += fmt.Sprintf("\n[the body broke off after %d bytes: %v]", len(body), readErr)
	case cut:
		s += fmt.Sprintf("\n[body cut at %d bytes (max_bytes)]", len(body))
	}
	return s
}
