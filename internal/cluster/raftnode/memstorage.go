package raftnode

import (
	"errors"
	"sync"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
)

// MemoryStorage is a Storage in memory: raft.MemoryStorage with a Save
// that applies a Ready's state and calls done before it returns. It is
// "durable" for as long as the value lives, so a test that stops a Host
// and starts another with the same MemoryStorage simulates a crash after
// which everything saved survived (a crash that loses unsynced writes is
// the WAL's to test, on the crashable vfs).
type MemoryStorage struct {
	*raft.MemoryStorage

	mu      sync.Mutex
	removed bool
}

// NewMemoryStorage returns an empty MemoryStorage.
func NewMemoryStorage() *MemoryStorage {
	return &MemoryStorage{MemoryStorage: raft.NewMemoryStorage()}
}

// errRemoved is returned by Save after Remove.
var errRemoved = errors.New("raftnode: storage removed")

// Save implements Storage: snapshot first (it resets the log), then
// entries, then the hard state, as a WAL replays them.
func (s *MemoryStorage) Save(hs *raftpb.HardState, ents []*raftpb.Entry, snap *raftpb.Snapshot, done func(error)) {
	done(s.save(hs, ents, snap))
}

func (s *MemoryStorage) save(hs *raftpb.HardState, ents []*raftpb.Entry, snap *raftpb.Snapshot) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.removed {
		return errRemoved
	}
	if !raft.IsEmptySnap(snap) {
		if err := s.ApplySnapshot(snap); err != nil {
			return err
		}
	}
	if err := s.Append(ents); err != nil {
		return err
	}
	if !raft.IsEmptyHardState(hs) {
		return s.SetHardState(hs)
	}
	return nil
}

// Remove implements Storage: later Saves fail.
func (s *MemoryStorage) Remove() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.removed = true
	return nil
}

var _ Storage = (*MemoryStorage)(nil)
