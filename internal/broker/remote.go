package broker

import "github.com/tern-broker/tern/internal/message"

// remoteBackend is, in a cluster, a classic queue (or stream) whose
// messages another node holds: the node that declared it (Queue.Node).
// This node knows the queue — its name, arguments and bindings are the
// metadata every node applies — but holds none of its messages and runs
// none of its timers. With a Forwarder (Replication.Forward) every
// operation goes to the owner: publishes are confirmed by it, consumers
// here receive its messages, acks go back. Without one — or for a queue
// of this node whose log could not be opened (apply.go), which has no
// other node to go to — what reaches the backend is refused rather than
// kept where nobody would find it: a publish is Rejected (the publisher
// gets a nack), a consume fails, a get finds nothing. Its deletion is the
// owner's to decide for auto-delete and x-expires; a client's delete on
// any node deletes it everywhere.
type remoteBackend struct {
	q   *Queue
	fwd Forwarder // nil: refuse
}

func newRemoteBackend(q *Queue) remoteBackend {
	r := remoteBackend{q: q}
	if q.Remote() {
		r.fwd = q.vhost.broker.cfg.Replication.Forward
	}
	return r
}

func (r remoteBackend) publish(m *message.Message, done message.Completion, token uint64) (PublishOutcome, bool) {
	if r.fwd == nil {
		return Rejected, false
	}
	return r.fwd.Publish(r.q, m, done, token)
}

func (r remoteBackend) get(noAck bool) (Delivery, bool) {
	d, ok, _ := r.getErr(noAck)
	return d, ok
}

func (r remoteBackend) getErr(noAck bool) (Delivery, bool, error) {
	if r.fwd == nil {
		return Delivery{}, false, nil
	}
	return r.fwd.Get(r.q, noAck)
}

func (r remoteBackend) consume(c Consumer, opts ConsumeOptions) error {
	if r.fwd == nil {
		return errorf(KindResourceError, "queue '%s' in vhost '%s' is held by node %d: consume from it there",
			r.q.cfg.Name, r.q.vhost.name, r.q.node)
	}
	return r.fwd.Consume(r.q, c, opts)
}

func (r remoteBackend) cancel(c Consumer) {
	if r.fwd != nil {
		r.fwd.Cancel(r.q, c)
	}
}

func (r remoteBackend) dispatch() {
	if r.fwd != nil {
		r.fwd.Dispatch(r.q)
	}
}

func (r remoteBackend) ack(ds []Delivery) { r.settle(SettleAck, ds) }

// requeue returns deliveries to the owner; failed (a basic.reject, which
// counts toward a quorum queue's delivery limit) means nothing to the
// classic queues and streams that are forwarded.
func (r remoteBackend) requeue(ds []Delivery, _ bool) { r.settle(SettleRequeue, ds) }
func (r remoteBackend) reject(ds []Delivery)          { r.settle(SettleReject, ds) }

func (r remoteBackend) settle(op SettleOp, ds []Delivery) {
	if r.fwd != nil && len(ds) > 0 {
		r.fwd.Settle(r.q, op, ds)
	}
}

func (r remoteBackend) purge() int {
	n, _ := r.purgeErr()
	return n
}

func (r remoteBackend) purgeErr() (int, error) {
	if r.fwd == nil {
		return 0, nil
	}
	return r.fwd.Purge(r.q)
}

// Fetch is Get that also reports why a remote queue's node could not be
// asked (a *Error: its node is down or did not answer in time), which
// Get leaves as "empty". basic.get uses it, so its client gets RabbitMQ's
// channel error (404, "home node … is down or inaccessible") rather than
// get-empty. For any other queue it is Get.
func (q *Queue) Fetch(noAck bool) (Delivery, bool, error) {
	if r, ok := q.backend.(remoteBackend); ok {
		return r.getErr(noAck)
	}
	d, ok := q.Get(noAck)
	return d, ok, nil
}

// purgeErr is Purge with a remote queue's error (see Fetch).
func (q *Queue) purgeErr() (int, error) {
	if r, ok := q.backend.(remoteBackend); ok {
		return r.purgeErr()
	}
	return q.backend.purge(), nil
}

func (r remoteBackend) counts() (ready, unacked, consumers int) {
	if r.fwd == nil {
		return 0, 0, 0
	}
	return r.fwd.Counts(r.q)
}

func (remoteBackend) readyBytes() int64 { return 0 }
func (remoteBackend) touch()            {}
func (remoteBackend) restore() int      { return 0 }

// close forgets the queue here. The owner's own delete drops its
// messages; ifUnused and ifEmpty were checked before the delete was
// proposed, against the counts the owner last reported (meta.go,
// checkDeleteLocked).
func (r remoteBackend) close(bool, bool) (int, []Consumer, error) {
	if r.fwd == nil {
		return 0, nil, nil
	}
	return 0, r.fwd.Closed(r.q), nil
}

// Node returns, in a cluster, the node that holds the queue's messages (the
// node that declared a classic queue or a stream); 0 without a cluster and
// for a queue every node holds (quorum).
func (q *Queue) Node() uint64 { return q.node }

// Remote reports whether another node of the cluster holds the queue's
// messages: publishes and consumes go there (Replication.Forward); this
// node's copy holds nothing.
func (q *Queue) Remote() bool {
	return q.node != 0 && q.node != q.vhost.broker.cfg.Replication.Node
}
