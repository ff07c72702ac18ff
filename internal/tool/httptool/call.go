package httptool

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/aios-go/aios/api"
	"github.com/aios-go/aios/internal/llm/upstream"
	"github.com/aios-go/aios/internal/tool"
)

const (
	maxBody    = 1 << 20 // bytes of a response read; the manager caps what the model sees further
	maxExcerpt = 1 << 10 // bytes of an error body quoted
)

type httpTool struct {
	spec    tool.Spec
	method  string
	url     string
	holes   []hole
	headers http.Header
	client  *http.Client
}

func (t *httpTool) Spec() tool.Spec { return t.spec }

func (t *httpTool) Call(ctx context.Context, in tool.Input) (tool.Result, error) {
	args := map[string]any{}
	if len(bytes.TrimSpace(in.Args)) > 0 {
		d := json.NewDecoder(bytes.NewReader(in.Args))
		d.UseNumber() // a big integer id must reach the API digit for digit
		if err := d.Decode(&args); err != nil {
			return tool.Result{Content: "cannot read the arguments: " + err.Error(), IsError: true}, nil
		}
	}
	target, err := t.fill(args)
	if err != nil {
		return tool.Result{Content: err.Error(), IsError: true}, nil
	}

	var body io.Reader
	if t.method == http.MethodGet || t.method == http.MethodDelete {
		if len(args) > 0 {
			u, err := url.Parse(target)
			if err != nil {
				return tool.Result{Content: err.Error(), IsError: true}, nil
			}
			q := u.Query()
			for k, v := range args {
				addQuery(q, k, v)
			}
			u.RawQuery = q.Encode()
			target = u.String()
		}
	} else {
		b, err := json.Marshal(args)
		if err != nil {
			return tool.Result{}, api.Wrap(api.KernelInternal, err, "tool %s: encoding the body", t.spec.Name)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, t.method, target, body)
	if err != nil {
		return tool.Result{Content: fmt.Sprintf("cannot build the request: %v", err), IsError: true}, nil
	}
	req.Header.Set("User-Agent", "aios-httptool/1")
	req.Header.Set("Accept", "application/json, text/*;q=0.9, */*;q=0.1")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range t.headers {
		req.Header[k] = v
	}

	resp, err := t.client.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			// The manager's deadline or the caller's cancel: the manager tells which.
			return tool.Result{}, ctx.Err()
		}
		return tool.Result{}, upstream.TransportError(err, t.spec.Name+" ("+req.URL.Host+")", "")
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxBody+1))
	if err != nil {
		if ctx.Err() != nil {
			return tool.Result{}, ctx.Err()
		}
		return tool.Result{}, upstream.TransportError(err, t.spec.Name+" ("+req.URL.Host+")", "")
	}
	return t.answer(resp, raw)
}

// answer turns a response into the result: 2xx is the answer, 4xx the model's mistake
// for it to read, 429 and 5xx the endpoint's trouble, typed so the kernel may retry.
func (t *httpTool) answer(resp *http.Response, raw []byte) (tool.Result, error) {
	status := resp.StatusCode
	switch {
	case status == http.StatusTooManyRequests:
		return tool.Result{}, &api.Error{
			Kind:       api.BackendRateLimited,
			Message:    fmt.Sprintf("tool %s: the endpoint is rate limiting (HTTP 429): %s", t.spec.Name, excerpt(raw)),
			RetryAfter: upstream.RetryAfter(resp.Header, time.Now()),
		}
	case status >= 500:
		return tool.Result{}, &api.Error{
			Kind:       api.BackendUnavailable,
			Message:    fmt.Sprintf("tool %s: the endpoint failed (HTTP %s): %s", t.spec.Name, resp.Status, excerpt(raw)),
			RetryAfter: upstream.RetryAfter(resp.Header, time.Now()),
		}
	case status >= 400:
		return tool.Result{Content: fmt.Sprintf("HTTP %s: %s", resp.Status, excerpt(raw)), IsError: true}, nil
	case status < 200 || status >= 300:
		// 1xx never reaches here; a 3xx does when the client stops following it.
		return tool.Result{Content: fmt.Sprintf("HTTP %s (not followed): %s", resp.Status, resp.Header.Get("Location")), IsError: true}, nil
	}
	cut := len(raw) > maxBody
	if cut {
		raw = raw[:maxBody]
	}
	res := tool.Result{Content: string(raw)}
	if !utf8.Valid(raw) {
		res.Content = fmt.Sprintf("[binary body (%s), not shown]", resp.Header.Get("Content-Type"))
	}
	if mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); !cut && (mt == "application/json" || strings.HasSuffix(mt, "+json")) && json.Valid(raw) {
		res.Structured = json.RawMessage(raw)
	}
	if cut {
		res.Content += fmt.Sprintf("\n[body cut at %d bytes]", maxBody)
		res.Truncated = true
	}
	return res, nil
}

// fill puts the placeholders' arguments into the URL and takes them out of args.
func (t *httpTool) fill(args map[string]any) (string, error) {
	target := t.url
	for _, h := range t.holes {
		v, ok := args[h.param]
		if !ok {
			return "", fmt.Errorf("argument %q is required: the URL needs it", h.param)
		}
		s := scalar(v)
		switch {
		case h.query:
			s = url.QueryEscape(s)
		case s == "" || s == "." || s == "..":
			// An empty or dot segment would move the request up the endpoint's path,
			// escaped or not, as servers clean paths.
			return "", fmt.Errorf("argument %q may not be %q: it is a segment of the URL's path", h.param, s)
		default:
			s = url.PathEscape(s)
		}
		target = strings.Replace(target, "{"+h.param+"}", s, 1)
	}
	for _, h := range t.holes {
		delete(args, h.param)
	}
	return target, nil
}

// scalar is an argument as URL text: strings as they are, other values as JSON.
func scalar(v any) string {
	if s, ok := v.(string); ok {
		return s
	}
	b, _ := json.Marshal(v)
	return string(b)
}

// addQuery adds an argument to a query string: an array as a repeated key, anything
// else as one value.
func addQuery(q url.Values, k string, v any) {
	if list, ok := v.([]any); ok {
		for _, e := range list {
			q.Add(k, scalar(e))
		}
		return
	}
	q.Add(k, scalar(v))
}

// excerpt is the start of an error body, on one line.
func excerpt(b []byte) string {
	s := strings.Join(strings.Fields(strings.ToValidUTF8(string(b[:min(len(b), maxExcerpt)]), "")), " ")
	if len(b) > maxExcerpt {
		s += " …"
	}
	if s == "" {
		return "(empty body)"
	}
	return s
}
