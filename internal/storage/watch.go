package storage

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/fsnotify/fsnotify"
)

// watcher keeps the index of mounted host folders current. inotify watches one folder
// at a time, so every folder under a mounted root is watched, and folders created later
// are added as they appear. Symbolic links are neither followed nor indexed: one could
// lead out of the folder the operator allowed.
type watcher struct {
	m      *Manager
	w      *fsnotify.Watcher
	ctx    context.Context // cancelled by close: stops scans in progress
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu    sync.Mutex
	roots map[string]int // mounted real folder -> how many agents mount it
}

func newWatcher(m *Manager) (*watcher, error) {
	fw, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, internal(err, "start watching host folders")
	}
	ctx, cancel := context.WithCancel(context.Background())
	x := &watcher{m: m, w: fw, ctx: ctx, cancel: cancel, roots: map[string]int{}}
	x.wg.Add(1)
	go x.loop()
	return x, nil
}

// resume watches the folders agents had mounted before the kernel restarted, and brings
// their index up to date in the background: files may have changed while it was down.
func (x *watcher) resume(ctx context.Context) {
	rs, err := x.m.db.read().Query(ctx, `SELECT root, COUNT(*) FROM mounts WHERE host = 1 GROUP BY root`)
	if err != nil {
		x.m.log.Warn("cannot read mounted host folders; they are not watched", "err", err)
		return
	}
	var roots []string
	x.mu.Lock()
	for rs.Next() {
		var root string
		var n int64
		if rs.Scan(&root, &n) == nil && x.m.allowed(root) {
			x.roots[root] += int(n)
			roots = append(roots, root)
		}
	}
	x.mu.Unlock()
	rs.Close()
	x.wg.Add(1)
	go func() {
		defer x.wg.Done()
		for _, r := range roots {
			x.watchTree(r)
		}
	}()
}

// acquire counts one more mount of root and, if nothing watched it yet, watches and
// indexes it before returning, so a Retrieve right after Mount sees its files.
func (x *watcher) acquire(_ context.Context, root string) {
	x.mu.Lock()
	covered := x.coveredLocked(root)
	x.roots[root]++
	x.mu.Unlock()
	if !covered {
		x.watchTree(root)
	}
}

// release counts one mount of root less and stops watching the folders no mounted root
// covers any more. Their documents stay; a later mount re-checks them.
func (x *watcher) release(root string) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.roots[root]--; x.roots[root] <= 0 {
		delete(x.roots, root)
	}
	if x.coveredLocked(root) {
		return
	}
	for _, d := range x.w.WatchList() {
		if within(root, d) && !x.coveredLocked(d) {
			x.w.Remove(d)
		}
	}
}

func (x *watcher) coveredLocked(p string) bool {
	for r := range x.roots {
		if within(r, p) {
			return true
		}
	}
	return false
}

func (x *watcher) covered(p string) bool {
	x.mu.Lock()
	defer x.mu.Unlock()
	return x.coveredLocked(p)
}

func (x *watcher) close() {
	x.cancel()
	x.w.Close()
	x.wg.Wait()
}

func (x *watcher) loop() {
	defer x.wg.Done()
	for {
		select {
		case ev, ok := <-x.w.Events:
			if !ok {
				return
			}
			x.handle(ev)
		case err, ok := <-x.w.Errors:
			if !ok {
				return
			}
			x.m.log.Warn("watching host folders", "err", err)
		}
	}
}

func (x *watcher) handle(ev fsnotify.Event) {
	if strings.HasPrefix(filepath.Base(ev.Name), tempPrefix) || !x.covered(ev.Name) {
		return
	}
	var err error
	switch {
	case ev.Has(fsnotify.Create):
		st, serr := os.Lstat(ev.Name)
		if serr == nil && st.IsDir() {
			// Files may have landed in it before its watch was added; the walk finds them.
			x.watchTree(ev.Name)
			return
		}
		err = x.m.reindexHost(x.ctx, ev.Name)
	case ev.Has(fsnotify.Write):
		err = x.m.reindexHost(x.ctx, ev.Name)
	case ev.Has(fsnotify.Remove), ev.Has(fsnotify.Rename):
		err = x.m.dropHost(x.ctx, ev.Name, true)
	}
	if err != nil && x.ctx.Err() == nil {
		x.m.log.Warn("re-indexing a host file failed", "path", ev.Name, "err", err)
	}
}

// watchTree watches every folder under dir, indexes every file that changed since it
// was last indexed, and forgets documents of files that are gone.
func (x *watcher) watchTree(dir string) {
	seen := map[string]bool{}
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if x.ctx.Err() != nil {
			return filepath.SkipAll
		}
		if err != nil || strings.HasPrefix(d.Name(), tempPrefix) {
			return nil
		}
		switch {
		case d.IsDir():
			if err := x.w.Add(p); err != nil {
				x.m.log.Warn("cannot watch a host folder; its changes will not be indexed", "path", p, "err", err)
			}
		case d.Type().IsRegular():
			seen[p] = true
			if err := x.m.reindexHost(x.ctx, p); err != nil && x.ctx.Err() == nil {
				x.m.log.Warn("indexing a host file failed", "path", p, "err", err)
			}
		}
		return nil
	})
	if x.ctx.Err() != nil {
		return
	}
	lo, hi := below(dir)
	rs, err := x.m.db.read().Query(x.ctx, `SELECT path FROM docs WHERE ns = $1 AND path >= $2 AND path < $3`, hostNS, lo, hi)
	if err != nil {
		return
	}
	var gone []string
	for rs.Next() {
		var p string
		if rs.Scan(&p) == nil && !seen[p] {
			gone = append(gone, p)
		}
	}
	rs.Close()
	for _, p := range gone {
		if _, err := os.Lstat(p); errors.Is(err, fs.ErrNotExist) {
			x.m.dropHost(x.ctx, p, false)
		}
	}
}
