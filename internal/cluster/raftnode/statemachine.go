package raftnode

// StateMachine is what a group replicates. Every replica applies the same
// committed entries in the same order; Apply runs on the group's goroutine
// and must be deterministic.
type StateMachine interface {
	// Apply applies one committed normal entry and returns a result handed
	// to the proposer's completion on the node that proposed it. data is
	// the state machine's to keep: the group never changes or reuses an
	// entry's bytes (a quorum queue keeps message records inside them).
	Apply(index uint64, data []byte) any
	// Snapshot returns the state as of the last applied entry; Restore
	// replaces the state with a snapshot's (a follower that fell behind
	// past compaction, or a restart).
	Snapshot() ([]byte, error)
	Restore(data []byte) error
	// LeaderChanged is called when the group's leader changes (leader 0:
	// none known); isLocal says this node leads.
	LeaderChanged(leader uint64, isLocal bool)
}

// SnapshotAppender is an optional method of a StateMachine:
// AppendSnapshot appends to dst what Snapshot would return. The group
// passes a buffer that already holds its snapshot's version byte, so a
// state machine that implements it saves a copy of its whole state at
// every snapshot (megabytes for a quorum queue with a backlog).
type SnapshotAppender interface {
	AppendSnapshot(dst []byte) ([]byte, error)
}

// StateSizer is an optional method of a StateMachine: StateSize returns
// about how many bytes its snapshot would take now, cheaply (it is asked
// on the group's goroutine whenever SnapshotBytes of entries were applied
// since the last snapshot). With it the bytes trigger waits for
// snapshotRatio times the current state, not the state at the last
// snapshot: a queue that drained after a burst is snapshotted again after
// SnapshotBytes, instead of keeping up to snapshotRatio times its peak
// backlog of log in memory (snapshot.go).
type StateSizer interface {
	StateSize() uint64
}
