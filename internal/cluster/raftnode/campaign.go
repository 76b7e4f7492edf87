package raftnode

// Campaign asks this replica to stand for election now rather than after
// its election timeout (1-2 s by default). A group whose only voter is this
// node (internal/cluster/solo) elects itself at once, so its first
// proposals do not wait out a timeout at every start. Raft ignores it on a
// leader, a learner, or a replica that has entries left to apply; a
// replica that is not elected campaigns again by itself later. False if
// the group is closed.
func (g *Group) Campaign() bool {
	return g.submit(func() { _ = g.rn.Campaign() })
}

// Wake has the group's goroutine take a turn now rather than at its next
// tick: a group just started from storage applies the entries its log
// had committed at once (no fsync is needed for those). False if the
// group is closed.
func (g *Group) Wake() bool {
	return g.submit(func() {})
}
