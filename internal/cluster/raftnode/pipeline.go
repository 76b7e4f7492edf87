package raftnode

import "go.etcd.io/raft/v3"

// One batch in flight on a busy leader: while entries the leader has
// appended are not yet committed, the proposals made on its node wait in
// g.retry (behind any Raft dropped) and go, as one batch entry per
// maxBatchBytes, once the log is committed to its end (releaseHeld, at
// the end of the turn that commits it).
//
// Why: every round of the Ready loop costs each replica an fsync (some
// 150 µs of CPU in the kernel on this machine's disk), socket writes and
// reads and a few goroutine wake-ups, whatever it carries. Without the
// hold a busy leader started a round as soon as its own fsync returned,
// while the previous round was still on its way to the followers, so a
// round carried what arrived during one fsync; with it, what arrives
// while the previous round commits (the followers' fsync and the network
// both ways). Rounds are fewer and larger on every replica, and CPU per
// message falls where the cluster is CPU-bound. A proposal made while
// nothing is in flight goes at once, so an idle or lightly loaded group
// answers as fast as before; under load a proposal waits at most for the
// round in flight to commit, as it waited before for the leader's fsync
// and then its own round.
//
// A held proposal was handed to no leader: if leadership changes it goes
// to the new leader with the other retries (never failed fast), and it
// times out as any pending proposal does.

// holding reports whether this node, as the leader, has appended
// entries that are not committed yet.
func (g *Group) holding() bool {
	return g.state == raft.StateLeader && g.lastIdx > g.commit.Load()
}

// releaseHeld proposes the held (and dropped) proposals once the leader's
// log is committed; true if that gave Raft something to do.
func (g *Group) releaseHeld() bool {
	if len(g.retry) == 0 || g.lead == 0 || g.state != raft.StateLeader || g.holding() {
		return false
	}
	g.retryDropped()
	return g.rn.HasReady()
}
