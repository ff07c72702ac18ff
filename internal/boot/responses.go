package boot

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"

	"github.com/aios-go/aios/internal/config"
	"github.com/aios-go/aios/internal/respstore"
)

// openResponses opens the Responses API's store in the storage module's database: a
// SQLite file beside storage's, or storage's PostgreSQL database.
func openResponses(cfg config.Config) (*respstore.Store, error) {
	path := cfg.Storage.Path
	if path == "" {
		path = filepath.Join(cfg.DataDir, "storage.db")
	}
	s, err := respstore.Open(context.Background(), respstore.Config{
		Backend: cfg.Storage.Backend, Path: filepath.Join(filepath.Dir(path), "responses.db"), DSN: cfg.Storage.DSN,
	})
	if err != nil {
		return nil, fmt.Errorf("stored responses (%s): %w", cfg.Storage.Backend, err)
	}
	return s, nil
}

// storageWithResponses is the storage service whose Close, at the kernel's shutdown,
// also closes the response store: it lives in the storage module's database and ends
// with it.
type storageWithResponses struct {
	storageService
	responses *respstore.Store
}

func (s storageWithResponses) Close() error {
	return errors.Join(s.storageService.Close(), s.responses.Close())
}
