package store

import (
	"errors"
	"fmt"
	"path/filepath"

	"github.com/tern-broker/tern/internal/vfs"
)

// definitionsFile holds the durable definitions, replaced atomically on
// every change. The store keeps the document as given: its format (JSON,
// see docs/design/storage.md) belongs to whoever encodes the definitions,
// so the store needs nothing of the broker.
const definitionsFile = "definitions.json"

// SaveDefinitions durably replaces the stored definitions document.
func (s *Store) SaveDefinitions(doc []byte) error {
	return vfs.WriteFileAtomic(s.fs, filepath.Join(s.dir, definitionsFile), doc)
}

// LoadDefinitions reads the stored definitions document; nil with no error
// when there is none (a fresh node).
func (s *Store) LoadDefinitions() ([]byte, error) {
	raw, err := vfs.ReadFile(s.fs, filepath.Join(s.dir, definitionsFile))
	if errors.Is(err, vfs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	return raw, nil
}
