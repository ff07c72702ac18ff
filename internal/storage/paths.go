package storage

import (
	"path/filepath"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/aios-go/aios/api"
)

// Caps on what an agent may name. They keep one path within what every file system and
// both databases index comfortably, and stop a caller from making the kernel do
// unbounded work on a name.
const (
	maxPathBytes = 1024
	maxNameBytes = 255
	maxDepth     = 64
)

// normalizePath maps a path an agent sent to its canonical form inside the agent's
// namespace: "/a/b", with "/" the namespace root. A leading "/" means that root, not the
// host's, so "/notes.txt" and "notes.txt" name the same file; "." is dropped and ".."
// steps up, but a ".." that would leave the root is refused rather than clamped, because
// an agent that asks for "../../etc" has a bug it should hear about. Backslashes, control
// characters and invalid UTF-8 are refused for the same reason: they are never what an
// agent meant, and they make names that look alike but differ.
func normalizePath(p string) (string, error) {
	if len(p) > 4*maxPathBytes {
		return "", badPath(p, "is longer than %d bytes", maxPathBytes)
	}
	if !utf8.ValidString(p) {
		return "", badPath(p, "is not valid UTF-8")
	}
	for _, r := range p {
		switch {
		case r == '\\':
			return "", badPath(p, `contains a backslash; separate folders with "/"`)
		case r < 0x20 || r == 0x7f || (r >= 0x80 && r <= 0x9f):
			return "", badPath(p, "contains a control character (%U)", r)
		}
	}
	parts := make([]string, 0, 8)
	for _, c := range strings.Split(p, "/") {
		switch c {
		case "", ".":
			continue
		case "..":
			if len(parts) == 0 {
				return "", badPath(p, `climbs above the root with ".."; paths stay inside your namespace`)
			}
			parts = parts[:len(parts)-1]
			continue
		}
		if len(c) > maxNameBytes {
			return "", badPath(p, "has a name longer than %d bytes", maxNameBytes)
		}
		parts = append(parts, c)
	}
	if len(parts) > maxDepth {
		return "", badPath(p, "is nested deeper than %d folders", maxDepth)
	}
	out := "/" + strings.Join(parts, "/")
	// Checked on the result, not the input, so that normalising a normalised path never
	// fails: "a" (1 byte) becomes "/a" (2 bytes).
	if len(out) > maxPathBytes {
		return "", badPath(p, "is longer than %d bytes", maxPathBytes)
	}
	return out, nil
}

func badPath(p, format string, args ...any) error {
	if len(p) > 80 {
		p = p[:80] + "..."
	}
	e := api.Errorf(api.CallerBadRequest, format, args...)
	e.Message = "path " + quote(p) + " " + e.Message
	return e
}

func quote(s string) string { return strconv.Quote(s) }

// parentOf is the folder holding p; the root is its own parent.
func parentOf(p string) string {
	i := strings.LastIndexByte(p, '/')
	if i <= 0 {
		return "/"
	}
	return p[:i]
}

// joinPath puts a normalised path under a normalised base.
func joinPath(base, p string) string {
	if base == "/" {
		return p
	}
	if p == "/" {
		return base
	}
	return base + p
}

// relPath is the inverse of joinPath: p as seen from base ("/" when p is base).
func relPath(base, p string) string {
	if base == "/" {
		return p
	}
	if p == base {
		return "/"
	}
	return strings.TrimPrefix(p, base)
}

// below is the half-open range [lo, hi) of every path strictly below dir. Paths are
// compared byte-wise (SQLite's BINARY, PostgreSQL's "C" collation), and "0" is the byte
// after "/".
func below(dir string) (lo, hi string) {
	if dir == "/" {
		return "/", "0"
	}
	return dir + "/", dir + "0"
}

// within reports whether p is root or lies below it (both clean, absolute host paths).
func within(root, p string) bool {
	if root == "/" {
		return strings.HasPrefix(p, "/")
	}
	return p == root || strings.HasPrefix(p, root+string(filepath.Separator))
}
