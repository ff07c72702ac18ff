package storage

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/aios-go/aios/api"
)

// Result is one storage syscall's outcome: the text AIOS agents read as
// response_message, and the typed values behind it for the REST surface and the SDK.
type Result struct {
	Text     string
	Mount    *Mount
	Info     *FileInfo
	Version  *Version
	Files    []FileInfo
	Versions []Version
	Hits     []Hit
	Share    *Share
	// Content is an opened file for the REST read ("open"), streamed by the caller, who
	// closes it.
	Content io.ReadCloser
}

// Message is what AIOS's StorageResponse carries in response_message.
func (r *Result) Message() string { return r.Text }

// Extra storage operations of the REST surface (/v1/storage), beside AIOS's.
const (
	OpOpen     = "open"     // read, streamed: Result.Content
	OpVersions = "versions" // a file's history
	OpUnshare  = "unshare"  // revoke a share link by its token (params.content)
)

// Syscall runs one storage operation as AIOS's SDK and kernel name it, with its params
// in either spelling (api.StorageParams). It is what the kernel's storage module runs
// for every storage syscall, from /query and from /v1/storage alike.
func (m *Manager) Syscall(ctx context.Context, agent, op string, p *api.StorageParams) (*Result, error) {
	if p == nil {
		p = &api.StorageParams{}
	}
	path := p.Target()
	needPath := func() error {
		if path == "" {
			return api.Errorf(api.CallerBadRequest, "%s needs a path: params.file_path (or dir_path)", op)
		}
		return nil
	}
	switch op {
	case api.StorageMount:
		mt, err := m.Mount(ctx, agent, p.MountRoot())
		if err != nil {
			return nil, err
		}
		root := mt.Root
		if root == "" {
			root = "/"
		}
		return &Result{Text: fmt.Sprintf("mounted %s as the root of agent %s", root, agent), Mount: &mt}, nil
	case api.StorageCreateFile:
		if err := needPath(); err != nil {
			return nil, err
		}
		info, err := m.CreateFile(ctx, agent, path)
		if err != nil {
			return nil, err
		}
		return &Result{Text: fmt.Sprintf("file %s is ready (%d bytes)", info.Path, info.Size), Info: &info}, nil
	case api.StorageCreateDir:
		if err := needPath(); err != nil {
			return nil, err
		}
		info, err := m.CreateDir(ctx, agent, path)
		if err != nil {
			return nil, err
		}
		return &Result{Text: fmt.Sprintf("folder %s is ready", info.Path), Info: &info}, nil
	case api.StorageWrite:
		if err := needPath(); err != nil {
			return nil, err
		}
		if p.Content == nil {
			return nil, api.Errorf(api.CallerBadRequest, "write needs params.content (a string; an empty string empties the file)")
		}
		v, err := m.Write(ctx, agent, path, strings.NewReader(*p.Content))
		if err != nil {
			return nil, err
		}
		return &Result{Text: fmt.Sprintf("wrote %d bytes to %s (version %d)", v.Size, path, v.N), Version: &v}, nil
	case api.StorageRead, OpOpen:
		if err := needPath(); err != nil {
			return nil, err
		}
		rctx := ctx
		if op == OpOpen {
			// The reader outlives the syscall, whose context ends with it: the caller
			// streams it afterwards and ends it by closing it.
			rctx = context.WithoutCancel(ctx)
		}
		rc, info, err := m.Read(rctx, agent, path)
		if err != nil {
			return nil, err
		}
		if op == OpOpen {
			return &Result{Info: &info, Content: rc}, nil
		}
		defer rc.Close()
		b, err := io.ReadAll(rc)
		if err != nil {
			return nil, internal(err, "read "+path)
		}
		return &Result{Text: string(b), Info: &info}, nil
	case api.StorageDelete:
		if err := needPath(); err != nil {
			return nil, err
		}
		if err := m.Delete(ctx, agent, path); err != nil {
			return nil, err
		}
		return &Result{Text: fmt.Sprintf("deleted %s", path)}, nil
	case api.StorageList:
		if path == "" {
			path = "/"
		}
		files, err := m.List(ctx, agent, path)
		if err != nil {
			return nil, err
		}
		var b strings.Builder
		for _, f := range files {
			if f.Dir {
				fmt.Fprintf(&b, "%s/\n", f.Path)
			} else {
				fmt.Fprintf(&b, "%s\t%d bytes\tversion %d\n", f.Path, f.Size, f.Version)
			}
		}
		return &Result{Text: b.String(), Files: files}, nil
	case api.StorageRetrieve:
		hits, err := m.Retrieve(ctx, agent, Query{Text: p.QueryText, K: p.Limit(), Keywords: p.Keywords})
		if err != nil {
			return nil, err
		}
		var b strings.Builder
		for i, h := range hits {
			fmt.Fprintf(&b, "%d. %s (score %.4f)\n%s\n\n", i+1, h.Path, h.Score, h.Snippet)
		}
		if len(hits) == 0 {
			b.WriteString("no file matches")
		}
		return &Result{Text: strings.TrimRight(b.String(), "\n"), Hits: hits}, nil
	case api.StorageRollback:
		if err := needPath(); err != nil {
			return nil, err
		}
		to, err := rollbackTarget(p)
		if err != nil {
			return nil, err
		}
		v, err := m.Rollback(ctx, agent, path, to)
		if err != nil {
			return nil, err
		}
		return &Result{Text: fmt.Sprintf("rolled %s back: version %d now holds the content of the chosen version", path, v.N), Version: &v}, nil
	case OpVersions:
		if err := needPath(); err != nil {
			return nil, err
		}
		vs, err := m.Versions(ctx, agent, path)
		if err != nil {
			return nil, err
		}
		var b strings.Builder
		for _, v := range vs {
			fmt.Fprintf(&b, "version %d\t%s\t%s\t%d bytes\n", v.N, v.Time.UTC().Format(time.RFC3339), v.Change, v.Size)
		}
		return &Result{Text: b.String(), Versions: vs}, nil
	case api.StorageShare:
		if err := needPath(); err != nil {
			return nil, err
		}
		var ttl time.Duration
		if p.ExpiresIn != nil {
			if *p.ExpiresIn <= 0 {
				return nil, api.Errorf(api.CallerBadRequest, "params.expires_in is in seconds and must be positive, got %d", *p.ExpiresIn)
			}
			ttl = time.Duration(*p.ExpiresIn) * time.Second
		}
		sh, err := m.Share(ctx, agent, path, ttl)
		if err != nil {
			return nil, err
		}
		return &Result{Text: "/shared/" + sh.Token, Share: &sh}, nil
	case OpUnshare:
		token := ""
		if p.Content != nil {
			token = *p.Content
		}
		if err := m.Unshare(ctx, agent, token); err != nil {
			return nil, err
		}
		return &Result{Text: "the link is revoked"}, nil
	}
	return nil, api.Errorf(api.CallerBadRequest, "unknown storage operation_type %q: expected mount, create_file, create_dir, write, read, delete, list, retrieve, rollback or share", op)
}

// rollbackTarget reads rollback's target: n versions back, or the version current at
// an ISO 8601 time.
func rollbackTarget(p *api.StorageParams) (RollbackTarget, error) {
	if p.N != nil {
		if *p.N <= 0 {
			return RollbackTarget{}, api.Errorf(api.CallerBadRequest, "params.n counts versions back and must be at least 1, got %d", *p.N)
		}
		return RollbackTarget{N: int(*p.N)}, nil
	}
	if p.Time != "" {
		for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02 15:04:05", "2006-01-02"} {
			if t, err := time.Parse(layout, p.Time); err == nil {
				return RollbackTarget{Time: t}, nil
			}
		}
		return RollbackTarget{}, api.Errorf(api.CallerBadRequest, "params.time %q is not an ISO 8601 time such as 2026-12-01T10:00:00Z", p.Time)
	}
	return RollbackTarget{N: 1}, nil
}
