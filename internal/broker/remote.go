package broker

import "github.com/tern-broker/tern/internal/message"

// remoteBackend is, in a cluster, a classic queue (or stream) whose
// messages another node holds: the node that declared it (Queue.Node).
// This node knows the queue — its name, arguments and bindings are the
// metadata every node applies — but holds none of its messages, runs none
// of its timers and has none of its consumers: publishes to it and
// consumers of it reach the owner through the cluster layer, which checks
// Queue.Remote before calling the queue. What reaches the backend itself
// is refused rather than kept where nobody would find it: a publish is
// Rejected (the publisher gets a nack), a consume fails, a get finds
// nothing. Its deletion is the owner's to decide for auto-delete and
// x-expires; a client's delete on any node deletes it everywhere.
type remoteBackend struct{ q *Queue }

func newRemoteBackend(q *Queue) remoteBackend { return remoteBackend{q: q} }

func (remoteBackend) publish(*message.Message, message.Completion, uint64) (PublishOutcome, bool) {
	return Rejected, false
}

func (remoteBackend) get(bool) (Delivery, bool) { return Delivery{}, false }

func (r remoteBackend) consume(Consumer, ConsumeOptions) error {
	return errorf(KindResourceError, "queue '%s' in vhost '%s' is held by node %d: consume from it there",
		r.q.cfg.Name, r.q.vhost.name, r.q.node)
}

func (remoteBackend) cancel(Consumer)                         {}
func (remoteBackend) dispatch()                               {}
func (remoteBackend) ack([]Delivery)                          {}
func (remoteBackend) requeue([]Delivery, bool)                {}
func (remoteBackend) reject([]Delivery)                       {}
func (remoteBackend) purge() int                              { return 0 }
func (remoteBackend) counts() (ready, unacked, consumers int) { return 0, 0, 0 }
func (remoteBackend) readyBytes() int64                       { return 0 }
func (remoteBackend) touch()                                  {}
func (remoteBackend) restore() int                            { return 0 }

func (remoteBackend) close(bool, bool) (int, []Consumer, error) { return 0, nil, nil }

// Node returns, in a cluster, the node that holds the queue's messages (the
// node that declared a classic queue or a stream); 0 without a cluster and
// for a queue every node holds (quorum).
func (q *Queue) Node() uint64 { return q.node }

// Remote reports whether another node of the cluster holds the queue's
// messages: publishes and consumes must go there (the cluster layer
// forwards them); this node's copy holds nothing.
func (q *Queue) Remote() bool {
	return q.node != 0 && q.node != q.vhost.broker.cfg.Replication.Node
}
