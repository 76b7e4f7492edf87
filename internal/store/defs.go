package store

import (
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/tern-broker/tern/internal/vfs"
)

// definitionsFile is where versions before the definitions log kept the
// whole definitions document, rewritten on every change; it is read once,
// written as the first snapshot and removed (see migrateDefinitions). The
// store keeps documents and commands as given: their format (JSON, see
// docs/design/definitions.md) belongs to whoever encodes them, so the store
// needs nothing of the broker.
const definitionsFile = "definitions.json"

// snapshotPrefix names a snapshot file; its generation (the log that
// continues it) is in the name, so the store never reads inside the
// document. Only the newest is kept.
const snapshotPrefix = "snapshot-"

func snapshotName(dir string, gen uint64) string {
	return filepath.Join(dir, fmt.Sprintf("%s%016d", snapshotPrefix, gen))
}

// parseGen reads the generation from a snapshot or log file name.
func parseGen(name, prefix string) (uint64, bool) {
	g, ok := strings.CutPrefix(name, prefix)
	if !ok {
		return 0, false
	}
	gen, err := strconv.ParseUint(g, 10, 64)
	return gen, err == nil && gen > 0
}

// snapshotGens lists the generations of the snapshots in dir, oldest first.
func snapshotGens(names []string) []uint64 {
	var gens []uint64
	for _, n := range names {
		if g, ok := parseGen(n, snapshotPrefix); ok {
			gens = append(gens, g)
		}
	}
	slices.Sort(gens)
	return gens
}

// readSnapshot reads the newest snapshot: its document and generation;
// a nil document without one (a fresh node). Older snapshots a crash kept
// from removal are removed.
func readSnapshot(fsys vfs.FS, dir string) ([]byte, uint64, error) {
	names, err := fsys.List(dir)
	if err != nil {
		return nil, 0, fmt.Errorf("store: %w", err)
	}
	gens := snapshotGens(names)
	if len(gens) == 0 {
		return nil, 0, nil
	}
	gen := gens[len(gens)-1]
	for _, g := range gens[:len(gens)-1] {
		_ = fsys.Remove(snapshotName(dir, g))
	}
	raw, err := vfs.ReadFile(fsys, snapshotName(dir, gen))
	if err != nil {
		return nil, 0, fmt.Errorf("store: %w", err)
	}
	return raw, gen, nil
}

// migrateDefinitions turns a previous version's definitions.json into the
// first snapshot: read once, written as snapshot 1 (durably, the document
// unchanged), then removed. A crash between the two leaves both; the
// snapshot wins and the old file is removed next time.
func migrateDefinitions(fsys vfs.FS, dataDir, dir string) error {
	old := filepath.Join(dataDir, definitionsFile)
	raw, err := vfs.ReadFile(fsys, old)
	if errors.Is(err, vfs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("store: %w", err)
	}
	snap, _, err := readSnapshot(fsys, dir)
	if err != nil {
		return err
	}
	if snap == nil {
		if err := vfs.WriteFileAtomic(fsys, snapshotName(dir, 1), raw); err != nil {
			return fmt.Errorf("store: migrating %s: %w", definitionsFile, err)
		}
	}
	if err := fsys.Remove(old); err != nil {
		return fmt.Errorf("store: migrating %s: %w", definitionsFile, err)
	}
	return fsys.SyncDir(dataDir)
}

// LoadDefinitions returns the snapshot's document; nil with no error when
// there is none (a fresh node). LoadCommands has what was logged since.
func (s *Store) LoadDefinitions() ([]byte, error) {
	raw, _, err := readSnapshot(s.fs, s.defs.dir)
	return raw, err
}

// RemoveOrphanLogs removes the queue logs no definition names: a queue
// whose deletion was durable when the node stopped, before its files went
// (the broker removes them only after the DeleteQueue command is synced,
// so a crash in between leaves them). live holds every durable queue's id;
// call it after the definitions are recovered, before clients connect.
func (s *Store) RemoveOrphanLogs(live map[string]bool) (int, error) {
	names, err := s.fs.List(filepath.Join(s.dir, "queues"))
	if err != nil {
		return 0, fmt.Errorf("store: %w", err)
	}
	removed := 0
	for _, id := range names {
		s.mu.Lock()
		_, open := s.logs[id]
		s.mu.Unlock()
		if live[id] || open {
			continue
		}
		s.log.Info("removing the log of a deleted queue", "queue_id", id)
		if err := s.DeleteQueueLog(id); err != nil {
			return removed, err
		}
		removed++
	}
	return removed, nil
}
