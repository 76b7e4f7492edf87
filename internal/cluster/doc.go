// Package cluster joins Tern nodes into a cluster on Raft (go.etcd.io/raft/v3):
// a metadata group every node applies (the broker's definition commands),
// one group per quorum queue, one write-ahead log per node shared by every
// group (wal), one multiplexed connection per peer pair (transport), and
// forwarding of publishes and consumes to a queue's leader. The broker
// never imports this package: it sees the cluster only through the
// interfaces in internal/broker/replication.go. See docs/clustering.md and
// docs/design/replication.md.
package cluster
