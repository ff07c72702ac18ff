package builtin

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
)

// allowlist is the set of hosts http_fetch may reach. A rule is a host ("example.com",
// "127.0.0.1", "[::1]"), or "*.example.com" for every subdomain of example.com at any
// depth (not example.com itself), optionally with ":port". A rule without a port allows
// only the scheme's default port (80 for http, 443 for https): other ports of a host
// often serve other things (admin consoles, databases), so each must be allowed by name.
type allowlist []rule

type rule struct {
	raw    string
	host   string // lower case; for a wildcard, the part after "*."
	suffix bool
	port   string // "" means the scheme's default
}

// CheckAllowlist reports the first malformed rule of an http_fetch allowlist, for
// configuration to refuse it when it is loaded.
func CheckAllowlist(rules []string) error {
	_, err := parseAllowlist(rules)
	return err
}

func parseAllowlist(rules []string) (allowlist, error) {
	var out allowlist
	for _, raw := range rules {
		r, err := parseRule(strings.TrimSpace(raw))
		if err != nil {
			return nil, fmt.Errorf("http_fetch allowlist rule %q: %w", raw, err)
		}
		out = append(out, r)
	}
	return out, nil
}

func parseRule(s string) (rule, error) {
	r := rule{raw: s}
	switch {
	case s == "":
		return r, errors.New("empty")
	case strings.Contains(s, "/"):
		return r, errors.New(`a rule is a host with an optional port, as "example.com" or "*.example.com:8443", not a URL`)
	}
	host := s
	if i := strings.LastIndex(s, ":"); i >= 0 && !strings.HasSuffix(s, "]") {
		if strings.Count(s, ":") > 1 && !strings.HasPrefix(s, "[") {
			return r, errors.New(`write an IPv6 address in brackets, as "[::1]:8080"`)
		}
		h, port, err := net.SplitHostPort(s)
		if err != nil {
			return r, err
		}
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			return r, fmt.Errorf("port %q is not a number from 1 to 65535", port)
		}
		host, r.port = h, port
	}
	host = strings.TrimSuffix(strings.Trim(strings.ToLower(host), "[]"), ".")
	if rest, ok := strings.CutPrefix(host, "*."); ok {
		host, r.suffix = rest, true
	}
	if host == "" || strings.ContainsAny(host, "*[] @") {
		return r, errors.New(`a host may start with "*." and hold no other "*"`)
	}
	r.host = host
	return r, nil
}

// check says why u may not be fetched, or "" when a rule allows it.
func (a allowlist) check(u *url.URL) string {
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Sprintf("only http and https URLs are fetched, not %q", u.Scheme)
	}
	host := strings.TrimSuffix(strings.ToLower(u.Hostname()), ".")
	if host == "" {
		return "the URL has no host"
	}
	port := u.Port()
	if port == "" {
		port = map[string]string{"http": "80", "https": "443"}[u.Scheme]
	}
	var near *rule
	for i, r := range a {
		if !r.matchesHost(host) {
			continue
		}
		want := r.port
		if want == "" {
			want = map[string]string{"http": "80", "https": "443"}[u.Scheme]
		}
		if want == port {
			return ""
		}
		near = &a[i]
	}
	if near != nil {
		return fmt.Sprintf("rule %q allows %s on another port than %s; the allowlist would need %q", near.raw, host, port, net.JoinHostPort(host, port))
	}
	return fmt.Sprintf("host %s is not on the allowlist (%s)", host, a)
}

func (r rule) matchesHost(host string) bool {
	if r.suffix {
		return strings.HasSuffix(host, "."+r.host)
	}
	return host == r.host
}

// String lists the rules for messages, at most ten.
func (a allowlist) String() string {
	var q []string
	for i, r := range a {
		if i == 10 {
			q = append(q, fmt.Sprintf("and %d more", len(a)-i))
			break
		}
		q = append(q, strconv.Quote(r.raw))
	}
	return strings.Join(q, ", ")
}
