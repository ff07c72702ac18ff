package server

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/aios-go/aios/api"
	"github.com/aios-go/aios/internal/kernel"
	"github.com/aios-go/aios/internal/sched"
	"github.com/aios-go/aios/internal/storage"
)

// SharedFiles opens files by share token, for GET /shared/{token}.
type SharedFiles interface {
	OpenShared(ctx context.Context, token string) (io.ReadCloser, storage.FileInfo, error)
}

// maxUpload bounds a PUT /v1/storage/files body; the storage module refuses files over
// its own (smaller, configurable) limit with a clear error.
const maxUpload = 64 << 20

// routesStorage is the plain REST surface over the storage module, for clients that do
// not speak AIOS's /query: every route is one storage syscall, scheduled and timed like
// any other. The agent is X-AIOS-Agent.
func (s *Server) routesStorage() {
	s.mux.HandleFunc("GET /v1/storage/files/{path...}", s.storageOpen)
	s.mux.HandleFunc("PUT /v1/storage/files/{path...}", s.storageWrite)
	s.mux.HandleFunc("DELETE /v1/storage/files/{path...}", s.storageOp(api.StorageDelete, http.StatusNoContent))
	s.mux.HandleFunc("GET /v1/storage/list/{path...}", s.storageOp(api.StorageList, http.StatusOK))
	s.mux.HandleFunc("GET /v1/storage/versions/{path...}", s.storageOp(storage.OpVersions, http.StatusOK))
	s.mux.HandleFunc("POST /v1/storage/rollback/{path...}", s.storageOp(api.StorageRollback, http.StatusOK))
	s.mux.HandleFunc("POST /v1/storage/shares/{path...}", s.storageOp(api.StorageShare, http.StatusCreated))
	s.mux.HandleFunc("DELETE /v1/storage/shares/{token}", s.storageUnshare)
	s.mux.HandleFunc("POST /v1/storage/retrieve", s.storageOp(api.StorageRetrieve, http.StatusOK))
	s.mux.HandleFunc("GET /shared/{token}", s.sharedFile)
}

// storageAgent is the caller's agent; the REST surface has no anonymous agent, since
// every agent's files are its own.
func storageAgent(r *http.Request) (string, error) {
	a := strings.TrimSpace(r.Header.Get(api.HeaderAgent))
	if a == "" {
		return "", api.Errorf(api.CallerBadRequest, "the %s header is required: storage is kept per agent", api.HeaderAgent)
	}
	return a, nil
}

// storageCall runs one storage syscall for a REST route.
func (s *Server) storageCall(r *http.Request, op string, p *api.StorageParams) (*storage.Result, error) {
	agent, err := storageAgent(r)
	if err != nil {
		return nil, err
	}
	if p.Owner == "" {
		p.Owner = r.URL.Query().Get("owner") // another agent's namespace (docs/security.md)
	}
	res, sc, err := s.k.Do(r.Context(), kernel.Call{
		Agent: agent, Program: r.Header.Get(api.HeaderSession), Module: sched.Storage, Op: op, Args: p,
	})
	noteSyscall(r.Context(), sc)
	if err != nil {
		return nil, err
	}
	return res.(*storage.Result), nil
}

// storageOp serves the routes whose reply is JSON built from the result.
func (s *Server) storageOp(op string, status int) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		p := &api.StorageParams{Path: "/" + r.PathValue("path")}
		switch op {
		case api.StorageRetrieve:
			var q api.StorageRetrieveRequest
			if err := s.decodeBody(w, r, &q); err != nil {
				writeError(w, err)
				return
			}
			k := api.FlexInt(q.K)
			p = &api.StorageParams{QueryText: q.QueryText, K: &k, Keywords: q.Keywords}
		case api.StorageRollback:
			var q api.StorageRollbackRequest
			if err := s.decodeOptional(w, r, &q); err != nil {
				writeError(w, err)
				return
			}
			if q.N != 0 {
				n := api.FlexInt(q.N)
				p.N = &n
			}
			p.Time = q.Time
		case api.StorageShare:
			var q api.StorageShareRequest
			if err := s.decodeOptional(w, r, &q); err != nil {
				writeError(w, err)
				return
			}
			if q.ExpiresIn != 0 {
				e := api.FlexInt(q.ExpiresIn)
				p.ExpiresIn = &e
			}
		}
		res, err := s.storageCall(r, op, p)
		if err != nil {
			writeError(w, err)
			return
		}
		var body any
		switch op {
		case api.StorageDelete:
			w.WriteHeader(status)
			return
		case api.StorageList:
			out := api.StorageListing{Files: []api.StorageFile{}}
			for _, f := range res.Files {
				out.Files = append(out.Files, apiFile(f))
			}
			body = out
		case storage.OpVersions:
			out := api.StorageHistory{Versions: []api.StorageVersion{}}
			for _, v := range res.Versions {
				out.Versions = append(out.Versions, apiVersion(v))
			}
			body = out
		case api.StorageRollback:
			body = apiVersion(*res.Version)
		case api.StorageShare:
			body = api.StorageLink{Token: res.Share.Token, URL: shareURL(r, res.Share.Token), Path: res.Share.Path, Expires: res.Share.Expires}
		case api.StorageRetrieve:
			out := api.StorageResults{Hits: []api.StorageHit{}}
			for _, h := range res.Hits {
				out.Hits = append(out.Hits, api.StorageHit{Path: h.Path, Score: h.Score, Snippet: h.Snippet})
			}
			body = out
		}
		writeJSON(w, status, body)
	}
}

// decodeOptional decodes a JSON body that may be absent.
func (s *Server) decodeOptional(w http.ResponseWriter, r *http.Request, v any) error {
	if r.ContentLength == 0 {
		return nil
	}
	return s.decodeBody(w, r, v)
}

func (s *Server) storageOpen(w http.ResponseWriter, r *http.Request) {
	res, err := s.storageCall(r, storage.OpOpen, &api.StorageParams{Path: "/" + r.PathValue("path")})
	if err != nil {
		writeError(w, err)
		return
	}
	serveContent(w, res.Content, *res.Info)
}

func (s *Server) storageWrite(w http.ResponseWriter, r *http.Request) {
	data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxUpload))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			writeError(w, api.Errorf(api.CallerTooLarge, "the file exceeds the upload limit of %d bytes", mbe.Limit))
			return
		}
		writeError(w, api.Wrap(api.CallerBadRequest, err, "reading the request body failed"))
		return
	}
	content := string(data)
	res, err := s.storageCall(r, api.StorageWrite, &api.StorageParams{Path: "/" + r.PathValue("path"), Content: &content})
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, apiVersion(*res.Version))
}

func (s *Server) storageUnshare(w http.ResponseWriter, r *http.Request) {
	token := r.PathValue("token")
	if _, err := s.storageCall(r, storage.OpUnshare, &api.StorageParams{Content: &token}); err != nil {
		writeError(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// sharedFile serves a share link to whoever holds it: the token is the credential.
func (s *Server) sharedFile(w http.ResponseWriter, r *http.Request) {
	if s.opts.Shared == nil {
		writeError(w, errNotEnabledStorage)
		return
	}
	rc, info, err := s.opts.Shared.OpenShared(r.Context(), r.PathValue("token"))
	if err != nil {
		writeError(w, err)
		return
	}
	serveContent(w, rc, info)
}

var errNotEnabledStorage = api.Errorf(api.PolicyNotEnabled, "the storage module is not enabled in this kernel")

// serveContent streams a file with its size and version, closing rc.
func serveContent(w http.ResponseWriter, rc io.ReadCloser, info storage.FileInfo) {
	defer rc.Close()
	h := w.Header()
	h.Set("Content-Type", "application/octet-stream")
	h.Set("Content-Length", strconv.FormatInt(info.Size, 10))
	if info.SHA256 != "" {
		h.Set("ETag", `"`+info.SHA256+`"`)
	}
	if info.Version > 0 {
		h.Set("X-AIOS-Version", strconv.Itoa(info.Version))
	}
	if !info.Modified.IsZero() {
		h.Set("Last-Modified", info.Modified.UTC().Format(http.TimeFormat))
	}
	w.WriteHeader(http.StatusOK)
	_, _ = io.Copy(w, rc)
}

// shareURL is the absolute link to a share token, on the address the caller used.
func shareURL(r *http.Request, token string) string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	if p := r.Header.Get("X-Forwarded-Proto"); p == "https" || p == "http" {
		scheme = p
	}
	return scheme + "://" + r.Host + "/shared/" + token
}

func apiFile(f storage.FileInfo) api.StorageFile {
	return api.StorageFile{Path: f.Path, Dir: f.Dir, Size: f.Size, Modified: f.Modified, Version: f.Version, SHA256: f.SHA256}
}

func apiVersion(v storage.Version) api.StorageVersion {
	return api.StorageVersion{N: v.N, Time: v.Time, Size: v.Size, SHA256: v.SHA256, Change: v.Change}
}

// storageAnswer renders storage outcomes for /query; a share's link is made absolute on
// the address the agent called, so the agent can hand it on as it is.
func storageAnswer(r *http.Request) func(res any, err error) any {
	plain := moduleAnswer(api.QueryStorage)
	return func(res any, err error) any {
		if sr, ok := res.(*storage.Result); ok && sr.Share != nil {
			sr.Text = shareURL(r, sr.Share.Token)
		}
		return plain(res, err)
	}
}
