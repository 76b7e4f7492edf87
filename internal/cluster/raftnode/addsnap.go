package raftnode

import (
	"slices"

	"go.etcd.io/raft/v3/raftpb"
)

// addedSnapshot reports whether a configuration change from prev to next
// added a node, after which every replica snapshots at once
// (maybeSnapshot). A node added to a running group starts empty and
// catches up from a snapshot of the leader's, and etcd raft refuses to
// restore a snapshot whose configuration does not include the node
// ("attempted to restore snapshot but it is not in the ConfState"): the
// leader's latest snapshot — a new group's bootstrap one, say — predates
// the addition, so without a new one the node would never catch up.
func addedSnapshot(prev, next *raftpb.ConfState) bool {
	for _, id := range append(slices.Clone(next.GetVoters()), next.GetLearners()...) {
		if !slices.Contains(prev.GetVoters(), id) && !slices.Contains(prev.GetLearners(), id) {
			return true
		}
	}
	return false
}
