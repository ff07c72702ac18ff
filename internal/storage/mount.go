package storage

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"

	"github.com/aios-go/aios/api"
)

// view is what an agent's paths resolve against: its namespace root, a folder inside
// it, or a host folder.
type view struct {
	root string // as Mount reports it: "", "rel/dir" or "/real/host/dir"
	ns   string
	base string // the store path of the root ("/" or "/rel/dir"), or the real host folder
	host bool
}

// target is one resolved path.
type target struct {
	view
	rel  string // normalised, as the agent sees it
	path string // in the store (under base), or the real host path
}

func ownView(agent string) view { return view{ns: agentNS(agent), base: "/"} }

// Mount makes root the agent's root for every later call, and persists that choice.
//   - "" returns to the agent's own namespace (always there);
//   - a relative path ("projects/a") confines the agent to that folder of its
//     namespace, created if missing; this is what AIOS agents' mount(root_dir) means;
//   - an absolute path mounts that host folder, which must lie (after resolving
//     symbolic links) inside one of Config.HostRoots, else PolicyDenied. Its files are
//     read and written in place, indexed for Retrieve and watched for changes; writes
//     through the kernel also keep versions in the store.
func (m *Manager) Mount(ctx context.Context, agent, root string) (Mount, error) {
	if err := m.checkAgent(agent); err != nil {
		return Mount{}, err
	}
	var v view
	switch {
	case root == "":
		v = ownView(agent)
	case filepath.IsAbs(root):
		real, err := m.hostRoot(root)
		if err != nil {
			return Mount{}, err
		}
		v = view{root: real, ns: hostNS, base: real, host: true}
	default:
		rel, err := normalizePath(root)
		if err != nil {
			return Mount{}, err
		}
		v = ownView(agent)
		if rel != "/" {
			if _, err := m.storeCreateDir(ctx, target{view: v, rel: rel, path: rel}); err != nil {
				return Mount{}, err
			}
			v.root, v.base = rel[1:], rel
		}
	}
	old, err := m.viewOf(ctx, agent)
	if err != nil {
		return Mount{}, err
	}
	if v.host && m.host != nil {
		m.host.acquire(ctx, v.base)
	}
	if err := m.saveMount(ctx, agent, v); err != nil {
		if v.host && m.host != nil {
			m.host.release(v.base)
		}
		return Mount{}, err
	}
	m.mu.Lock()
	m.views[agent] = v
	m.mu.Unlock()
	if old.host && m.host != nil {
		m.host.release(old.base)
	}
	return Mount{Agent: agent, Root: v.root, Host: v.host}, nil
}

// CurrentMount reports the agent's root.
func (m *Manager) CurrentMount(ctx context.Context, agent string) (Mount, error) {
	if err := m.checkAgent(agent); err != nil {
		return Mount{}, err
	}
	v, err := m.viewOf(ctx, agent)
	if err != nil {
		return Mount{}, err
	}
	return Mount{Agent: agent, Root: v.root, Host: v.host}, nil
}

func (m *Manager) saveMount(ctx context.Context, agent string, v view) error {
	t, err := m.db.begin(ctx)
	if err != nil {
		return internal(err, "save mount")
	}
	defer t.Rollback()
	if v.root == "" {
		_, err = t.Exec(ctx, `DELETE FROM mounts WHERE agent = $1`, agent)
	} else {
		_, err = t.Exec(ctx, `INSERT INTO mounts (agent, root, host) VALUES ($1, $2, $3)
			ON CONFLICT (agent) DO UPDATE SET root = excluded.root, host = excluded.host`, agent, v.root, boolInt(v.host))
	}
	if err == nil {
		err = t.Commit()
	}
	return internal(err, "save mount")
}

// viewOf is the agent's current root, read from the database the first time. The cache
// assumes one kernel per store; kernels sharing a PostgreSQL database see each other's
// mounts after a restart.
func (m *Manager) viewOf(ctx context.Context, agent string) (view, error) {
	m.mu.Lock()
	v, ok := m.views[agent]
	m.mu.Unlock()
	if ok {
		return v, nil
	}
	var root string
	var host int64
	err := m.db.read().QueryRow(ctx, `SELECT root, host FROM mounts WHERE agent = $1`, agent).Scan(&root, &host)
	switch {
	case errors.Is(err, errNoRows):
		v = ownView(agent)
	case err != nil:
		return view{}, internal(err, "read mount")
	case host != 0:
		v = view{root: root, ns: hostNS, base: root, host: true}
	default:
		v = ownView(agent)
		v.root, v.base = root, "/"+root
	}
	m.mu.Lock()
	if cur, ok := m.views[agent]; ok {
		v = cur // a Mount got there first
	} else {
		m.views[agent] = v
	}
	m.mu.Unlock()
	return v, nil
}

// resolve turns an agent's path into a target under its current root.
func (m *Manager) resolve(ctx context.Context, agent, p string) (target, error) {
	if err := m.checkAgent(agent); err != nil {
		return target{}, err
	}
	v, err := m.viewOf(ctx, agent)
	if err != nil {
		return target{}, err
	}
	rel, err := normalizePath(p)
	if err != nil {
		return target{}, err
	}
	t := target{view: v, rel: rel}
	if !v.host {
		t.path = joinPath(v.base, rel)
		return t, nil
	}
	t.path, err = m.hostPath(v.base, rel)
	return t, err
}

// hostRoot checks a folder an agent asks to mount and returns its real path.
func (m *Manager) hostRoot(root string) (string, error) {
	if len(m.roots) == 0 {
		return "", api.Errorf(api.PolicyDenied, "mounting host folders is not enabled; the operator lists the folders agents may mount in storage host_roots")
	}
	real, err := filepath.EvalSymlinks(filepath.Clean(root))
	if errors.Is(err, os.ErrNotExist) {
		return "", api.Errorf(api.CallerNotFound, "host folder %q does not exist", root)
	}
	if err != nil {
		return "", api.Wrap(api.CallerBadRequest, err, "host folder %q cannot be resolved", root)
	}
	if !m.allowed(real) {
		return "", api.Errorf(api.PolicyDenied, "host folder %q (really %q) is outside the folders agents may mount (%s)", root, real, strings.Join(m.roots, ", "))
	}
	st, err := os.Stat(real)
	if err != nil {
		return "", api.Wrap(api.CallerBadRequest, err, "host folder %q cannot be read", root)
	}
	if !st.IsDir() {
		return "", api.Errorf(api.CallerBadRequest, "%q is a file; mount a folder", root)
	}
	return real, nil
}

func (m *Manager) allowed(real string) bool {
	for _, r := range m.roots {
		if within(r, real) {
			return true
		}
	}
	return false
}

// hostPath maps rel into the mounted host folder root. Symbolic links are resolved in
// the part of the path that exists and the result must stay inside root, so a link
// cannot lead an agent out of the folder it was given. (A link swapped in between this
// check and the file's use can still escape; host folders are meant for trusted data.)
func (m *Manager) hostPath(root, rel string) (string, error) {
	if !m.allowed(root) {
		return "", api.Errorf(api.PolicyDenied, "your mounted host folder %q is no longer allowed by the kernel's configuration; Mount \"\" to return to your namespace", root)
	}
	p := filepath.Join(root, filepath.FromSlash(rel))
	real, err := resolveExisting(p)
	if errors.Is(err, errDangling) {
		return "", api.Errorf(api.PolicyDenied, "path %q goes through a symbolic link to nothing; the kernel does not follow it", rel)
	}
	if err != nil {
		return "", api.Wrap(api.CallerBadRequest, err, "path %q cannot be resolved in the mounted folder", rel)
	}
	if !within(root, real) {
		return "", api.Errorf(api.PolicyDenied, "path %q leads outside the mounted folder through a symbolic link", rel)
	}
	return real, nil
}

// resolveExisting resolves symbolic links in the longest existing prefix of p and
// appends the rest unchanged. A link whose target is missing is refused: writing through
// it would create that target, wherever it is.
func resolveExisting(p string) (string, error) {
	real, err := filepath.EvalSymlinks(p)
	if err == nil {
		return real, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return "", err
	}
	dir, name := filepath.Split(p)
	dir = filepath.Clean(dir)
	if dir == p {
		return p, nil
	}
	parent, err := resolveExisting(dir)
	if err != nil {
		return "", err
	}
	out := filepath.Join(parent, name)
	if st, err := os.Lstat(out); err == nil && st.Mode()&os.ModeSymlink != 0 {
		return "", errDangling
	}
	return out, nil
}

var errDangling = errors.New("a symbolic link on the way points to nothing")

func boolInt(b bool) int64 {
	if b {
		return 1
	}
	return 0
}
