package agents

import (
	"encoding/json"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/aios-go/aios/api"
)

// maxScan bounds the folders of one root read when an agent is looked up by name.
const maxScan = 1000

// Resolver finds agent packages under the configured roots, and only there: a
// submitted agent_id is a path relative to a root, an absolute path inside one, or a
// package name. "..", symbolic links that lead out of a root and paths outside every
// root are refused before anything is read from them.
type Resolver struct {
	roots []string // absolute, cleaned
}

// NewResolver returns a resolver over dirs. A root that does not exist yet finds
// nothing until it does.
func NewResolver(dirs []string) (*Resolver, error) {
	r := &Resolver{}
	for _, d := range dirs {
		if strings.TrimSpace(d) == "" {
			continue
		}
		abs, err := filepath.Abs(d)
		if err != nil {
			return nil, err
		}
		r.roots = append(r.roots, abs)
	}
	return r, nil
}

// Roots are the folders agents are looked up in.
func (r *Resolver) Roots() []string { return append([]string(nil), r.roots...) }

// Resolve finds the package id names. A malformed id is caller_bad_request; one that
// names nothing under the roots (or something outside them) is caller_not_found.
func (r *Resolver) Resolve(id string) (*Package, error) {
	id = strings.TrimSpace(id)
	if id == "" {
		return nil, api.Errorf(api.CallerBadRequest, "agent_id is required: a folder under the kernel's agents dirs, or an agent's name")
	}
	if strings.ContainsAny(id, "\x00\\") {
		return nil, api.Errorf(api.CallerBadRequest, "agent_id %q has characters no agent folder has", id)
	}
	if len(r.roots) == 0 {
		return nil, api.Errorf(api.CallerNotFound, "no agents dirs are configured (agents.dirs), so no agent can be submitted")
	}
	if filepath.IsAbs(id) {
		p, err := filepath.EvalSymlinks(filepath.Clean(id))
		if err == nil {
			for _, root := range r.realRoots() {
				if within(root, p) {
					return Load(p)
				}
			}
		}
		return nil, api.Errorf(api.CallerNotFound, "agent %s is not a folder under the kernel's agents dirs %v", id, r.roots)
	}
	if !filepath.IsLocal(id) {
		return nil, api.Errorf(api.CallerBadRequest, "agent_id %q must name a folder under the agents dirs, without \"..\"", id)
	}
	for _, root := range r.realRoots() {
		p, err := filepath.EvalSymlinks(filepath.Join(root, id))
		if err != nil || !within(root, p) || !isPackage(p) {
			continue
		}
		return Load(p)
	}
	if !strings.ContainsRune(id, '/') {
		if p := r.byName(id); p != "" {
			return Load(p)
		}
	}
	return nil, api.Errorf(api.CallerNotFound, "no agent %q under the kernel's agents dirs %v (neither a folder there nor the name of one)", id, r.roots)
}

// realRoots are the roots with symbolic links resolved; those that do not exist are
// left out.
func (r *Resolver) realRoots() []string {
	var out []string
	for _, root := range r.roots {
		if p, err := filepath.EvalSymlinks(root); err == nil {
			out = append(out, p)
		}
	}
	return out
}

func isPackage(dir string) bool {
	for _, f := range []string{ManifestFile, ConfigFile} {
		if fi, err := os.Stat(filepath.Join(dir, f)); err == nil && fi.Mode().IsRegular() {
			return true
		}
	}
	return false
}

// byName looks for a package named name among each root's folders, in name order.
func (r *Resolver) byName(name string) string {
	for _, root := range r.realRoots() {
		entries, err := os.ReadDir(root)
		if err != nil {
			continue
		}
		sort.Slice(entries, func(i, j int) bool { return entries[i].Name() < entries[j].Name() })
		for i, e := range entries {
			if i >= maxScan {
				break
			}
			p, err := filepath.EvalSymlinks(filepath.Join(root, e.Name()))
			if err != nil || !within(root, p) || !isPackage(p) {
				continue
			}
			if packageName(p) == name {
				return p
			}
		}
	}
	return ""
}

// packageName reads just the name of the package in dir.
func packageName(dir string) string {
	for _, f := range []string{ManifestFile, ConfigFile} {
		b, err := readSmall(filepath.Join(dir, f))
		if err != nil {
			continue
		}
		var v struct {
			Name string `json:"name"`
		}
		if json.Unmarshal(b, &v) == nil {
			return strings.TrimSpace(v.Name)
		}
		return ""
	}
	return ""
}
