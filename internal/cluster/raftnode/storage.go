package raftnode

import (
	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
)

// Storage is one group's durable Raft state: raft.Storage for reads, and
// Save for what a Ready asks to persist. The node's WAL (internal/cluster/wal)
// implements it with group commit across groups; MemoryStorage below is
// for tests that do not exercise the disk.
type Storage interface {
	raft.Storage
	// Save persists a Ready's hard state, entries and snapshot (any may be
	// empty) and calls done once they are durable (fsynced), or with the
	// error that stopped them. Saves of one group complete in order; many
	// groups' saves share one fsync. Entries become visible through the
	// raft.Storage methods before done is called.
	Save(hs *raftpb.HardState, ents []*raftpb.Entry, snap *raftpb.Snapshot, done func(error))
	// CreateSnapshot records the state machine's snapshot at index (with
	// the configuration cs) and Compact drops the entries up to it. The
	// storage may keep data: the caller must not change it afterwards.
	CreateSnapshot(index uint64, cs *raftpb.ConfState, data []byte) (*raftpb.Snapshot, error)
	Compact(index uint64) error
	// Remove deletes the group's state for good (the group was deleted
	// or this replica removed from it).
	Remove() error
}
