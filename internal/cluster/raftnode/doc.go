// Package raftnode runs many Raft groups on one node over
// go.etcd.io/raft/v3's RawNode: a Host owns the node's groups, routes
// incoming Raft messages to them (it is the transport's Handler) and ticks
// every group from one ticker goroutine; a Group is one replica, driven by
// one goroutine that owns its RawNode and runs the Ready loop
// (persist → send → apply → Advance).
//
// Proposals carry a small header (proposing node, sequence) so the node
// that proposed an entry completes the proposer when it applies it, on a
// follower as on the leader; the header is stripped before
// StateMachine.Apply. A proposal that is lost (a leader change, a
// partition) fails with ErrProposalTimeout after HostConfig.ProposalTimeout,
// never silently.
//
// Idle groups go quiet (quiesce.go): a leader whose group has been idle
// for QuiesceTicks with every follower caught up tells them so and all
// stop ticking; one heartbeat per peer node per tick (not per group) lets
// a quiet follower notice its leader's node dying. What this package does
// not do: it does not batch several groups' messages to one peer into one
// transport message (the transport's connection buffering does that), and
// it runs StateMachine.Snapshot on the group's goroutine, so a slow
// Snapshot stalls the group. See docs/design/replication.md, "Raft groups".
package raftnode
