package agents

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/aios-go/aios/api"
)

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func writeJSON(t *testing.T, path string, v any) {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, path, string(b))
}

// aiosFolder writes an AIOS agent folder as Cerebrum lays one out.
func aiosFolder(t *testing.T, dir, name, code string) string {
	t.Helper()
	writeJSON(t, filepath.Join(dir, ConfigFile), map[string]any{
		"name":        name,
		"description": []string{"You help. ", "Briefly."},
		"tools":       []string{"example/arxiv"},
		"meta":        map[string]string{"author": "example", "version": "0.0.1", "license": "CC0"},
		"build":       map[string]string{"entry": "agent.py", "module": "TestAgent"},
	})
	writeFile(t, filepath.Join(dir, "agent.py"), code)
	writeFile(t, filepath.Join(dir, RequirementsFile), "# none needed\n\nrequests==2.32.0\n")
	return dir
}

func TestLoadAIOSFolder(t *testing.T) {
	dir := aiosFolder(t, t.TempDir(), "demo_agent", "class TestAgent: pass\n")
	p, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	real, _ := filepath.EvalSymlinks(dir)
	want := &Package{
		Dir: real, Kind: KindAIOS, Name: "demo_agent", Description: "You help. Briefly.",
		Tools: []string{"example/arxiv"}, Meta: Meta{Author: "example", Version: "0.0.1", License: "CC0"},
		Entry: filepath.Join(real, "agent.py"), Module: "TestAgent", Requirements: []string{"requests==2.32.0"},
	}
	if !reflect.DeepEqual(p, want) {
		t.Errorf("Load:\n got %+v\nwant %+v", p, want)
	}
}

func TestLoadManifest(t *testing.T) {
	dir := t.TempDir()
	writeJSON(t, filepath.Join(dir, ManifestFile), map[string]any{
		"name": "sh-agent", "command": []string{"sh", "-c", "echo hi"}, "env": map[string]string{"A": "1"},
	})
	// A config.json beside the manifest does not matter: the manifest wins.
	writeJSON(t, filepath.Join(dir, ConfigFile), map[string]any{"name": "other"})
	p, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if p.Kind != KindExec || p.Name != "sh-agent" || !filepath.IsAbs(p.Command[0]) || p.Command[2] != "echo hi" || p.Env["A"] != "1" {
		t.Errorf("Load: %+v", p)
	}
}

// TestLoadRefuses: every malformed package is a typed error naming what is wrong, and
// nothing outside the folder is taken as its entry or command.
func TestLoadRefuses(t *testing.T) {
	outside := t.TempDir()
	writeFile(t, filepath.Join(outside, "evil.py"), "class A: pass\n")
	cases := map[string]struct {
		files map[string]any // name -> JSON value, or string content
		link  [2]string      // symlink name -> target
		kind  api.Kind
	}{
		"no descriptor":  {files: map[string]any{"agent.py": "x"}, kind: api.CallerNotFound},
		"bad json":       {files: map[string]any{ConfigFile: "{"}, kind: api.CallerBadRequest},
		"no name":        {files: map[string]any{ConfigFile: map[string]any{"build": map[string]string{"entry": "a.py", "module": "A"}}, "a.py": ""}, kind: api.CallerBadRequest},
		"bad module":     {files: map[string]any{ConfigFile: map[string]any{"name": "x", "build": map[string]string{"entry": "a.py", "module": "os.system"}}, "a.py": ""}, kind: api.CallerBadRequest},
		"entry dotdot":   {files: map[string]any{ConfigFile: map[string]any{"name": "x", "build": map[string]string{"entry": "../evil.py", "module": "A"}}}, kind: api.CallerBadRequest},
		"entry absolute": {files: map[string]any{ConfigFile: map[string]any{"name": "x", "build": map[string]string{"entry": filepath.Join(outside, "evil.py"), "module": "A"}}}, kind: api.CallerBadRequest},
		"entry symlink out": {
			files: map[string]any{ConfigFile: map[string]any{"name": "x", "build": map[string]string{"entry": "a.py", "module": "A"}}},
			link:  [2]string{"a.py", filepath.Join(outside, "evil.py")}, kind: api.CallerBadRequest,
		},
		"entry missing":  {files: map[string]any{ConfigFile: map[string]any{"name": "x", "build": map[string]string{"entry": "a.py", "module": "A"}}}, kind: api.CallerBadRequest},
		"no command":     {files: map[string]any{ManifestFile: map[string]any{"name": "x"}}, kind: api.CallerBadRequest},
		"command dotdot": {files: map[string]any{ManifestFile: map[string]any{"name": "x", "command": []string{"../evil.py"}}}, kind: api.CallerBadRequest},
		"command absent": {files: map[string]any{ManifestFile: map[string]any{"name": "x", "command": []string{"no-such-program-aios-test"}}}, kind: api.CallerBadRequest},
		"bad env":        {files: map[string]any{ManifestFile: map[string]any{"name": "x", "command": []string{"sh"}, "env": map[string]string{"A=B": "1"}}}, kind: api.CallerBadRequest},
		"control name":   {files: map[string]any{ManifestFile: map[string]any{"name": "x\ny", "command": []string{"sh"}}}, kind: api.CallerBadRequest},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			for f, v := range c.files {
				if s, ok := v.(string); ok {
					writeFile(t, filepath.Join(dir, f), s)
				} else {
					writeJSON(t, filepath.Join(dir, f), v)
				}
			}
			if c.link[0] != "" {
				if err := os.Symlink(c.link[1], filepath.Join(dir, c.link[0])); err != nil {
					t.Fatal(err)
				}
			}
			p, err := Load(dir)
			if err == nil {
				t.Fatalf("loaded %+v", p)
			}
			if api.KindOf(err) != c.kind {
				t.Errorf("kind %s, want %s: %v", api.KindOf(err), c.kind, err)
			}
		})
	}
}

// TestResolverStaysInsideRoots: agents are found by folder or name under the roots;
// "..", absolute paths elsewhere and links out of a root are refused.
func TestResolverStaysInsideRoots(t *testing.T) {
	root := t.TempDir()
	outside := t.TempDir()
	aiosFolder(t, filepath.Join(root, "example", "academic_agent"), "academic_agent", "class TestAgent: pass\n")
	writeJSON(t, filepath.Join(root, "sh", ManifestFile), map[string]any{"name": "shell-agent", "command": []string{"sh"}})
	aiosFolder(t, filepath.Join(outside, "secret"), "secret", "class TestAgent: pass\n")
	if err := os.Symlink(filepath.Join(outside, "secret"), filepath.Join(root, "escape")); err != nil {
		t.Fatal(err)
	}
	r, err := NewResolver([]string{filepath.Join(t.TempDir(), "missing"), root})
	if err != nil {
		t.Fatal(err)
	}
	for id, want := range map[string]string{
		"example/academic_agent": "academic_agent",
		"sh":                     "shell-agent",
		"shell-agent":            "shell-agent", // by name
		filepath.Join(root, "example", "academic_agent"): "academic_agent",
	} {
		p, err := r.Resolve(id)
		if err != nil || p.Name != want {
			t.Errorf("Resolve(%q) = %+v, %v; want %s", id, p, err, want)
		}
	}
	for id, kind := range map[string]api.Kind{
		"":                                  api.CallerBadRequest,
		"../" + filepath.Base(outside):      api.CallerBadRequest,
		"example/../../x":                   api.CallerBadRequest,
		"a\\b":                              api.CallerBadRequest,
		"escape":                            api.CallerNotFound, // a link out of the root
		"secret":                            api.CallerNotFound, // its name is not under a root
		filepath.Join(outside, "secret"):    api.CallerNotFound,
		root + "/../" + filepath.Base(root): api.CallerNotFound, // the root itself is no agent
		"example":                           api.CallerNotFound, // a folder, not a package
		"nothing":                           api.CallerNotFound,
	} {
		p, err := r.Resolve(id)
		if api.KindOf(err) != kind {
			t.Errorf("Resolve(%q) = %+v, %v; want %s", id, p, err, kind)
		}
	}
	none, _ := NewResolver(nil)
	if _, err := none.Resolve("sh"); api.KindOf(err) != api.CallerNotFound {
		t.Errorf("no roots: %v", err)
	}
}
