package access

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fsnotify/fsnotify"
)

// maxPolicyFile bounds one policy file: policies are short, and a huge file is a mistake.
const maxPolicyFile = 4 << 20

// Policies is the live policy set: the built-in policies plus every *.cedar file of an
// operator's directory, replaced whole on Reload. A reload that fails keeps the set in
// force, so a typo in a file never opens (or closes) the kernel: the error says which
// file and line to fix.
type Policies struct {
	dir string
	cur atomic.Pointer[PolicySet]
	mu  sync.Mutex // one reload at a time

	// onReload, when set, hears every reload's outcome (the manager audits them).
	onReload func(*PolicySet, error)
	// watching, when set, is called once Watch watches the directory (for tests).
	watching func()
}

// LoadPolicies compiles the built-in policies and those of dir ("" for none). Unlike a
// reload, a first load that fails is an error: there is no set to keep.
func LoadPolicies(dir string) (*Policies, error) {
	p := &Policies{dir: dir}
	ps, err := p.compile()
	if err != nil {
		return nil, err
	}
	p.cur.Store(ps)
	return p, nil
}

// Current is the set in force.
func (p *Policies) Current() *PolicySet { return p.cur.Load() }

// Dir is the operator's policy directory, "" when there is none.
func (p *Policies) Dir() string { return p.dir }

// Reload reads the directory again. On error the set in force stays, and the error (a
// *PolicyError for a policy at fault) says why.
func (p *Policies) Reload() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	ps, err := p.compile()
	if err == nil {
		p.cur.Store(ps)
	}
	if p.onReload != nil {
		p.onReload(ps, err)
	}
	return err
}

func (p *Policies) compile() (*PolicySet, error) {
	files := []PolicyFile{{Name: builtinFile, Text: basePolicies}}
	if p.dir != "" {
		entries, err := os.ReadDir(p.dir)
		if err != nil {
			return nil, &PolicyError{File: p.dir, Msg: fmt.Sprintf("cannot read the policy directory: %v", err)}
		}
		for _, e := range entries {
			if !isPolicyFile(e.Name()) || e.IsDir() {
				continue
			}
			path := filepath.Join(p.dir, e.Name())
			info, err := os.Stat(path)
			if err != nil {
				return nil, &PolicyError{File: path, Msg: err.Error()}
			}
			if info.Size() > maxPolicyFile {
				return nil, &PolicyError{File: path, Msg: fmt.Sprintf("%d bytes is more than a policy file may hold (%d)", info.Size(), maxPolicyFile)}
			}
			text, err := os.ReadFile(path)
			if err != nil {
				return nil, &PolicyError{File: path, Msg: err.Error()}
			}
			files = append(files, PolicyFile{Name: path, Text: text})
		}
		slices.SortFunc(files[1:], func(a, b PolicyFile) int { return strings.Compare(a.Name, b.Name) })
	}
	return CompilePolicies(files...)
}

// isPolicyFile: *.cedar, not hidden (editors' swap and temporary files are).
func isPolicyFile(name string) bool {
	return strings.HasSuffix(name, ".cedar") && !strings.HasPrefix(name, ".")
}

// Watch reloads whenever a policy file of the directory changes, until ctx ends. Events
// are let settle for settle (100ms when 0) first, since an editor's save is several of
// them. Write policy files whole (to a temporary name, then rename): a file caught half
// written may parse, with its later policies missing, until the next event. Without a
// directory Watch just waits for ctx; callers can also Reload on SIGHUP instead.
func (p *Policies) Watch(ctx context.Context, settle time.Duration) error {
	if p.dir == "" {
		<-ctx.Done()
		return nil
	}
	if settle <= 0 {
		settle = 100 * time.Millisecond
	}
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return fmt.Errorf("access: watch %s: %w", p.dir, err)
	}
	defer w.Close()
	if err := w.Add(p.dir); err != nil {
		return fmt.Errorf("access: watch %s: %w", p.dir, err)
	}
	if p.watching != nil {
		p.watching()
	}
	t := time.NewTimer(time.Hour)
	t.Stop()
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-w.Events:
			if !ok {
				return nil
			}
			if isPolicyFile(filepath.Base(ev.Name)) {
				t.Reset(settle)
			}
		case err, ok := <-w.Errors:
			if !ok {
				return nil
			}
			// An overflow lost events: reload to be sure the set matches the files.
			_ = err
			t.Reset(settle)
		case <-t.C:
			_ = p.Reload() // the outcome goes to onReload; a failure keeps the set
		}
	}
}
