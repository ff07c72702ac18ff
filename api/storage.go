package api

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Storage operation types of AIOS's storage syscalls.
const (
	StorageMount      = "mount"
	StorageCreateFile = "create_file"
	StorageCreateDir  = "create_dir"
	StorageWrite      = "write"
	StorageRead       = "read"
	StorageDelete     = "delete"
	StorageList       = "list"
	StorageRetrieve   = "retrieve"
	StorageRollback   = "rollback"
	StorageShare      = "share"
)

// StorageQuery is query_data of a storage query.
type StorageQuery struct {
	QueryClass    string        `json:"query_class,omitempty"`
	OperationType string        `json:"operation_type"`
	Params        StorageParams `json:"params"`
}

// StorageParams are a storage query's params. AIOS's Python SDK and AIOS's own kernel
// disagree on some names; both are accepted, and the accessors say which wins.
type StorageParams struct {
	Root      string   `json:"root,omitempty"`     // AIOS's kernel
	RootDir   string   `json:"root_dir,omitempty"` // AIOS's SDK
	FilePath  string   `json:"file_path,omitempty"`
	DirPath   string   `json:"dir_path,omitempty"`
	Path      string   `json:"path,omitempty"`
	Content   *string  `json:"content,omitempty"`
	QueryText string   `json:"query_text,omitempty"`
	N         *FlexInt `json:"n,omitempty"` // SDK: results of retrieve, versions back of rollback
	K         *FlexInt `json:"k,omitempty"` // AIOS's kernel: results of retrieve
	Keywords  Strings  `json:"keywords,omitempty"`
	Time      string   `json:"time,omitempty"`       // rollback: ISO 8601
	ExpiresIn *FlexInt `json:"expires_in,omitempty"` // share: seconds
	// Owner is the agent whose storage the call acts in, when it is not the caller's
	// own: allowed only with the access manager on, to agents that share a privilege
	// group with the owner or that a policy permits (docs/security.md).
	Owner string `json:"owner,omitempty"`
}

// MountRoot is the root a mount asks for: root_dir, else root.
func (p StorageParams) MountRoot() string {
	if p.RootDir != "" {
		return p.RootDir
	}
	return p.Root
}

// Target is the path an operation names: file_path, dir_path or path.
func (p StorageParams) Target() string {
	for _, s := range []string{p.FilePath, p.DirPath, p.Path} {
		if s != "" {
			return s
		}
	}
	return ""
}

// Limit is retrieve's result count: n, else k, else 0 (the module's default).
func (p StorageParams) Limit() int {
	switch {
	case p.N != nil:
		return int(*p.N)
	case p.K != nil:
		return int(*p.K)
	}
	return 0
}

// FlexInt is an integer that also decodes from a numeric string ("3"): the SDK's params
// are typed Dict[str, Any], so agents send either.
type FlexInt int

// UnmarshalJSON accepts 3, 3.0 and "3".
func (n *FlexInt) UnmarshalJSON(b []byte) error {
	s := strings.Trim(string(b), `"`)
	if f, err := strconv.ParseFloat(s, 64); err == nil && f == float64(int64(f)) {
		*n = FlexInt(f)
		return nil
	}
	return fmt.Errorf("expected an integer, got %s", b)
}

// Strings is a list of strings that also decodes from one comma-separated string.
type Strings []string

// UnmarshalJSON accepts ["a","b"], "a, b" and null.
func (s *Strings) UnmarshalJSON(b []byte) error {
	var list []string
	if err := json.Unmarshal(b, &list); err == nil {
		*s = list
		return nil
	}
	var one string
	if err := json.Unmarshal(b, &one); err != nil {
		return fmt.Errorf("expected a list of strings or a comma-separated string, got %s", b)
	}
	*s = nil
	for _, f := range strings.Split(one, ",") {
		if f = strings.TrimSpace(f); f != "" {
			*s = append(*s, f)
		}
	}
	return nil
}

// StorageFile is a file or folder in /v1/storage replies.
type StorageFile struct {
	Path     string    `json:"path"`
	Dir      bool      `json:"dir,omitempty"`
	Size     int64     `json:"size"`
	Modified time.Time `json:"modified"`
	Version  int       `json:"version,omitempty"`
	SHA256   string    `json:"sha256,omitempty"`
}

// StorageVersion is one entry of a file's history.
type StorageVersion struct {
	N      int       `json:"n"`
	Time   time.Time `json:"time"`
	Size   int64     `json:"size"`
	SHA256 string    `json:"sha256"`
	Change string    `json:"change"`
}

// StorageHit is one retrieved file.
type StorageHit struct {
	Path    string  `json:"path"`
	Score   float64 `json:"score"`
	Snippet string  `json:"snippet"`
}

// StorageLink is a share link: GET URL (the kernel's /shared/{token}) reads the file
// until Expires or until the link is revoked with DELETE /v1/storage/shares/{token}.
type StorageLink struct {
	Token   string    `json:"token"`
	URL     string    `json:"url"`
	Path    string    `json:"path"`
	Expires time.Time `json:"expires"`
}

// StorageListing is GET /v1/storage/list/{path}.
type StorageListing struct {
	Files []StorageFile `json:"files"`
}

// StorageHistory is GET /v1/storage/versions/{path}.
type StorageHistory struct {
	Versions []StorageVersion `json:"versions"`
}

// StorageResults is POST /v1/storage/retrieve.
type StorageResults struct {
	Hits []StorageHit `json:"hits"`
}

// StorageRetrieveRequest is the body of POST /v1/storage/retrieve.
type StorageRetrieveRequest struct {
	QueryText string   `json:"query_text"`
	K         int      `json:"k,omitempty"`
	Keywords  []string `json:"keywords,omitempty"`
}

// StorageRollbackRequest is the body of POST /v1/storage/rollback/{path}: n versions
// back, or the version current at an ISO 8601 time; empty means the previous version.
type StorageRollbackRequest struct {
	N    int    `json:"n,omitempty"`
	Time string `json:"time,omitempty"`
}

// StorageShareRequest is the body of POST /v1/storage/shares/{path}.
type StorageShareRequest struct {
	ExpiresIn int `json:"expires_in,omitempty"` // seconds; 0 means a day
}
