// Package agents is the kernel's agent runtime: it loads agent packages (AIOS's agent
// folders and executables with a small manifest), runs each as a supervised child
// process pointed at the kernel, and keeps its status, logs and result. The kernel's
// HTTP routes (internal/server/routes_agents.go) and `aios agents run` drive it.
//
// A run's process is its own process group: cancel, timeout and shutdown signal the
// whole group (SIGTERM, then SIGKILL), so what the agent started dies with it. Its
// syscalls are one program of the kernel's scheduler: the program id travels in the
// child's environment (AIOS_PROGRAM), and the Cancel hook lets the kernel end the
// program's in-flight calls.
package agents

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/aios-go/aios/api"
)

// The files that make a folder an agent package.
const (
	// ConfigFile is AIOS's agent description: name, description, tools, meta and build
	// (the entry file and the class in it).
	ConfigFile = "config.json"
	// ManifestFile describes any executable as an agent: {name, command, env}. When a
	// folder has both, the manifest wins.
	ManifestFile = "aios-agent.json"
	// RequirementsFile lists an AIOS agent's Python dependencies. The runtime reads and
	// reports it; it installs nothing.
	RequirementsFile = "meta_requirements.txt"
)

// Kind is how a package is started.
type Kind string

const (
	KindAIOS Kind = "aios" // python3 runs the launcher, which runs the entry's class
	KindExec Kind = "exec" // the manifest's command
)

// maxDescriptor bounds config.json, aios-agent.json and meta_requirements.txt.
const maxDescriptor = 1 << 20

// Meta is config.json's meta section.
type Meta struct {
	Author  string `json:"author,omitempty"`
	Version string `json:"version,omitempty"`
	License string `json:"license,omitempty"`
}

// Package is a loaded agent package.
type Package struct {
	Dir         string // absolute, symlinks resolved
	Kind        Kind
	Name        string
	Description string
	Tools       []string
	Meta        Meta
	// AIOS folders: the entry file (absolute) and the class it defines.
	Entry  string
	Module string
	// Requirements are meta_requirements.txt's lines, comments and blanks left out.
	Requirements []string
	// Executables: the command (its program resolved to a path) and its environment.
	Command []string
	Env     map[string]string
}

// aiosConfig is config.json as AIOS and Cerebrum write it. description is a string or a
// list of strings (joined); tools are names or paths.
type aiosConfig struct {
	Name        string          `json:"name"`
	Description json.RawMessage `json:"description"`
	Tools       []any           `json:"tools"`
	Meta        Meta            `json:"meta"`
	Build       struct {
		Entry  string `json:"entry"`
		Module string `json:"module"`
	} `json:"build"`
}

// manifest is aios-agent.json.
type manifest struct {
	Name        string            `json:"name"`
	Description string            `json:"description"`
	Command     []string          `json:"command"`
	Env         map[string]string `json:"env"`
}

var pyIdent = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// Load reads the agent package in dir.
func Load(dir string) (*Package, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, api.Wrap(api.CallerBadRequest, err, "agent folder %q", dir)
	}
	real, err := filepath.EvalSymlinks(abs)
	if err != nil {
		return nil, api.Wrap(api.CallerNotFound, err, "agent folder %s", abs)
	}
	if fi, err := os.Stat(real); err != nil || !fi.IsDir() {
		return nil, api.Errorf(api.CallerNotFound, "agent folder %s is not a directory", abs)
	}
	if _, err := os.Stat(filepath.Join(real, ManifestFile)); err == nil {
		return loadManifest(real)
	}
	if _, err := os.Stat(filepath.Join(real, ConfigFile)); err == nil {
		return loadAIOS(real)
	}
	return nil, api.Errorf(api.CallerNotFound, "%s is not an agent package: it has neither %s (AIOS's agent folder) nor %s (an executable's manifest)", abs, ConfigFile, ManifestFile)
}

func readSmall(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxDescriptor+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxDescriptor {
		return nil, fmt.Errorf("%s is larger than %d bytes", path, maxDescriptor)
	}
	return b, nil
}

func loadAIOS(dir string) (*Package, error) {
	b, err := readSmall(filepath.Join(dir, ConfigFile))
	if err != nil {
		return nil, api.Wrap(api.CallerBadRequest, err, "agent %s", dir)
	}
	var c aiosConfig
	if err := json.Unmarshal(b, &c); err != nil {
		return nil, api.Wrap(api.CallerBadRequest, err, "%s is not valid JSON", filepath.Join(dir, ConfigFile))
	}
	p := &Package{Dir: dir, Kind: KindAIOS, Name: strings.TrimSpace(c.Name), Meta: c.Meta}
	if err := checkName(p.Name, filepath.Join(dir, ConfigFile)); err != nil {
		return nil, err
	}
	p.Description = description(c.Description)
	for _, t := range c.Tools {
		if s, ok := t.(string); ok {
			p.Tools = append(p.Tools, s)
		} else if b, err := json.Marshal(t); err == nil {
			p.Tools = append(p.Tools, string(b))
		}
	}
	// Cerebrum's packager defaults: agent.py defining Agent.
	entry, module := c.Build.Entry, c.Build.Module
	if entry == "" {
		entry = "agent.py"
	}
	if module == "" {
		module = "Agent"
	}
	if !pyIdent.MatchString(module) {
		return nil, api.Errorf(api.CallerBadRequest, "%s: build.module %q is not a Python class name", filepath.Join(dir, ConfigFile), module)
	}
	path, err := inside(dir, entry)
	if err != nil {
		return nil, api.Wrap(api.CallerBadRequest, err, "%s: build.entry", filepath.Join(dir, ConfigFile))
	}
	if fi, err := os.Stat(path); err != nil || !fi.Mode().IsRegular() {
		return nil, api.Errorf(api.CallerBadRequest, "%s: build.entry %q is not a file in the agent folder", filepath.Join(dir, ConfigFile), entry)
	}
	p.Entry, p.Module = path, module
	if b, err := readSmall(filepath.Join(dir, RequirementsFile)); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "#") {
				p.Requirements = append(p.Requirements, line)
			}
		}
	} else if !os.IsNotExist(err) {
		return nil, api.Wrap(api.CallerBadRequest, err, "agent %s", dir)
	}
	return p, nil
}

func loadManifest(dir string) (*Package, error) {
	file := filepath.Join(dir, ManifestFile)
	b, err := readSmall(file)
	if err != nil {
		return nil, api.Wrap(api.CallerBadRequest, err, "agent %s", dir)
	}
	var m manifest
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, api.Wrap(api.CallerBadRequest, err, "%s is not valid JSON", file)
	}
	p := &Package{Dir: dir, Kind: KindExec, Name: strings.TrimSpace(m.Name), Description: m.Description, Env: m.Env}
	if err := checkName(p.Name, file); err != nil {
		return nil, err
	}
	if len(m.Command) == 0 || m.Command[0] == "" {
		return nil, api.Errorf(api.CallerBadRequest, "%s: command is required, e.g. [\"node\", \"agent.mjs\"]", file)
	}
	for k, v := range m.Env {
		if k == "" || strings.ContainsAny(k, "=\x00") || strings.ContainsRune(v, 0) {
			return nil, api.Errorf(api.CallerBadRequest, "%s: env has an invalid variable %q", file, k)
		}
	}
	prog := m.Command[0]
	switch {
	case filepath.IsAbs(prog):
	case strings.ContainsRune(prog, '/'):
		// A path in the folder ("./run.sh", "bin/agent"): it must stay inside it.
		if prog, err = inside(dir, prog); err != nil {
			return nil, api.Wrap(api.CallerBadRequest, err, "%s: command", file)
		}
	default:
		if prog, err = exec.LookPath(prog); err != nil {
			return nil, api.Wrap(api.CallerBadRequest, err, "%s: command %q is not on the kernel's PATH", file, m.Command[0])
		}
	}
	p.Command = append([]string{prog}, m.Command[1:]...)
	return p, nil
}

func checkName(name, file string) error {
	if name == "" {
		return api.Errorf(api.CallerBadRequest, "%s: name is required", file)
	}
	if len(name) > 128 || strings.IndexFunc(name, func(r rune) bool { return r < ' ' || r == 0x7f }) >= 0 {
		return api.Errorf(api.CallerBadRequest, "%s: name %q must be at most 128 printable characters", file, name)
	}
	return nil
}

func description(raw json.RawMessage) string {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	var parts []string
	if json.Unmarshal(raw, &parts) == nil {
		return strings.Join(parts, "")
	}
	return ""
}

// inside resolves rel against dir and refuses anything that leaves it, by ".." or by a
// symbolic link.
func inside(dir, rel string) (string, error) {
	if !filepath.IsLocal(rel) {
		return "", fmt.Errorf("%q must be a path inside the agent folder", rel)
	}
	p, err := filepath.EvalSymlinks(filepath.Join(dir, rel))
	if err != nil {
		return "", err
	}
	if !within(dir, p) {
		return "", fmt.Errorf("%q leads outside the agent folder", rel)
	}
	return p, nil
}

// within reports whether p lies strictly under root (both cleaned, absolute).
func within(root, p string) bool {
	rel, err := filepath.Rel(root, p)
	return err == nil && rel != "." && filepath.IsLocal(rel)
}
