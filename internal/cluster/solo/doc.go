// Package solo gives a single node (no cluster settings) quorum queues:
// each is a Raft group whose only voter is this node, with its entries in
// a write-ahead log of its own (DATA_DIR/quorum/wal), the same raftnode
// groups and WAL a cluster node runs (internal/cluster/raftnode,
// internal/cluster/wal). RabbitMQ lets a one-node cluster declare quorum
// queues; a client that declares them (Celery's task_default_queue_type,
// Spring's QueueBuilder.quorum()) works unchanged, with the quorum queue's
// semantics: x-delivery-limit, x-delivery-count and x-acquired-count,
// redelivered marking, and a confirm only once the entry is fsynced.
//
// Nothing is opened until the first quorum queue is: a node without quorum
// queues runs no WAL, no ticker and no goroutine for them. A node whose
// quorum queues were all deleted opens the WAL once at its next start
// (Groups.RemoveOrphans, without a Raft host) to remove what is left and
// deletes it, so the start after opens nothing. There is no
// transport: a one-voter group commits what it fsynced and sends nothing.
package solo
