package raftnode

// StateMachine is what a group replicates. Every replica applies the same
// committed entries in the same order; Apply runs on the group's goroutine
// and must be deterministic.
type StateMachine interface {
	// Apply applies one committed normal entry and returns a result handed
	// to the proposer's completion on the node that proposed it.
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
