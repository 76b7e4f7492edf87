package broker

import "context"

// Replication is how the broker reaches a cluster without knowing one: the
// cluster (internal/cluster) implements these interfaces and server hands
// them to Config.Replication. A broker with none is the single node.
type Replication struct {
	// Node is this node's id in the cluster (its Raft replica id).
	Node uint64
	// Metadata replicates definition commands; nil keeps them local.
	Metadata MetadataLog
	// Quorum hosts the Raft groups of quorum queues; nil refuses
	// x-queue-type quorum, as a single node without a cluster does.
	Quorum QuorumGroups
	// Forward carries publishes, consumers, gets, purges and counts of a
	// queue another node holds (a classic queue or a stream) to that
	// node (forward.go); nil refuses them, as before forwarding existed.
	Forward Forwarder
}

// MetadataLog carries definition commands through the cluster's metadata
// group. Every node applies each committed command with
// Broker.ApplyReplicated, in the same order.
type MetadataLog interface {
	// Propose replicates c and returns once it is committed and applied
	// on this node, or with the error that stopped it (no quorum before
	// ctx ended, the node shutting down).
	Propose(ctx context.Context, c Command) error
}

// QuorumGroups opens this node's replica of a quorum queue's Raft group.
type QuorumGroups interface {
	// Open starts (or recovers from this node's WAL) the group of the
	// quorum queue def; m receives its committed entries. Every node
	// hosts a replica of every quorum queue: the first
	// x-quorum-initial-group-size nodes of the placement as voters, the
	// others (and standby nodes) as learners.
	Open(def QueueDef, m ReplicatedMachine) (ReplicatedLog, error)
}

// LocalQuorumIDs is implemented by QuorumGroups that can choose a new
// quorum queue's id (QueueDef.ID) so that this node is the group's
// preferred leader: the first voter of the queue's placement, which
// campaigns first and gets leadership back after a failover. A queue
// declared so is led by the node its declaring client is on (RabbitMQ's
// client-local leader locator, its default), and that client's publishes
// reach the leader without a hop to another node.
type LocalQuorumIDs interface {
	LocalQueueID() string
}

// ReplicatedLog is one quorum queue's Raft group as seen from this node.
type ReplicatedLog interface {
	// Propose replicates data and calls done once it is committed on a
	// quorum (each of which fsynced it) and applied on this node, with
	// what Apply returned; or with an error when it was not (no leader
	// or quorum before the group's proposal timeout, the group closed).
	// A proposal on a follower is forwarded to the leader. done runs on
	// the group's goroutine and must not block.
	Propose(data []byte, done func(result any, err error))
	// IsLeader reports whether this node leads the group now.
	IsLeader() bool
	// Live reports whether node answered the group recently (a checkout
	// held by consumers of a node that is not live is returned).
	Live(node uint64) bool
	// Close stops this replica (node shutdown); Delete removes the
	// group's state from this node for good (the queue was deleted).
	Close()
	Delete()
}

// ReplicatedMachine is a quorum queue's state machine. Every replica
// applies the same committed entries in the same order, so Apply must be
// deterministic: time, randomness and node-local facts reach it only
// inside entries. Apply may keep data (a quorum queue keeps each
// message's record as its entry brought it): the caller must never
// change or reuse those bytes afterwards. (internal/cluster/raftnode.StateMachine has the same
// method set.)
type ReplicatedMachine interface {
	Apply(index uint64, data []byte) any
	Snapshot() ([]byte, error)
	Restore(data []byte) error
	// LeaderChanged is called when the group's leader changes (0: none
	// known); isLocal says this node leads.
	LeaderChanged(leader uint64, isLocal bool)
}
