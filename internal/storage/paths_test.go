package storage

import (
	"path"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aios-go/aios/api"
)

func TestNormalizePath(t *testing.T) {
	ok := map[string]string{
		"":              "/",
		"/":             "/",
		"a":             "/a",
		"/a/b/":         "/a/b",
		"a//b/./c":      "/a/b/c",
		"a/b/../c":      "/a/c",
		"/ünï cödé.txt": "/ünï cödé.txt",
		"a/..":          "/",
	}
	for in, want := range ok {
		got, err := normalizePath(in)
		if err != nil || got != want {
			t.Errorf("normalizePath(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	bad := []string{"..", "/..", "a/../..", "../a", "a\x00", "a\tb", "a\x7f", "a\u0085", "a\\b", "\xc3", strings.Repeat("x", 256),
		strings.Repeat("d/", maxDepth+1), strings.Repeat("abcdefgh/", 120)}
	for _, in := range bad {
		if _, err := normalizePath(in); api.KindOf(err) != api.CallerBadRequest {
			t.Errorf("normalizePath(%q) = %v, want a bad request", in, err)
		}
	}
}

// FuzzNormalize checks what confinement rests on: a normalised path is absolute, clean,
// has no ".." and no control bytes, stays below any root it is joined to, and
// normalises to itself.
func FuzzNormalize(f *testing.F) {
	for _, s := range []string{"", "/", "a/b", "../x", "a/../../b", "./a//b/", "a\x00b", "é/../ü", strings.Repeat("a/", 70)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		out, err := normalizePath(in)
		if err != nil {
			return
		}
		if !strings.HasPrefix(out, "/") || path.Clean(out) != out || len(out) > maxPathBytes {
			t.Fatalf("%q -> %q: not a clean absolute path within the caps", in, out)
		}
		for _, c := range strings.Split(out[1:], "/") {
			if c == ".." || c == "." || (c == "" && out != "/") {
				t.Fatalf("%q -> %q: component %q", in, out, c)
			}
		}
		for _, r := range out {
			if r < 0x20 || r == 0x7f || r == '\\' {
				t.Fatalf("%q -> %q: contains %q", in, out, r)
			}
		}
		root := "/srv/agent"
		if j := filepath.Join(root, out); j != root && !strings.HasPrefix(j, root+"/") {
			t.Fatalf("%q -> %q escapes %s as %s", in, out, root, j)
		}
		again, err := normalizePath(out)
		if err != nil || again != out {
			t.Fatalf("not idempotent: %q -> %q -> %q, %v", in, out, again, err)
		}
	})
}
