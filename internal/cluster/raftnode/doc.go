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
// What this package does not do: it does not quiesce idle groups (every
// group's leader heartbeats every HeartbeatTicks) and it does not coalesce
// heartbeats of many groups into one message per peer; see
// docs/design/replication.md, "Raft groups".
package raftnode
