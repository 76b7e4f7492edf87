// Package forward carries operations on a queue another node holds — a
// classic queue or a stream lives on the node that declared it — to that
// node, so a client on any node of the cluster can publish to and consume
// from any queue (issue 12, item 5, active-active). It implements
// broker.Forwarder on the publisher's or consumer's node ("the client
// side") and serves the forwarded operations against the local broker on
// the queue's node ("the owner side"), over the cluster transport's one
// connection per peer pair: requests for publishes, consumes, gets,
// purges, counts, settles and keepalives, one-way notifies for pushed
// deliveries and consumer cancellations.
//
// Quorum queues need none of it: every node hosts a replica.
//
// See docs/design/replication.md, "Forwarding", for the protocol and what
// it guarantees.
package forward
