// Package cluster joins a Tern node to a cluster on Raft
// (go.etcd.io/raft/v3). Node (node.go) is the composition: it claims the
// data directory for this node (identity.go), opens the node's one
// write-ahead log (wal), listens and dials on the cluster port
// (transport), runs the Raft host (raftnode) with the metadata group —
// group 0, whose state machine (meta) applies the broker's definition
// commands — and, through Quorum (quorum.go), one group per quorum queue,
// placed on the nodes by placement.go. The membership is replicated in the
// metadata group (members.go, membership.go) and changed at run time by
// AddNode and RemoveNode (membership_change.go). A definition change is
// answered once every live member applied it (visible.go). Status
// (status.go) is what GET /api/cluster shows.
//
// The broker never imports this package: it sees the cluster only through
// the interfaces in internal/broker/replication.go, which Node implements
// (broker.MetadataLog, broker.QuorumGroups). Publishes and consumes of
// classic queues and streams held by another node go through the
// forwarder (internal/cluster/forward, Node.Forwarder).
// See docs/clustering.md and docs/design/replication.md.
package cluster
